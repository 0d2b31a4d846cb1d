"""Request and response bodies of the HTTP API, separate from commands and events.

Request models check the shape only (types, required fields, no unknown fields). The values are
judged by the domain, which lists every problem at once with its own codes; the limits written
into the schema below (lengths, patterns, ranges) document the domain's rules for clients and
are enforced by the domain, not here, so one request gets one consistent set of error codes.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict
from pydantic.config import JsonDict

from creditledger.application.commands import (
    AmountInput,
    ConsumeCredits,
    InitiatePurchase,
    SettlementInput,
)
from creditledger.application.credit_views import CreditEntry
from creditledger.application.input_types import Timestamp
from creditledger.application.purchase_view import HistoryEntry, PurchaseView
from creditledger.domain.intent import (
    MAX_FEATURE_FILTERS,
    MAX_FEATURE_KEY_LENGTH,
    MAX_ID_LENGTH,
    MAX_METADATA_ENTRIES,
    MAX_NAME_LENGTH,
    MAX_PRIORITY,
    MIN_PRIORITY,
)
from creditledger.domain.ledger import Account
from creditledger.domain.status import InitialPaymentStatus, SettlementType, Unit

DECIMAL_PATTERN = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
NAMESPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""The domain's namespace rule: a path naming any other namespace names nothing (404)."""

_AMOUNT_NOTE = (
    " A decimal number written as a JSON string. Integers are accepted too; a JSON number with "
    "a fraction is refused (float_not_allowed): binary floats cannot carry money exactly."
)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SettlementRequest(_Request):
    """How the purchase is paid for."""

    type: Annotated[
        str,
        Field(
            description="external: paid outside (authorize and settle report it; credit "
            "granted at once); promotional: free credit, final at once; invoice: billed on an "
            "invoice line, created with status created and nothing granted until "
            "POST .../invoice (then authorize when the invoice is approved, settle when paid).",
            json_schema_extra={"enum": [s.value for s in SettlementType]},
            examples=["external"],
        ),
    ]
    initial_status: Annotated[
        str | None,
        Field(
            description="External purchases only: the payment's status at creation "
            "(default created). authorized and settled run those commands right after the grant.",
            json_schema_extra={"enum": [s.value for s in InitialPaymentStatus] + [None]},
            examples=["created"],
        ),
    ] = None


class PurchaseCreate(_Request):
    """A credit purchase to initiate (the namespace comes from the path)."""

    customer_id: Annotated[
        str,
        Field(
            description="The customer's id in your system.",
            json_schema_extra={"minLength": 1, "maxLength": MAX_ID_LENGTH},
            examples=["cust-1"],
        ),
    ]
    currency: Annotated[
        str,
        Field(
            description="ISO 4217 code of the credits (and of the payment).",
            json_schema_extra={"pattern": "^[A-Z]{3}$"},
            examples=["USD"],
        ),
    ]
    credit_amount: Annotated[
        AmountInput,
        Field(
            description="Credits to grant, rounded once to the currency's minor unit, half away "
            "from zero; must be positive after rounding." + _AMOUNT_NOTE,
            json_schema_extra={"pattern": DECIMAL_PATTERN},
            examples=["100.123"],
        ),
    ]
    cost_basis: Annotated[
        AmountInput | None,
        Field(
            description="Price per credit, never rounded: required and positive for external "
            "and invoice purchases, absent for promotional ones." + _AMOUNT_NOTE,
            json_schema_extra={"pattern": DECIMAL_PATTERN},
            examples=["0.5"],
        ),
    ] = None
    settlement: SettlementRequest
    priority: Annotated[
        Annotated[int, Strict()] | None,
        Field(
            description=f"Consumption priority, {MIN_PRIORITY} to {MAX_PRIORITY} (default 100).",
            json_schema_extra={"minimum": MIN_PRIORITY, "maximum": MAX_PRIORITY},
            examples=[10],
        ),
    ] = None
    expires_at: Annotated[
        Timestamp | None,
        Field(
            description="When the credits expire: RFC 3339 with an offset, in the future; "
            "truncated to the second, in UTC.",
            examples=[None],
        ),
    ] = None
    feature_filters: Annotated[
        list[str],
        Field(
            description="Feature keys the credits may pay for; unique, stored sorted.",
            json_schema_extra={
                "maxItems": MAX_FEATURE_FILTERS,
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_FEATURE_KEY_LENGTH},
            },
            examples=[["api_calls"]],
        ),
    ] = Field(default_factory=list)
    name: Annotated[
        str | None,
        Field(
            description="Display name.",
            json_schema_extra={"maxLength": MAX_NAME_LENGTH},
            examples=["Top-up"],
        ),
    ] = None
    metadata: Annotated[
        dict[str, str],
        Field(
            description=f"Labels: at most {MAX_METADATA_ENTRIES} entries, keys up to 64 "
            "characters, values up to 512.",
            json_schema_extra={"maxProperties": MAX_METADATA_ENTRIES},
            examples=[{"order": "A-1"}],
        ),
    ] = Field(default_factory=dict)

    def command(self, namespace: str, idempotency_key: str | None) -> InitiatePurchase:
        """The command this request asks for, in ``namespace`` (from the path, or the import's
        ``--namespace``)."""
        return InitiatePurchase(
            namespace=namespace,
            idempotency_key=idempotency_key,
            customer_id=self.customer_id,
            currency=self.currency,
            credit_amount=self.credit_amount,
            cost_basis=self.cost_basis,
            settlement=SettlementInput(
                type=self.settlement.type, initial_status=self.settlement.initial_status
            ),
            priority=self.priority,
            expires_at=self.expires_at,
            feature_filters=self.feature_filters,
            name=self.name,
            metadata=self.metadata,
        )


class PaymentUpdate(_Request):
    """Optional body of authorize and settle."""

    external_reference: Annotated[
        str | None,
        Field(
            description="The payment provider's reference, kept with the ledger entry.",
            min_length=1,
            max_length=256,
            examples=["psp-123"],
        ),
    ] = None


class VoidRequest(_Request):
    """Optional body of void."""

    reason: Annotated[
        str | None,
        Field(
            description="Why the credit is forfeited, kept with the void (1 to 256 characters).",
            json_schema_extra={"minLength": 1, "maxLength": 256},
            examples=["granted by mistake"],
        ),
    ] = None


_TEXT_256: JsonDict = {"minLength": 1, "maxLength": 256}
_PAYMENT_REFERENCE = Field(
    description="The payment provider's reference, kept with the ledger entry (1 to 256 "
    "characters).",
    json_schema_extra=_TEXT_256,
    examples=["psp-123"],
)


class InvoiceRequest(_Request):
    """Body of invoice: the invoice line that bills an invoice purchase."""

    invoice_id: Annotated[
        str,
        Field(
            description="Your invoice's id (1 to 256 characters), kept with the purchase.",
            json_schema_extra=_TEXT_256,
            examples=["inv-2026-0042"],
        ),
    ]
    line_id: Annotated[
        str,
        Field(
            description="The invoice line that bills this purchase (1 to 256 characters).",
            json_schema_extra=_TEXT_256,
            examples=["line-1"],
        ),
    ]


class FailRequest(_Request):
    """Body of fail: why the payment failed."""

    reason: Annotated[
        str,
        Field(
            description="Why the payment failed (declined, uncollectible...), kept with the "
            "failure (1 to 256 characters).",
            json_schema_extra=_TEXT_256,
            examples=["card declined"],
        ),
    ]
    external_reference: Annotated[str | None, _PAYMENT_REFERENCE] = None


class RefundRequest(_Request):
    """Body of refund: how much credit to take back (and so which share of the payment)."""

    amount: Annotated[
        AmountInput | None,
        Field(
            description="Credits to refund, rounded once to the currency's minor unit; "
            "positive and at most what remains unconsumed (refund_exceeds_remaining). null: "
            "everything that remains. The money returned is in realizations.refunds."
            + _AMOUNT_NOTE,
            json_schema_extra={"pattern": DECIMAL_PATTERN},
            examples=["10.00"],
        ),
    ]
    reason: Annotated[
        str | None,
        Field(
            description="Why, kept with the refund (1 to 256 characters).",
            json_schema_extra=_TEXT_256,
            examples=["customer asked"],
        ),
    ] = None
    external_reference: Annotated[str | None, _PAYMENT_REFERENCE] = None


class ConsumptionCreate(_Request):
    """Credit to spend (the customer comes from the path)."""

    currency: Annotated[
        str,
        Field(
            description="ISO 4217 code: the customer's grants in this currency pay.",
            json_schema_extra={"pattern": "^[A-Z]{3}$"},
            examples=["USD"],
        ),
    ]
    amount: Annotated[
        AmountInput,
        Field(
            description="Credits to spend, rounded once to the currency's minor unit, half away "
            "from zero; must be positive after rounding." + _AMOUNT_NOTE,
            json_schema_extra={"pattern": DECIMAL_PATTERN},
            examples=["12.5"],
        ),
    ]
    feature: Annotated[
        str | None,
        Field(
            description="The feature the credit pays for: only grants whose feature_filters "
            "list it (or are empty) are drawn from. Absent or null: only grants without "
            "filters.",
            json_schema_extra={"minLength": 1, "maxLength": MAX_FEATURE_KEY_LENGTH},
            examples=["api_calls"],
        ),
    ] = None
    reference: Annotated[
        str | None,
        Field(
            description="Your usage record's id, kept with the consumption.",
            json_schema_extra={"minLength": 1, "maxLength": MAX_ID_LENGTH},
            examples=["usage-evt-1"],
        ),
    ] = None

    def command(
        self, namespace: str, customer_id: str, idempotency_key: str | None
    ) -> ConsumeCredits:
        return ConsumeCredits(
            namespace=namespace,
            idempotency_key=idempotency_key,
            customer_id=customer_id,
            currency=self.currency,
            amount=self.amount,
            feature_key=self.feature,
            usage_reference=self.reference,
        )


class CreditHistoryPage(BaseModel):
    """A page of a customer's credit history in one currency, oldest first."""

    items: list[CreditEntry]
    next_after: int | None = Field(
        description="Pass as after= for the next page; null on the last page."
    )


class HistoryPage(BaseModel):
    """A purchase's events, oldest first."""

    items: list[HistoryEntry]


class PurchaseList(BaseModel):
    """A page of purchases, oldest first, from the purchases read model."""

    items: list[PurchaseView]
    next_cursor: str | None = Field(
        description="Pass as cursor= for the next page; null on the last page."
    )
    position: int = Field(description="The log position the read model reflected.")


class BalanceEntry(BaseModel):
    currency: str = Field(examples=["USD"])
    account: Account
    unit: Unit = Field(
        description="What the balance counts: credits (face value: customer_fbo, "
        "customer_receivable_open, customer_accrued, breakage, brokerage_credits) or cash "
        "(money: customer_receivable_authorized, wash, brokerage_cash). Never sum across units."
    )
    balance: Decimal = Field(description="In the currency's minor units, as a string.")


class CustomerBalances(BaseModel):
    """Every ledger account of a customer, per currency."""

    customer_id: str
    as_of: datetime | None = Field(description="The time asked for; null: now.")
    position: int = Field(description="The log position the ledger read model reflected.")
    balances: list[BalanceEntry]


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the field, or the header's name.")
    code: str = Field(description="Stable code of the problem, e.g. cost_basis_not_positive.")
    message: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (media type application/problem+json)."""

    type: str = Field(description="/v1/problems/<code>")
    title: str
    status: int
    code: str = Field(description="Stable error code: clients switch on it.")
    detail: str
    errors: list[FieldProblem] = Field(
        description="Every field problem of a validation_failed error; empty otherwise."
    )
    request_id: str | None = Field(
        None, description="The X-Request-Id of the request, to find it in the logs."
    )
    available: str | None = Field(
        None,
        description="insufficient_credit only: what the customer could spend at that moment "
        "for that feature (a decimal string).",
        examples=["7.50"],
    )
    remaining: str | None = Field(
        None,
        description="refund_exceeds_remaining only: the credit that remained unconsumed, what "
        "a refund could take back at that moment (a decimal string).",
        examples=["4.00"],
    )


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    checks: dict[str, Any] = Field(
        description="What was checked and what it found.", examples=[{"store": "ok"}]
    )
