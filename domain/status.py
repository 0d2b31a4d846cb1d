"""Purchase statuses, spelled exactly as OpenMeter spells them, and the vocabulary around them."""

from __future__ import annotations

from enum import StrEnum


class PurchaseStatus(StrEnum):
    """OpenMeter's detailed credit purchase statuses.

    At rest here: ``created`` (an invoice purchase until its invoice exists),
    ``active.payment.pending``, ``active.payment.authorized``, ``final`` and
    ``final.payment_failed``; the others are OpenMeter's ordering steps, kept so that the
    transition table can say which of them each event passes through.
    """

    CREATED = "created"
    ACTIVE = "active"
    INITIAL_CREDIT_GRANT = "active.initial_credit_grant"
    PAYMENT_PENDING = "active.payment.pending"
    PAYMENT_AUTHORIZED = "active.payment.authorized"
    PAYMENT_PAID_AND_AUTHORIZED = "active.payment.paid_and_authorized"
    PAYMENT_SETTLED = "active.payment.settled"
    FINAL = "final"
    PAYMENT_FAILED = "final.payment_failed"
    """The payment failed: no payment event is accepted any more (hence meta ``final``), the
    unconsumed credit was revoked, and what was consumed stays owed as an open receivable."""
    DELETED = "deleted"

    @property
    def meta(self) -> MetaStatus:
        """The text before the first dot, as OpenMeter's ``DetailedStatusToMetaStatus``."""
        return _META[self]


class MetaStatus(StrEnum):
    CREATED = "created"
    ACTIVE = "active"
    FINAL = "final"
    DELETED = "deleted"


_META = {status: MetaStatus(status.value.split(".", 1)[0]) for status in PurchaseStatus}

RESTING_STATUSES = frozenset(
    {
        PurchaseStatus.CREATED,
        PurchaseStatus.PAYMENT_PENDING,
        PurchaseStatus.PAYMENT_AUTHORIZED,
        PurchaseStatus.FINAL,
        PurchaseStatus.PAYMENT_FAILED,
    }
)


class SettlementType(StrEnum):
    EXTERNAL = "external"
    PROMOTIONAL = "promotional"
    INVOICE = "invoice"


class InitialPaymentStatus(StrEnum):
    """What an external purchase's creator says about its payment (OpenMeter §3.5)."""

    CREATED = "created"
    AUTHORIZED = "authorized"
    SETTLED = "settled"


class PaymentStatus(StrEnum):
    AUTHORIZED = "authorized"
    SETTLED = "settled"
    FAILED = "failed"


class Command(StrEnum):
    INITIATE = "initiate"
    AUTHORIZE = "authorize"
    SETTLE = "settle"
    VOID = "void"
    INVOICE_CREATED = "invoice_created"
    FAIL = "fail"
    REFUND = "refund"


class EventType(StrEnum):
    INITIATED = "Initiated"
    PAYMENT_AUTHORIZED = "PaymentAuthorized"
    PAYMENT_SETTLED = "PaymentSettled"
    PURCHASE_VOIDED = "PurchaseVoided"
    INVOICE_CREATED = "InvoiceCreated"
    PAYMENT_FAILED = "PaymentFailed"
    PAYMENT_REFUNDED = "PaymentRefunded"


class WalletEventType(StrEnum):
    """What happens to a customer's spendable credit in one currency (the credit wallet)."""

    GRANT_ADDED = "GrantAdded"
    CREDITS_CONSUMED = "CreditsConsumed"
    GRANT_EXPIRED = "GrantExpired"
    GRANT_VOIDED = "GrantVoided"
    GRANT_REVOKED = "GrantRevoked"


class RevocationCause(StrEnum):
    """Why credit was taken back from a grant (``GrantRevoked``)."""

    PAYMENT_FAILED = "payment_failed"
    REFUND = "refund"


class Unit(StrEnum):
    """What a ledger amount counts: credits (face value) or the cash the payment moves."""

    CREDITS = "credits"
    CASH = "cash"
