"""The purchases read model: one row per purchase, as the aggregate would show it now."""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from creditledger.application.projections.projection import (
    Projection,
    ProjectionError,
    PurchaseTerms,
    Recorded,
)
from creditledger.application.projections.rows import PurchaseRow, ReadModelName, Tables, evolve
from creditledger.application.projections.store import ReadModelTransaction
from creditledger.application.purchase_view import (
    CreditGrantView,
    ExternalPaymentView,
    LedgerReferenceView,
    PurchaseView,
    RealizationsView,
    SettlementView,
)
from creditledger.domain.events import Initiated, PaymentAuthorized, PaymentSettled, PurchaseVoided
from creditledger.domain.money import payment_amount
from creditledger.domain.rules import STATUS_AFTER, status_after
from creditledger.domain.status import PaymentStatus


class PurchasesProjection(Projection):
    name = ReadModelName.PURCHASES

    def prefetch(
        self, batch: Sequence[Recorded], terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        # Initiated events too: the duplicate check below then costs no extra round trip.
        store.load(Tables.PURCHASES, {recorded.event.originator_id for recorded in batch})

    def apply(self, recorded: Recorded, terms: Initiated, store: ReadModelTransaction) -> None:
        event = recorded.event
        existing = store.get(Tables.PURCHASES, event.originator_id)
        if isinstance(event, Initiated):
            if existing is not None:
                raise ProjectionError(f"purchase {event.originator_id} is already in the view")
            store.put(Tables.PURCHASES, initiated_row(event, recorded.position))
            return
        if existing is None or existing.version != event.originator_version - 1:
            at = "absent" if existing is None else f"at v{existing.version}"
            raise ProjectionError(
                f"event v{event.originator_version} of purchase {event.originator_id} does not "
                f"follow the view's row ({at})"
            )
        status = (
            status_after(existing.settlement_type, event.TYPE, existing.status) or existing.status
        )
        row = evolve(
            existing,
            status=status,
            meta_status=status.meta,
            version=event.originator_version,
            updated_at=event.timestamp,
            position=recorded.position,
        )
        match event:
            case PaymentAuthorized():
                row = evolve(
                    row,
                    payment_status=PaymentStatus.AUTHORIZED,
                    authorized_amount=event.amount,
                    authorized_transaction_group_id=event.transaction_group_id,
                    authorized_at=event.at,
                    authorized_reference=event.external_reference,
                )
            case PaymentSettled():
                row = evolve(
                    row,
                    payment_status=PaymentStatus.SETTLED,
                    settled_transaction_group_id=event.transaction_group_id,
                    settled_at=event.at,
                    settled_reference=event.external_reference,
                )
            case PurchaseVoided():
                pass  # TODO(read models): the voided amount
            case _:
                assert_never(event)
        store.put(Tables.PURCHASES, row)


def initiated_row(event: Initiated, position: int) -> PurchaseRow:
    status = STATUS_AFTER[(event.settlement_type, event.TYPE)]
    return PurchaseRow(
        purchase_id=event.originator_id,
        namespace=event.namespace,
        customer_id=event.customer_id,
        currency=event.currency,
        credit_amount=event.credit_amount,
        cost_basis=event.cost_basis,
        payment_amount=(
            None
            if event.cost_basis is None
            else payment_amount(event.credit_amount, event.cost_basis, event.currency)
        ),
        settlement_type=event.settlement_type,
        initial_payment_status=event.initial_payment_status,
        priority=event.priority,
        expires_at=event.expires_at,
        feature_filters=tuple(event.feature_filters),
        name=event.name,
        metadata=dict(event.metadata),
        status=status,
        meta_status=status.meta,
        credit_grant_transaction_group_id=event.credit_grant_transaction_group_id,
        granted_at=event.granted_at,
        payment_status=None,
        authorized_amount=None,
        authorized_transaction_group_id=None,
        authorized_at=None,
        authorized_reference=None,
        settled_transaction_group_id=None,
        settled_at=None,
        settled_reference=None,
        version=event.originator_version,
        created_at=event.timestamp,
        updated_at=event.timestamp,
        created_position=position,
        position=position,
    )


def purchase_view(row: PurchaseRow) -> PurchaseView:
    """The row shaped as callers see a purchase: the same body ``CreditLedger`` returns."""
    external_payment = None
    if (
        row.payment_status is not None
        and row.authorized_amount is not None
        and row.authorized_transaction_group_id is not None
        and row.authorized_at is not None
    ):
        settled = None
        if row.settled_transaction_group_id is not None and row.settled_at is not None:
            settled = LedgerReferenceView(
                transaction_group_id=row.settled_transaction_group_id,
                at=row.settled_at,
                external_reference=row.settled_reference,
            )
        external_payment = ExternalPaymentView(
            status=row.payment_status,
            amount=row.authorized_amount,
            authorized=LedgerReferenceView(
                transaction_group_id=row.authorized_transaction_group_id,
                at=row.authorized_at,
                external_reference=row.authorized_reference,
            ),
            settled=settled,
        )
    return PurchaseView(
        id=row.purchase_id,
        namespace=row.namespace,
        customer_id=row.customer_id,
        currency=row.currency,
        credit_amount=row.credit_amount,
        cost_basis=row.cost_basis,
        payment_amount=row.payment_amount,
        settlement=SettlementView(
            type=row.settlement_type, initial_status=row.initial_payment_status
        ),
        priority=row.priority,
        expires_at=row.expires_at,
        feature_filters=list(row.feature_filters),
        name=row.name,
        metadata=dict(row.metadata),
        status=row.status,
        meta_status=row.meta_status,
        remaining=row.credit_amount,
        consumed=0,
        expired=0,
        voided=0,
        revoked=0,
        refunded=0,
        realizations=RealizationsView(
            credit_grant=CreditGrantView(
                transaction_group_id=row.credit_grant_transaction_group_id,
                granted_at=row.granted_at,
            ),
            external_payment=external_payment,
        ),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
