"""The purchases read model: one row per purchase, as the aggregate would show it now."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import assert_never
from uuid import UUID

from creditledger.application.projections.projection import (
    Projection,
    ProjectionError,
    PurchaseTerms,
    Recorded,
    WalletRecorded,
)
from creditledger.application.projections.rows import PurchaseRow, ReadModelName, Tables, evolve
from creditledger.application.projections.store import ReadModelTransaction
from creditledger.application.purchase_view import (
    CreditGrantView,
    ExpiryView,
    ExternalPaymentView,
    InvoiceView,
    LedgerReferenceView,
    PaymentFailureView,
    PurchaseView,
    RealizationsView,
    RefundsView,
    SettlementView,
    VoidView,
)
from creditledger.domain.events import (
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
    WalletEvent,
)
from creditledger.domain.money import payment_amount, round_money
from creditledger.domain.rules import STATUS_AFTER, status_after
from creditledger.domain.status import PaymentStatus, SettlementType


class PurchasesProjection(Projection):
    name = ReadModelName.PURCHASES
    # The purchase's own events carry these (see ``apply_wallet``).
    ignores = frozenset({GrantAdded, GrantVoided, GrantRevoked})

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
                row = evolve(
                    row,
                    voided=event.amount,
                    void_transaction_group_id=event.transaction_group_id,
                    voided_at=event.at,
                    void_reason=event.reason,
                    expiry_due=False,
                )
            case InvoiceCreated():
                row = evolve(
                    row,
                    invoice_id=event.invoice_id,
                    line_id=event.line_id,
                    invoice_created_at=event.timestamp,
                    credit_grant_transaction_group_id=event.credit_grant_transaction_group_id,
                    granted_at=event.granted_at,
                    expiry_due=row.expires_at is not None,
                )
            case PaymentFailed():
                row = evolve(
                    row,
                    payment_status=(
                        PaymentStatus.FAILED if row.payment_status is not None else None
                    ),
                    failure_transaction_group_id=event.transaction_group_id,
                    failed_at=event.at,
                    failure_reason=event.reason,
                    failure_reference=event.external_reference,
                    owed=event.consumed,
                    revoked=event.revoked,
                    released=event.released,
                    expiry_due=False,
                )
            case PaymentRefunded():
                row = evolve(
                    row,
                    refunded=row.refunded + event.amount,
                    refunded_cash=row.refunded_cash + event.cash_amount,
                    refunds=row.refunds + 1,
                    last_refund_transaction_group_id=event.transaction_group_id,
                    last_refunded_at=event.at,
                )
                row = evolve(row, expiry_due=row.expiry_due and _left(row) > 0)
            case _:
                assert_never(event)
        store.put(Tables.PURCHASES, row)

    def prefetch_wallet(
        self, batch: Sequence[WalletRecorded], terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        store.load(
            Tables.PURCHASES,
            {purchase_id for recorded in batch for purchase_id in _purchases_of(recorded.event)},
        )

    def apply_wallet(
        self, recorded: WalletRecorded, terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        event = recorded.event
        match event:
            case GrantAdded() | GrantVoided() | GrantRevoked():
                # The purchase's own events carry these (Initiated or InvoiceCreated,
                # PurchaseVoided, PaymentFailed or PaymentRefunded).
                return
            case CreditsConsumed():
                for allocation in event.allocations:
                    row = self._row(store, allocation.purchase_id, recorded)
                    row = evolve(row, consumed=row.consumed + allocation.amount)
                    store.put(
                        Tables.PURCHASES, evolve(row, expiry_due=row.expiry_due and _left(row) > 0)
                    )
            case GrantExpired():
                row = self._row(store, event.purchase_id, recorded)
                store.put(
                    Tables.PURCHASES,
                    evolve(
                        row, expired=event.amount, expired_at=event.effective_at, expiry_due=False
                    ),
                )
            case _:
                assert_never(event)

    @staticmethod
    def _row(
        store: ReadModelTransaction, purchase_id: UUID, recorded: WalletRecorded
    ) -> PurchaseRow:
        row = store.get(Tables.PURCHASES, purchase_id)
        if row is None:
            raise ProjectionError(
                f"wallet event at position {recorded.position} concerns purchase {purchase_id}, "
                "which is not in the view"
            )
        return row


def _left(row: PurchaseRow) -> Decimal:
    """What remains of a granted purchase's credit by its recorded events."""
    return row.credit_amount - row.consumed - row.expired - row.voided - row.revoked - row.refunded


def _purchases_of(event: WalletEvent) -> list[UUID]:
    match event:
        case CreditsConsumed():
            return [allocation.purchase_id for allocation in event.allocations]
        case GrantAdded() | GrantExpired() | GrantVoided() | GrantRevoked():
            return [event.purchase_id]
        case _:
            assert_never(event)


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
        consumed=Decimal(0),
        expired=Decimal(0),
        expired_at=None,
        voided=Decimal(0),
        void_transaction_group_id=None,
        voided_at=None,
        void_reason=None,
        # Nothing can expire before it is granted (an invoice purchase waits for its invoice).
        expiry_due=event.expires_at is not None and event.granted_at is not None,
        invoice_id=None,
        line_id=None,
        invoice_created_at=None,
        failure_transaction_group_id=None,
        failed_at=None,
        failure_reason=None,
        failure_reference=None,
        owed=None,
        revoked=Decimal(0),
        released=Decimal(0),
        refunded=Decimal(0),
        refunded_cash=Decimal(0),
        refunds=0,
        last_refund_transaction_group_id=None,
        last_refunded_at=None,
    )


def purchase_view(row: PurchaseRow, now: datetime | None = None) -> PurchaseView:
    """The row shaped as callers see a purchase: the same body ``CreditLedger`` returns.

    With ``now``, an expiry due by then but not recorded yet is shown as it will be recorded.
    """
    granted = row.granted_at is not None
    by_invoice = row.settlement_type is SettlementType.INVOICE

    def money(amount: Decimal) -> Decimal:
        return round_money(amount, row.currency)

    expired, expiry = row.expired, None
    if row.expired_at is not None:
        expiry = ExpiryView(at=row.expired_at, amount=row.expired, recorded=True)
    elif (
        now is not None and row.expiry_due and row.expires_at is not None and row.expires_at <= now
    ):
        expired = _left(row)
        expiry = ExpiryView(at=row.expires_at, amount=expired, recorded=False)
    payment = None
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
        payment = ExternalPaymentView(
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
        remaining=money(_left(row) - (expired - row.expired) if granted else Decimal(0)),
        consumed=money(row.consumed),
        expired=money(expired),
        voided=money(row.voided),
        revoked=money(row.revoked),
        refunded=money(row.refunded),
        realizations=RealizationsView(
            credit_grant=(
                CreditGrantView(
                    transaction_group_id=row.credit_grant_transaction_group_id,
                    granted_at=row.granted_at,
                )
                if row.credit_grant_transaction_group_id is not None and row.granted_at is not None
                else None
            ),
            external_payment=None if by_invoice else payment,
            invoice=(
                InvoiceView(
                    invoice_id=row.invoice_id,
                    line_id=row.line_id,
                    created_at=row.invoice_created_at,
                )
                if row.invoice_id is not None
                and row.line_id is not None
                and row.invoice_created_at is not None
                else None
            ),
            invoice_payment=payment if by_invoice else None,
            void=(
                None
                if row.void_transaction_group_id is None or row.voided_at is None
                else VoidView(
                    transaction_group_id=row.void_transaction_group_id,
                    at=row.voided_at,
                    amount=row.voided,
                    reason=row.void_reason,
                )
            ),
            expiry=expiry,
            payment_failure=(
                PaymentFailureView(
                    transaction_group_id=row.failure_transaction_group_id,
                    at=row.failed_at,
                    reason=row.failure_reason,
                    revoked=money(row.revoked),
                    released=money(row.released),
                    owed=money(row.owed),
                    external_reference=row.failure_reference,
                )
                if row.failure_transaction_group_id is not None
                and row.failed_at is not None
                and row.failure_reason is not None
                and row.owed is not None
                else None
            ),
            refunds=(
                RefundsView(
                    count=row.refunds,
                    amount=money(row.refunded),
                    cash_amount=money(row.refunded_cash),
                    last_transaction_group_id=row.last_refund_transaction_group_id,
                    last_at=row.last_refunded_at,
                )
                if row.last_refund_transaction_group_id is not None
                and row.last_refunded_at is not None
                else None
            ),
        ),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
