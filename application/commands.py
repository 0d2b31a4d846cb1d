"""Command models: what a caller asks the ledger to do.

The models check only the request's shape. Amounts are taken as the caller wrote them (string,
int, Decimal, even float) and judged by the domain, so that a request with several problems gets
every one of them back at once, with a precise code each (``float_not_allowed``, ``not_finite``...).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, Strict, field_validator
from pydantic_core import PydanticSerializationError

from creditledger.application.input_types import StorableText, Timestamp
from creditledger.domain.consumption import ConsumptionRequest, normalize_consumption
from creditledger.domain.intent import PurchaseIntent, normalize_intent

IDEMPOTENCY_KEY_MAX_LENGTH = 255


def _keep_as_written(value: object) -> object:
    if isinstance(value, str | int | float | Decimal):
        return value
    msg = "must be a decimal number written as a string"
    raise ValueError(msg)


AmountInput = Annotated[
    Decimal | str | int | float, PlainValidator(_keep_as_written, json_schema_input_type=str)
]
"""A money amount as the caller wrote it; the domain parses and judges it."""

IdempotencyKey = Annotated[
    str, Field(min_length=1, max_length=IDEMPOTENCY_KEY_MAX_LENGTH, pattern=r"^[\x21-\x7e]+$")
]
"""Printable ASCII without spaces, as HTTP headers carry it."""


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    NAME: ClassVar[str]

    namespace: str
    idempotency_key: IdempotencyKey | None = None

    def fingerprint(self) -> str:
        """A digest of the request without its key: the same key must come with the same request."""
        # pydantic's JSON is canonical for one command class: fields in declaration order,
        # values in their normal form; the command's name keeps classes apart.
        excluded = {"idempotency_key", "expected_version"}
        normal = self.normalized()
        try:
            body = normal.model_dump_json(exclude=excluded)
        except PydanticSerializationError:
            # Only text UTF-8 cannot carry (an unpaired surrogate) fails here. The domain refuses
            # such a request, so it never matches a stored digest: any stable digest will do.
            body = repr(normal.model_dump(exclude=excluded))
        return hashlib.sha256(f"{self.NAME}\n{body}".encode()).hexdigest()

    def normalized(self) -> Command:
        """The request with every order that carries no meaning put in one order."""
        return self


class SettlementInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    initial_status: str | None = None
    currency: str | None = None


class InitiatePurchase(Command):
    """Grant credits to a customer, to be paid for as ``settlement`` says."""

    NAME = "initiate"

    customer_id: str
    currency: str
    credit_amount: AmountInput
    cost_basis: AmountInput | None = None
    settlement: SettlementInput
    priority: Annotated[int, Strict()] | None = None
    expires_at: Timestamp | None = None
    feature_filters: list[str] = Field(default_factory=list)
    name: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _keys_in_order(cls, metadata: dict[str, str]) -> dict[str, str]:
        # JSON objects have no order: {"a","b"} and {"b","a"} are the same request.
        return dict(sorted(metadata.items()))

    def normalized(self) -> InitiatePurchase:
        # The purchase stores its feature keys sorted: a retry listing them in another order
        # asks for the same purchase. (Sorted here, not on input: problems name the caller's
        # own positions, such as feature_filters[2].)
        return self.model_copy(update={"feature_filters": sorted(self.feature_filters)})

    def intent(self, now: datetime) -> PurchaseIntent:
        """The purchase this asks for, validated and normalized as of ``now``.

        Raises ``ValidationFailedError`` listing every problem at once.
        """
        return normalize_intent(
            now=now,
            namespace=self.namespace,
            customer_id=self.customer_id,
            currency=self.currency,
            credit_amount=self.credit_amount,
            settlement_type=self.settlement.type,
            cost_basis=self.cost_basis,
            initial_status=self.settlement.initial_status,
            settlement_currency=self.settlement.currency,
            priority=self.priority,
            expires_at=self.expires_at,
            feature_filters=self.feature_filters,
            name=self.name,
            metadata=self.metadata,
        )


class PaymentCommand(Command):
    purchase_id: UUID
    external_reference: Annotated[StorableText, Field(min_length=1, max_length=256)] | None = None
    expected_version: int | None = None
    """If set (HTTP ``If-Match``), the command applies only to exactly this version."""


class AuthorizePayment(PaymentCommand):
    """The external payment was authorized."""

    NAME = "authorize"


class SettlePayment(PaymentCommand):
    """The external payment settled (authorizing it first if that was never reported)."""

    NAME = "settle"


class VoidPurchase(PaymentCommand):
    """Forfeit what remains of the purchase's credit now; the payment is left as it was."""

    NAME = "void"

    reason: Annotated[StorableText, Field(min_length=1, max_length=256)] | None = None


class CreateInvoice(PaymentCommand):
    """The invoice of an invoice purchase was created (its one line bills the purchase): grant
    the credits. The invoice and line ids are recorded once and never change."""

    NAME = "invoice_created"

    invoice_id: Annotated[StorableText, Field(min_length=1, max_length=256)]
    line_id: Annotated[StorableText, Field(min_length=1, max_length=256)]


class FailPayment(PaymentCommand):
    """The payment failed (declined, invoice uncollectible...): take back the unconsumed credit;
    what was consumed stays owed."""

    NAME = "fail"

    reason: Annotated[StorableText, Field(min_length=1, max_length=256)]


class RefundPayment(PaymentCommand):
    """Give back part or all of a settled payment: ``amount`` credits (everything unconsumed when
    omitted) are taken back, and the money they were paid for goes back out."""

    NAME = "refund"

    amount: AmountInput | None = None
    reason: Annotated[StorableText, Field(min_length=1, max_length=256)] | None = None


class ConsumeCredits(Command):
    """Spend credit of a customer in one currency, from its grants in burn-down order."""

    NAME = "consume"

    customer_id: str
    currency: str
    amount: AmountInput
    feature_key: str | None = None
    usage_reference: str | None = None

    def request(self) -> ConsumptionRequest:
        """The consumption this asks for, validated and rounded to the currency.

        Raises ``ValidationFailedError`` listing every problem at once.
        """
        return normalize_consumption(
            namespace=self.namespace,
            customer_id=self.customer_id,
            currency=self.currency,
            amount=self.amount,
            feature_key=self.feature_key,
            usage_reference=self.usage_reference,
        )
