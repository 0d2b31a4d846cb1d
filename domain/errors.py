"""Typed errors with stable codes.

Every error a caller can see carries a ``code`` that never changes once published: HTTP maps
codes to statuses, clients switch on them, and the transition table names them as data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field."""

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""

    code: ClassVar[str] = "ledger_error"
    title: ClassVar[str] = "Ledger error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)


class ValidationFailedError(LedgerError):
    """The input had one or more problems; every one of them is listed."""

    code = "validation_failed"
    title = "Validation failed"

    def __init__(self, errors: list[FieldError] | tuple[FieldError, ...]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        summary = "; ".join(f"{e.field}: {e.message}" for e in self.errors)
        super().__init__(summary or self.title)

    @property
    def codes(self) -> set[str]:
        return {e.code for e in self.errors}


class PurchaseStateError(LedgerError):
    """A command that the purchase's current state does not permit."""


class PaymentAlreadyAuthorizedError(PurchaseStateError):
    code = "payment_already_authorized"
    title = "Payment already authorized"


class PaymentAlreadySettledError(PurchaseStateError):
    code = "payment_already_settled"
    title = "Payment already settled"


class CannotSettleNotAuthorizedPaymentError(PurchaseStateError):
    code = "cannot_settle_not_authorized_payment"
    title = "Cannot settle an unauthorized payment"


class InvalidTransitionError(PurchaseStateError):
    code = "invalid_transition"
    title = "Invalid transition"


class PaymentAlreadyFailedError(PurchaseStateError):
    """Any payment command, void or refund that arrives after the payment failed."""

    code = "payment_already_failed"
    title = "Payment already failed"


class PaymentNotSettledError(PurchaseStateError):
    """A refund of a payment that has not settled (fail it instead, or wait)."""

    code = "payment_not_settled"
    title = "Payment not settled"


class InvoiceAlreadyCreatedError(PurchaseStateError):
    code = "invoice_already_created"
    title = "Invoice already created"


class InvoiceNotCreatedError(PurchaseStateError):
    """A payment step of an invoice purchase whose invoice does not exist yet."""

    code = "invoice_not_created"
    title = "Invoice not created"


class CreditStateError(LedgerError):
    """A command that the customer's credit (what remains of the grants) does not permit."""


class InsufficientCreditError(CreditStateError):
    """A consumption asked for more than the customer can spend now; nothing was written."""

    code = "insufficient_credit"
    title = "Insufficient credit"

    def __init__(self, detail: str, *, available: str) -> None:
        self.available = available
        """The spendable total at the consumption's time, for its feature (a decimal string)."""
        super().__init__(detail)


class CreditGrantExpiredError(CreditStateError):
    code = "credit_grant_expired"
    title = "Credit grant expired"


class NothingToVoidError(CreditStateError):
    code = "nothing_to_void"
    title = "Nothing to void"


class CreditsNotGrantedError(CreditStateError):
    code = "credits_not_granted"
    title = "Credits not granted yet"


class NothingToRefundError(CreditStateError):
    code = "nothing_to_refund"
    title = "Nothing to refund"


class RefundExceedsRemainingError(CreditStateError):
    """A refund asked for more credit than remains unconsumed; nothing was written."""

    code = "refund_exceeds_remaining"
    title = "Refund exceeds the remaining credit"

    def __init__(self, detail: str, *, remaining: str) -> None:
        self.remaining = remaining
        """What could be refunded at the refund's time (a decimal string)."""
        super().__init__(detail)


class CreditPurchaseNotFoundError(LedgerError):
    code = "credit_purchase_not_found"
    title = "Credit purchase not found"


class IdempotencyKeyReusedError(LedgerError):
    code = "idempotency_key_reused"
    title = "Idempotency key reused with a different request"


class ConcurrentModificationError(LedgerError):
    code = "concurrent_modification"
    title = "Concurrent modification"


class VersionMismatchError(LedgerError):
    code = "version_mismatch"
    title = "Version mismatch"


class EventSequenceError(LedgerError):
    """An event does not follow the aggregate's last version: the history is corrupt."""

    code = "event_sequence_broken"
    title = "Event sequence broken"


STATE_ERRORS: dict[str, type[LedgerError]] = {
    cls.code: cls
    for cls in (
        PaymentAlreadyAuthorizedError,
        PaymentAlreadySettledError,
        CannotSettleNotAuthorizedPaymentError,
        InvalidTransitionError,
        PaymentAlreadyFailedError,
        PaymentNotSettledError,
        InvoiceAlreadyCreatedError,
        InvoiceNotCreatedError,
        CreditsNotGrantedError,
    )
}
"""The errors the transition table may name, by code."""
