"""The receivables read model: what each payment-backed purchase's customer owes, and since when.

A receivable opens when the credits are granted, is authorized when the payment is, and closes
when it settles. Closed receivables are kept, so that what was open at any past instant can
still be answered exactly; promotional credit is never owed and has no row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from creditledger.application.projections.projection import (
    Projection,
    ProjectionError,
    PurchaseTerms,
    Recorded,
    WalletRecorded,
)
from creditledger.application.projections.rows import (
    ReadModelName,
    ReceivableRow,
    Tables,
    evolve,
)
from creditledger.application.projections.store import ReadModelTransaction
from creditledger.domain.events import (
    WALLET_EVENT_CLASSES,
    CreditsConsumed,
    GrantAdded,
    GrantExpired,
    GrantRevoked,
    GrantVoided,
    Initiated,
    InvoiceCreated,
    PaymentAuthorized,
    PaymentFailed,
    PaymentRefunded,
    PaymentSettled,
    PurchaseVoided,
)
from creditledger.domain.money import payment_amount


class ReceivablesProjection(Projection):
    name = ReadModelName.RECEIVABLES
    # What is owed follows the payment, not what the credit was spent on.
    ignores = frozenset(WALLET_EVENT_CLASSES)

    def prefetch(
        self, batch: Sequence[Recorded], terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        store.load(
            Tables.RECEIVABLES,
            {
                recorded.event.originator_id
                for recorded in batch
                if not isinstance(recorded.event, Initiated | InvoiceCreated)
            },
        )

    def apply_wallet(
        self, recorded: WalletRecorded, terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        match recorded.event:
            case GrantAdded() | CreditsConsumed() | GrantExpired() | GrantVoided() | GrantRevoked():
                return  # what is owed follows the payment, not what the credit was spent on
            case _:
                assert_never(recorded.event)

    def apply(self, recorded: Recorded, terms: Initiated, store: ReadModelTransaction) -> None:
        event = recorded.event
        if terms.cost_basis is None:
            return  # promotional: nothing is owed
        basis = terms.cost_basis
        if isinstance(event, Initiated | InvoiceCreated):
            if isinstance(event, Initiated) and event.granted_at is None:
                return  # an invoice purchase is owed once its invoice exists
            store.put(
                Tables.RECEIVABLES,
                ReceivableRow(
                    purchase_id=event.originator_id,
                    namespace=terms.namespace,
                    customer_id=terms.customer_id,
                    currency=terms.currency,
                    credit_amount=terms.credit_amount,
                    payment_amount=payment_amount(terms.credit_amount, basis, terms.currency),
                    opened_at=event.timestamp,
                    authorized_at=None,
                    settled_at=None,
                    position=recorded.position,
                    failed_at=None,
                    owed=None,
                ),
            )
            return
        row = store.get(Tables.RECEIVABLES, event.originator_id)
        if row is None:
            if isinstance(event, PaymentFailed) and event.consumed == 0:
                return  # an invoice purchase failed before its invoice: it never owed anything
            raise ProjectionError(f"purchase {event.originator_id} has no receivable to update")
        match event:
            case PaymentAuthorized():
                row = evolve(row, authorized_at=event.at)
            case PaymentSettled():
                row = evolve(row, settled_at=event.at)
            case PaymentFailed():
                owed = payment_amount(event.consumed, basis, terms.currency)
                row = evolve(row, failed_at=event.at, owed=owed)
            case PurchaseVoided() | PaymentRefunded():
                pass  # a void leaves the payment as it was; a refund follows a settled one
            case _:
                assert_never(event)
        store.put(Tables.RECEIVABLES, evolve(row, position=recorded.position))
