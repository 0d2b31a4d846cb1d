"""A reference model of the ledger, written apart from the aggregate, to test the aggregate against.

The model reads the transition table only as data (the JSON of
``creditledger.domain.rules.table_as_data``) and decides every command with plain dictionaries and
strings: it never calls the aggregate, ``rule_for`` or the ledger's money functions. Amounts are
rounded here with exact fractions, from its own table of currency minor units. Two independent
implementations that agree on thousands of random histories are the evidence; where they disagree,
one of them is wrong, and Hypothesis shrinks the history that shows it.

Nothing here imports Hypothesis: the model is usable from any test framework.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from math import floor
from types import MappingProxyType
from typing import Any, Literal, assert_never, cast, get_args
from uuid import UUID

from creditledger.application.commands import (
    AuthorizePayment,
    ConsumeCredits,
    CreateInvoice,
    FailPayment,
    InitiatePurchase,
    RefundPayment,
    SettlePayment,
    VoidPurchase,
)
from creditledger.application.testing.model_wallet import (
    PAYMENT_FAILED,
    REFUND,
    ZERO,
    GrantTerms,
    ModelGrant,
    ModelWallet,
    ModelWalletEvent,
    WalletKey,
)
from creditledger.domain.intent import DEFAULT_PRIORITY
from creditledger.domain.rules import table_as_json

MINOR_UNITS: Mapping[str, int] = MappingProxyType(
    {
        "JPY": 0,
        "KRW": 0,
        "USD": 2,
        "EUR": 2,
        "BHD": 3,
        "KWD": 3,
        "TND": 3,
        "CLF": 4,
    }
)
"""The model's own currency table (ISO 4217 minor units); a test checks it against ISO data."""

INITIATED = "Initiated"
PAYMENT_AUTHORIZED = "PaymentAuthorized"
PAYMENT_SETTLED = "PaymentSettled"
PURCHASE_VOIDED = "PurchaseVoided"
INVOICE_CREATED = "InvoiceCreated"
PAYMENT_FAILED_EVENT = "PaymentFailed"
PAYMENT_REFUNDED = "PaymentRefunded"
ModelEventType = Literal[
    "Initiated",
    "PaymentAuthorized",
    "PaymentSettled",
    "PurchaseVoided",
    "InvoiceCreated",
    "PaymentFailed",
    "PaymentRefunded",
]
"""The event types the model knows, closed: ``ModelPurchase.state`` matches on every one, so a
type added here and not handled there fails ``mypy``; a type the table names and the model does
not know is refused when the model records it."""
STATUS_KEEPING = frozenset({PURCHASE_VOIDED, PAYMENT_REFUNDED})
"""Events that leave the status as it was (domain reference: a void forfeits credit and leaves
the payment alone; a refund gives part of a settled payment back and the purchase stays final).
The table's ``status_after`` lists only the events that move a purchase."""
CREDIT_HOLDING = frozenset({"active.payment.pending", "active.payment.authorized", "final"})
"""The statuses in which a purchase's credit has been granted (and not taken back by a failed
payment): the first event that leaves a purchase in one of them is its grant."""
EXTERNAL = "external"
INVOICE = "invoice"
INITIATE = "initiate"
VOID = "void"
INVALID_TRANSITION = "invalid_transition"

PaymentRequest = (
    AuthorizePayment | SettlePayment | VoidPurchase | CreateInvoice | FailPayment | RefundPayment
)
PurchaseRequest = InitiatePurchase | PaymentRequest
CREDIT_CHANGES = (VoidPurchase, CreateInvoice, FailPayment, RefundPayment)
"""The purchase commands that change its wallet too, in the same write."""


def round_half_away_from_zero(value: Fraction, places: int) -> Decimal:
    """``value`` rounded to ``places`` decimals, half away from zero, computed exactly."""
    scaled = abs(value) * 10**places
    units = floor(scaled + Fraction(1, 2))
    sign = "-" if value < 0 and units else ""
    # Built from text, so no decimal context can round the (possibly long) coefficient.
    return Decimal(f"{sign}{units}E-{places}") if places else Decimal(f"{sign}{units}")


def exact(amount: object) -> Fraction:
    """An amount as a caller wrote it (str, int or Decimal) as an exact fraction."""
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        msg = f"the model reads amounts written as str, int or Decimal, not {amount!r}"
        raise TypeError(msg)
    return Fraction(Decimal(amount) if isinstance(amount, str) else amount)


def round_to_currency(amount: Fraction, currency: str) -> Decimal:
    return round_half_away_from_zero(amount, MINOR_UNITS[currency])


# -- the transition table, as data -------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """What a command does in one situation: the events it records, or the error it raises."""

    events: tuple[str, ...] = ()
    error: str | None = None


class TransitionTable:
    """The transition table read from its JSON data: rows, statuses after events, initial route."""

    def __init__(
        self,
        rows: Mapping[tuple[str, str | None, str], Row],
        status_after: Mapping[tuple[str, str], str],
        initial_route: Mapping[str, str | None],
    ) -> None:
        self._rows = dict(rows)
        self._status_after = dict(status_after)
        self._initial_route = dict(initial_route)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> TransitionTable:
        rows = {
            (row["settlement"], row["status"], row["command"]): Row(
                events=tuple(row["events"]), error=row["error"]
            )
            for row in data["rules"]
        }
        status_after = {
            (entry["settlement"], entry["event"]): entry["status"] for entry in data["status_after"]
        }
        return cls(rows, status_after, dict(data["initial_status_route"]))

    @classmethod
    def from_json(cls, text: str) -> TransitionTable:
        data: dict[str, Any] = json.loads(text)
        return cls.from_data(data)

    @classmethod
    def current(cls) -> TransitionTable:
        """The table the code ships, read through its JSON export like any outside tool would."""
        return cls.from_json(table_as_json())

    def row(self, settlement: str, status: str | None, command: str) -> Row:
        # The table's contract: a situation with no row is an invalid transition.
        return self._rows.get((settlement, status, command), Row(error=INVALID_TRANSITION))

    def status_after(self, settlement: str, event: str) -> str:
        return self._status_after[(settlement, event)]

    def settlements(self) -> frozenset[str]:
        return frozenset(settlement for settlement, _, _ in self._rows)

    def initiation(self, settlement: str, initial_status: str | None) -> tuple[Row, ...]:
        """The rows an initiate runs through: the grant, then the initial status's command."""
        grant = self.row(settlement, None, INITIATE)
        if grant.error is not None or initial_status is None:
            return (grant,)
        follow = self._initial_route.get(initial_status)
        if follow is None:
            return (grant,)
        status = None
        for event in grant.events:
            status = self.status_after(settlement, event)
        return (grant, self.row(settlement, status, follow))


# -- what the ledger must show ------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedPayment:
    status: str
    amount: str
    authorized_at: datetime
    authorized_reference: str | None
    settled_at: datetime | None = None
    settled_reference: str | None = None


@dataclass(frozen=True)
class ExpectedInvoice:
    invoice_id: str
    line_id: str
    created_at: datetime


@dataclass(frozen=True)
class ExpectedFailure:
    at: datetime
    reason: str
    revoked: Decimal
    """The unconsumed credit taken back."""
    released: Decimal
    """Credit expired or voided before the failure, no longer owed either."""
    owed: Decimal
    """What was consumed: it stays owed (the open receivable the failure leaves)."""
    external_reference: str | None


@dataclass(frozen=True)
class ExpectedRefunds:
    count: int
    amount: Decimal
    cash_amount: Decimal
    last_at: datetime


@dataclass(frozen=True)
class ExpectedVoid:
    at: datetime
    amount: Decimal
    reason: str | None


@dataclass(frozen=True)
class ExpectedExpiry:
    at: datetime
    """When the expiry took effect: the grant's ``expires_at``."""
    amount: Decimal
    recorded: bool
    """Whether its ``GrantExpired`` was written (else it is due, and shown all the same)."""


@dataclass(frozen=True)
class CreditAmounts:
    """What the purchase's wallet says of its grant at one moment (nothing, by default)."""

    consumed: Decimal = ZERO
    expired: Decimal = ZERO
    expiry: ExpectedExpiry | None = None
    held: bool = False
    """Whether the wallet holds the grant at that moment (a clock turned back behind the wallet
    may show a purchase's version before its wallet's ``GrantAdded``)."""

    @classmethod
    def of(cls, grant: ModelGrant | None) -> CreditAmounts:
        if grant is None:
            return cls()
        expiry = None
        if grant.expired_at is not None:
            expiry = ExpectedExpiry(grant.expired_at, grant.expired, grant.expiry_recorded)
        return cls(consumed=grant.consumed, expired=grant.expired, expiry=expiry, held=True)


CREDIT_FIELDS = frozenset({"remaining", "consumed", "expired", "voided", "void", "expiry"})
"""The fields of ``ExpectedState`` that consumption, expiry and void change."""


@dataclass(frozen=True)
class ExpectedState:
    """A purchase at one version, field by field, as any view of it must show it.

    Amounts that the ledger rounds are compared as text, so a value with the wrong number of
    decimals (``100.1`` for ``100.10`` USD) is a difference; the cost basis, never rounded, is
    compared by value.
    """

    id: UUID
    namespace: str
    customer_id: str
    currency: str
    credit_amount: str
    cost_basis: Decimal | None
    payment_amount: str | None
    settlement: str
    initial_status: str | None
    priority: int
    expires_at: datetime | None
    feature_filters: tuple[str, ...]
    name: str | None
    metadata: Mapping[str, str]
    status: str
    meta_status: str
    version: int
    created_at: datetime
    updated_at: datetime
    granted_at: datetime | None
    payment: ExpectedPayment | None
    """An external purchase's payment (``realizations.external_payment``)."""
    invoice_payment: ExpectedPayment | None = None
    """An invoice purchase's payment (``realizations.invoice_payment``)."""
    invoice: ExpectedInvoice | None = None
    remaining: Decimal = ZERO
    """granted - consumed - expired - voided - revoked - refunded (compared by value, like the
    other amounts below: they are sums the ledger may write with any exponent). Nothing is
    granted while an invoice purchase waits for its invoice."""
    consumed: Decimal = ZERO
    expired: Decimal = ZERO
    voided: Decimal = ZERO
    revoked: Decimal = ZERO
    """Taken back by the payment's failure."""
    refunded: Decimal = ZERO
    """Taken back by refunds."""
    void: ExpectedVoid | None = None
    expiry: ExpectedExpiry | None = None
    failure: ExpectedFailure | None = None
    refunds: ExpectedRefunds | None = None


@dataclass(frozen=True)
class ModelEvent:
    type: ModelEventType
    version: int
    at: datetime
    idempotency_key: str | None
    external_reference: str | None = None
    amount: Decimal | None = None
    """A void's forfeited amount; a refund's credit taken back."""
    reason: str | None = None
    facts: EventFacts | None = None
    """What an invoice, a failure or a refund recorded beyond the common fields."""


@dataclass(frozen=True)
class EventFacts:
    """The facts the model decided for an event, beyond its type and time."""

    invoice: tuple[str, str] | None = None
    """(invoice id, line id)."""
    cash_amount: Decimal = ZERO
    """A refund's money returned."""
    revoked: Decimal = ZERO
    released: Decimal = ZERO
    owed: Decimal = ZERO
    reversed_authorization: Decimal | None = None
    """A failure's authorized cash moved back (None: the payment was never authorized)."""


@dataclass(frozen=True)
class _Realized:
    payment: ExpectedPayment | None
    void: ExpectedVoid | None
    invoice: ExpectedInvoice | None
    failure: ExpectedFailure | None
    refunds: ExpectedRefunds | None


@dataclass
class ModelPurchase:
    """One purchase as the model knows it: the normalized intent and the events, in order."""

    id: UUID
    namespace: str
    customer_id: str
    currency: str
    credit_amount: Decimal
    cost_basis: Decimal | None
    payment_amount: Decimal | None
    settlement: str
    initial_status: str | None
    priority: int
    expires_at: datetime | None
    feature_filters: tuple[str, ...]
    name: str | None
    metadata: dict[str, str]
    table: TransitionTable
    events: list[ModelEvent] = field(default_factory=list)
    requests: dict[str, tuple[RequestIdentity, int]] = field(default_factory=dict)
    """Idempotency key -> (the request it came with, the version that request left)."""

    @property
    def version(self) -> int:
        return len(self.events)

    @property
    def status(self) -> str | None:
        return self.status_at(self.version)

    @property
    def updated_at(self) -> datetime | None:
        return self.events[-1].at if self.events else None

    def status_at(self, version: int) -> str | None:
        # The last event that moved the purchase says where it rests.
        for event in reversed(self.events[:version]):
            if event.type not in STATUS_KEEPING:
                return self.table.status_after(self.settlement, event.type)
        return None

    def count(self, event_type: str) -> int:
        return sum(1 for event in self.events if event.type == event_type)

    def version_as_of(self, moment: datetime) -> int:
        """The last version recorded at or before ``moment``; 0 if the purchase did not exist."""
        return sum(1 for event in self.events if event.at <= moment)

    def granted_version(self, version: int | None = None) -> int | None:
        """The version that granted the credit (by ``version``), or None: the first event that
        left the purchase in a status holding credit (``CREDIT_HOLDING``)."""
        version = self.version if version is None else version
        for event in self.events[:version]:
            if self.status_at(event.version) in CREDIT_HOLDING:
                return event.version
        return None

    @property
    def granted_at(self) -> datetime | None:
        granted = self.granted_version()
        return None if granted is None else self.events[granted - 1].at

    @property
    def refunded(self) -> Decimal:
        """Credit taken back by refunds so far."""
        return sum(
            (e.amount or ZERO for e in self.events if e.type == PAYMENT_REFUNDED), start=ZERO
        )

    @property
    def refunded_cash(self) -> Decimal:
        return sum(
            (e.facts.cash_amount for e in self.events if e.facts and e.type == PAYMENT_REFUNDED),
            start=ZERO,
        )

    def state(
        self, version: int | None = None, credit: CreditAmounts | None = None
    ) -> ExpectedState:
        """The purchase as it stood at ``version`` (now, by default), with what its wallet says
        of its grant (``LedgerModel.credit``; nothing consumed or expired without it, nor before
        the purchase granted anything)."""
        version = self.version if version is None else version
        if not 1 <= version <= self.version:
            msg = f"purchase {self.id} has no version {version}"
            raise ValueError(msg)
        events = self.events[:version]
        realized = self._realized(events)
        payment, void, failure, refunds = (
            realized.payment,
            realized.void,
            realized.failure,
            realized.refunds,
        )
        status = self.status_at(version)
        if status is None:  # pragma: no cover - a history begins with Initiated
            msg = f"purchase {self.id} has no status at version {version}"
            raise ValueError(msg)
        granted = self.granted_version(version)
        # Credit nobody granted yet has nothing consumed or expired, whatever the wallet holds
        # by the same instant.
        credit = credit if credit is not None and granted is not None else CreditAmounts()
        if not credit.held and failure is not None:
            # Without its wallet's grant, a failed purchase shows what its failure recorded.
            credit = CreditAmounts(consumed=failure.owed)
        voided = void.amount if void is not None else ZERO
        revoked = failure.revoked if failure is not None else ZERO
        refunded = refunds.amount if refunds is not None else ZERO
        granted_amount = self.credit_amount if granted is not None else ZERO
        by_invoice = self.settlement == INVOICE
        return ExpectedState(
            id=self.id,
            namespace=self.namespace,
            customer_id=self.customer_id,
            currency=self.currency,
            credit_amount=str(self.credit_amount),
            cost_basis=self.cost_basis,
            payment_amount=None if self.payment_amount is None else str(self.payment_amount),
            settlement=self.settlement,
            initial_status=self.initial_status,
            priority=self.priority,
            expires_at=self.expires_at,
            feature_filters=self.feature_filters,
            name=self.name,
            metadata=dict(self.metadata),
            status=status,
            meta_status=status.split(".", 1)[0],
            version=version,
            created_at=events[0].at,
            updated_at=events[-1].at,
            granted_at=None if granted is None else events[granted - 1].at,
            payment=None if by_invoice else payment,
            invoice_payment=payment if by_invoice else None,
            invoice=realized.invoice,
            remaining=granted_amount
            - credit.consumed
            - credit.expired
            - voided
            - revoked
            - refunded,
            consumed=credit.consumed,
            expired=credit.expired,
            voided=voided,
            revoked=revoked,
            refunded=refunded,
            void=void,
            expiry=credit.expiry,
            failure=failure,
            refunds=refunds,
        )

    def _realized(self, events: Sequence[ModelEvent]) -> _Realized:
        """What ``events`` realized: payment, invoice, void, failure and refunds."""
        payment: ExpectedPayment | None = None
        void: ExpectedVoid | None = None
        invoice: ExpectedInvoice | None = None
        failure: ExpectedFailure | None = None
        refunds: ExpectedRefunds | None = None
        for event in events:
            facts = event.facts or EventFacts()
            match event.type:
                case "Initiated":
                    pass  # the purchase's terms are the model's own fields
                case "InvoiceCreated":
                    if facts.invoice is None:  # pragma: no cover - recorded with its ids
                        msg = f"the model's invoice of {self.id} has no ids"
                        raise ValueError(msg)
                    invoice = ExpectedInvoice(*facts.invoice, created_at=event.at)
                case "PaymentAuthorized":
                    payment = ExpectedPayment(
                        status="authorized",
                        amount=str(self.payment_amount),
                        authorized_at=event.at,
                        authorized_reference=event.external_reference,
                    )
                case "PaymentSettled":
                    if payment is None:
                        msg = f"the model settled purchase {self.id} without an authorization"
                        raise ValueError(msg)
                    payment = replace(
                        payment,
                        status="settled",
                        settled_at=event.at,
                        settled_reference=event.external_reference,
                    )
                case "PurchaseVoided":
                    void = ExpectedVoid(event.at, event.amount or ZERO, event.reason)
                case "PaymentFailed":
                    if payment is not None:
                        payment = replace(payment, status="failed")
                    failure = ExpectedFailure(
                        at=event.at,
                        reason=event.reason or "",
                        revoked=facts.revoked,
                        released=facts.released,
                        owed=facts.owed,
                        external_reference=event.external_reference,
                    )
                case "PaymentRefunded":
                    before = refunds or ExpectedRefunds(0, ZERO, ZERO, event.at)
                    refunds = ExpectedRefunds(
                        count=before.count + 1,
                        amount=before.amount + (event.amount or ZERO),
                        cash_amount=before.cash_amount + facts.cash_amount,
                        last_at=event.at,
                    )
                case _:
                    assert_never(event.type)
        return _Realized(payment, void, invoice, failure, refunds)

    def grant_terms(self, granted_at: datetime | None = None) -> GrantTerms:
        return GrantTerms(
            purchase_id=self.id,
            amount=self.credit_amount,
            priority=self.priority,
            expires_at=self.expires_at,
            feature_filters=self.feature_filters,
            granted_at=granted_at or self._granted_at(),
        )

    def _granted_at(self) -> datetime:
        granted_at = self.granted_at
        if granted_at is None:
            msg = f"purchase {self.id} granted no credit yet"
            raise ValueError(msg)
        return granted_at

    @property
    def wallet(self) -> WalletKey:
        return (self.namespace, self.customer_id, self.currency)


# -- deciding commands ---------------------------------------------------------------------------

RequestIdentity = tuple[str, str]
"""A request without its idempotency key and expected version: what a retry must repeat."""


def identity_of(request: PurchaseRequest | ConsumeCredits) -> RequestIdentity:
    body = request.model_dump(mode="json", exclude={"idempotency_key", "expected_version"})
    return request.NAME, json.dumps(body, sort_keys=True)


@dataclass(frozen=True)
class Verdict:
    """What the model says a command must do: raise ``error``, replay, or record ``events``."""

    error: str | None = None
    events: tuple[str, ...] = ()
    replay_of: tuple[UUID, int] | None = None
    """(purchase, version) whose answer an idempotent retry must repeat."""
    problems: frozenset[str] = frozenset()
    """For ``validation_failed``: the codes of every problem the ledger must list."""
    wallet_events: tuple[ModelWalletEvent, ...] = ()
    """The wallet events a consumption, a void or an expiry sweep records, in order."""
    wallet: WalletKey | None = None
    """The wallet they go to (and, for a consumption's replay or refusal, the one asked)."""
    available: Decimal | None = None
    """For ``insufficient_credit``: what the consumption could have drawn."""
    replay_of_consumption: int | None = None
    """The version of the ``CreditsConsumed`` a consumption's retry must answer with."""
    facts: EventFacts | None = None
    """What an accepted invoice, failure or refund records (see ``EventFacts``)."""
    amount: Decimal | None = None
    """What an accepted void forfeits or refund takes back."""
    remaining: Decimal | None = None
    """For ``refund_exceeds_remaining``: what could have been refunded."""

    @property
    def accepted(self) -> bool:
        return self.error is None and self.replay_of is None and self.replay_of_consumption is None


@dataclass(frozen=True)
class Answer:
    """A keyed command the ledger accepted, and the version its answer showed."""

    request: PurchaseRequest
    purchase_id: UUID
    version: int


class LedgerModel:
    """Every purchase the ledger should hold, and what each command should do to them."""

    def __init__(self, table: TransitionTable | None = None) -> None:
        self.table = table or TransitionTable.current()
        self.purchases: dict[UUID, ModelPurchase] = {}
        self.keyed_initiations: dict[tuple[str, str], UUID] = {}
        self.answers: list[Answer] = []
        self.wallets: dict[WalletKey, ModelWallet] = {}
        self.consumptions: list[ConsumeCredits] = []
        """Every keyed consumption the ledger accepted, for retries and reused keys."""
        self.writes = 0
        """How many accepted commands wrote events."""

    def wallet(self, key: WalletKey) -> ModelWallet:
        found = self.wallets.get(key)
        if found is None:
            found = self.wallets[key] = ModelWallet(key)
        return found

    def credit(self, purchase_id: UUID, moment: datetime | None = None) -> CreditAmounts:
        """What the purchase's wallet says of its grant as a query at ``moment`` sees it, or as
        recorded (``moment`` None: every event, no expiry applied that was not written)."""
        wallet = self.wallets.get(self.purchases[purchase_id].wallet)
        if wallet is None:
            return CreditAmounts()  # nothing granted yet
        grants = wallet.recorded() if moment is None else wallet.grants(moment)
        return CreditAmounts.of(grants.get(purchase_id))

    def listed_state(self, purchase_id: UUID, now: datetime) -> ExpectedState:
        """The purchase as the read models list it at ``now`` (see ``ModelWallet.listed``)."""
        wallet = self.wallets.get(self.purchases[purchase_id].wallet)
        grant = None if wallet is None else wallet.listed(now).get(purchase_id)
        return self.purchases[purchase_id].state(None, CreditAmounts.of(grant))

    def purchase_state(
        self, purchase_id: UUID, version: int | None = None, moment: datetime | None = None
    ) -> ExpectedState:
        """The purchase at ``version`` with its wallet's amounts at ``moment`` (see ``credit``)."""
        return self.purchases[purchase_id].state(version, self.credit(purchase_id, moment))

    # -- initiate ---------------------------------------------------------------------------------

    def judge_initiate(
        self, request: InitiatePurchase, problems: frozenset[str] = frozenset()
    ) -> Verdict:
        """What ``request`` must do. ``problems`` are the validation codes the request carries
        (the strategies know them); a request with none is taken to be valid."""
        key = request.idempotency_key
        existing = self.keyed_initiations.get((request.namespace, key)) if key else None
        if existing is not None and key is not None:
            # The key is looked up before the request is even validated.
            return self._replay_or_reuse(self.purchases[existing], key, request)
        if problems:
            return Verdict(error="validation_failed", problems=problems)
        settlement = request.settlement.type
        rows = self.table.initiation(settlement, _initial_status(request))
        events: tuple[str, ...] = ()
        for row in rows:
            if row.error is not None:
                return Verdict(error=row.error)
            events += row.events
        if PAYMENT_AUTHORIZED in events and request.cost_basis is None:
            return Verdict(error=INVALID_TRANSITION)
        return Verdict(events=events)

    def record_initiate(
        self, request: InitiatePurchase, verdict: Verdict, purchase_id: UUID, now: datetime
    ) -> ModelPurchase:
        """Apply an accepted initiation, under the id the ledger gave it."""
        if not verdict.accepted:
            msg = "only an accepted initiation is recorded"
            raise ValueError(msg)
        currency = request.currency
        credit_amount = round_to_currency(exact(request.credit_amount), currency)
        cost_basis = None if request.cost_basis is None else Decimal(exact_text(request.cost_basis))
        payment_amount = (
            None
            if request.cost_basis is None
            else round_to_currency(Fraction(credit_amount) * exact(request.cost_basis), currency)
        )
        purchase = ModelPurchase(
            id=purchase_id,
            namespace=request.namespace,
            customer_id=request.customer_id,
            currency=currency,
            credit_amount=credit_amount,
            cost_basis=cost_basis,
            payment_amount=payment_amount,
            settlement=request.settlement.type,
            initial_status=_initial_status(request),
            priority=DEFAULT_PRIORITY if request.priority is None else request.priority,
            expires_at=_normalized_expiry(request.expires_at),
            feature_filters=tuple(sorted(request.feature_filters)),
            name=request.name,
            metadata=dict(request.metadata),
            table=self.table,
        )
        self._append(purchase, verdict.events, request, now)
        self.purchases[purchase_id] = purchase
        if request.idempotency_key is not None:
            self.keyed_initiations[(request.namespace, request.idempotency_key)] = purchase_id
        # The grant becomes spendable in the customer's wallet, in the same write (an invoice
        # purchase's, once its invoice exists).
        if purchase.granted_version() is not None:
            wallet = self.wallet(purchase.wallet)
            wallet.record([wallet.add(purchase.grant_terms(), now)])
        return purchase

    def granted_events(self, purchase_id: UUID) -> tuple[ModelWalletEvent, ...]:
        """The ``GrantAdded`` an initiation wrote to its wallet (none for an invoice purchase)."""
        wallet = self.wallets.get(self.purchases[purchase_id].wallet)
        if wallet is None:
            return ()
        return tuple(
            event
            for event in wallet.events
            if event.type == "GrantAdded" and event.purchase_id == purchase_id
        )

    # -- commands about one purchase --------------------------------------------------------------

    def judge(
        self, request: PaymentRequest, now: datetime, problems: frozenset[str] = frozenset()
    ) -> Verdict:
        """What any command about one purchase must do at ``now`` (``problems``: the validation
        codes a refund's amount carries, as the strategies know them)."""
        match request:
            case AuthorizePayment() | SettlePayment():
                return self.judge_payment(request)
            case VoidPurchase():
                return self.judge_void(request, now)
            case CreateInvoice():
                return self.judge_invoice(request, now)
            case FailPayment():
                return self.judge_failure(request, now)
            case RefundPayment():
                return self.judge_refund(request, now, problems)
            case _:
                assert_never(request)

    def record(self, request: PaymentRequest, verdict: Verdict, now: datetime) -> None:
        """Apply an accepted command about one purchase (and its wallet events)."""
        if not verdict.accepted:
            msg = "only an accepted command is recorded"
            raise ValueError(msg)
        purchase = self.purchases[request.purchase_id]
        self._append(
            purchase, verdict.events, request, now, amount=verdict.amount, facts=verdict.facts
        )
        if verdict.wallet_events:
            self.wallet(purchase.wallet).record(list(verdict.wallet_events))

    def _checked(self, request: PaymentRequest) -> ModelPurchase | Verdict:
        """The purchase a command is about, or the verdict of the checks every such command
        passes first: found in its namespace, a keyed retry, the expected version."""
        purchase = self.purchases.get(request.purchase_id)
        # Another tenant's purchase is indistinguishable from a missing one.
        if purchase is None or purchase.namespace != request.namespace:
            return Verdict(error="credit_purchase_not_found")
        key = request.idempotency_key
        if key is not None and key in purchase.requests:
            return self._replay_or_reuse(purchase, key, request)
        if request.expected_version is not None and request.expected_version != purchase.version:
            return Verdict(error="version_mismatch")
        return purchase

    # -- authorize and settle ---------------------------------------------------------------------

    def judge_payment(self, request: AuthorizePayment | SettlePayment) -> Verdict:
        purchase = self._checked(request)
        if isinstance(purchase, Verdict):
            return purchase
        row = self.table.row(purchase.settlement, purchase.status, request.NAME)
        if row.error is not None:
            return Verdict(error=row.error)
        if PAYMENT_AUTHORIZED in row.events and purchase.payment_amount is None:
            # Whatever a table says, credit nobody pays for has no payment to authorize.
            return Verdict(error=INVALID_TRANSITION)
        return Verdict(events=row.events)

    def record_payment(self, request: PaymentRequest, verdict: Verdict, now: datetime) -> None:
        self.record(request, verdict, now)

    # -- void -------------------------------------------------------------------------------------

    def judge_void(self, request: VoidPurchase, now: datetime) -> Verdict:
        """A void: the purchase's checks (key, version), then the table's (a purchase whose
        payment failed refuses every command alike), then the wallet's."""
        purchase = self._checked(request)
        if isinstance(purchase, Verdict):
            return purchase
        row = self.table.row(purchase.settlement, purchase.status, VOID)
        if row.error is not None:
            return Verdict(error=row.error)
        wallet = self.wallet(purchase.wallet)
        refusal = wallet.void_refusal(purchase.id, now)
        if refusal is not None:
            return Verdict(error=refusal)
        voided = wallet.void(purchase.id, now)
        return Verdict(
            events=row.events,
            wallet=purchase.wallet,
            wallet_events=(voided,),
            amount=voided.amount,
        )

    def record_void(self, request: VoidPurchase, verdict: Verdict, now: datetime) -> None:
        self.record(request, verdict, now)

    # -- invoice, failure, refund -------------------------------------------------------------

    def judge_invoice(self, request: CreateInvoice, now: datetime) -> Verdict:
        """The invoice of an invoice purchase: the table's row, then the grant, in its wallet."""
        purchase = self._checked(request)
        if isinstance(purchase, Verdict):
            return purchase
        row = self.table.row(purchase.settlement, purchase.status, request.NAME)
        if row.error is not None:
            return Verdict(error=row.error)
        grants = any(
            self.table.status_after(purchase.settlement, event) in CREDIT_HOLDING
            for event in row.events
        )
        wallet = self.wallet(purchase.wallet)
        granted_events: tuple[ModelWalletEvent, ...] = ()
        if grants and purchase.granted_version() is None:
            # The grant's time is its purchase event's: never before the purchase's last one.
            at = max(now, purchase.updated_at) if purchase.updated_at else now
            granted_events = (wallet.add(purchase.grant_terms(granted_at=at), now),)
        return Verdict(
            events=row.events,
            wallet=purchase.wallet,
            wallet_events=granted_events,
            facts=EventFacts(invoice=(request.invoice_id, request.line_id)),
        )

    def judge_failure(self, request: FailPayment, now: datetime) -> Verdict:
        """A failed payment: the table's row; then what remains of the grant (as its wallet
        holds it at the decision, the expiries due applied) is taken back, what was consumed
        stays owed, and what expired or was voided is released."""
        purchase = self._checked(request)
        if isinstance(purchase, Verdict):
            return purchase
        row = self.table.row(purchase.settlement, purchase.status, request.NAME)
        if row.error is not None:
            return Verdict(error=row.error)
        authorized = purchase.count(PAYMENT_AUTHORIZED) > 0
        reversed_authorization = purchase.payment_amount if authorized else None
        if purchase.granted_version() is None:
            return Verdict(
                events=row.events,
                wallet=purchase.wallet,
                facts=EventFacts(reversed_authorization=reversed_authorization),
            )
        wallet = self.wallet(purchase.wallet)
        grant = wallet.remaining_after_due_expiries(purchase.id, now)
        if grant is None:  # pragma: no cover - a granted purchase is in its wallet
            msg = f"purchase {purchase.id} is granted, and not in its wallet"
            raise ValueError(msg)
        return Verdict(
            events=row.events,
            wallet=purchase.wallet,
            wallet_events=tuple(wallet.revocation(purchase.id, None, PAYMENT_FAILED, now)),
            facts=EventFacts(
                revoked=grant.remaining,
                released=grant.expired + grant.voided,
                owed=grant.consumed,
                reversed_authorization=reversed_authorization,
            ),
        )

    def judge_refund(
        self, request: RefundPayment, now: datetime, problems: frozenset[str] = frozenset()
    ) -> Verdict:
        """A refund: the purchase's checks, the amount's validation (``problems``, or an amount
        that rounds to nothing), then, where the table allows a refund, the credit that remains
        (``nothing_to_refund``, ``refund_exceeds_remaining``); else the table's error."""
        purchase = self._checked(request)
        if isinstance(purchase, Verdict):
            return purchase
        amount = None
        if request.amount is not None and not problems:
            amount = round_to_currency(exact(request.amount), purchase.currency)
            if amount <= 0:
                problems = frozenset({"amount_not_positive"})
        if problems:
            return Verdict(error="validation_failed", problems=problems)
        row = self.table.row(purchase.settlement, purchase.status, request.NAME)
        if row.error is not None:
            return Verdict(error=row.error)
        wallet = self.wallet(purchase.wallet)
        grant = wallet.remaining_after_due_expiries(purchase.id, now)
        remaining = ZERO if grant is None else grant.remaining
        if remaining <= 0:
            return Verdict(error="nothing_to_refund")
        if amount is not None and amount > remaining:
            return Verdict(error="refund_exceeds_remaining", remaining=remaining)
        take = remaining if amount is None else amount
        return Verdict(
            events=row.events,
            wallet=purchase.wallet,
            wallet_events=tuple(wallet.revocation(purchase.id, take, REFUND, now)),
            amount=take,
            facts=EventFacts(cash_amount=self.refund_cash(purchase, take)),
        )

    @staticmethod
    def refund_cash(purchase: ModelPurchase, amount: Decimal) -> Decimal:
        """The money a refund of ``amount`` credits returns: the payment for all credit refunded
        so far, this refund included, rounded once, less what earlier refunds returned (so that
        refunding every credit, in any number of parts, returns exactly the payment)."""
        if purchase.cost_basis is None:
            msg = f"purchase {purchase.id} has no payment to refund"
            raise ValueError(msg)
        basis = Fraction(purchase.cost_basis)
        total = Fraction(purchase.refunded + amount) * basis
        return round_to_currency(total, purchase.currency) - purchase.refunded_cash

    # -- consume and expire -----------------------------------------------------------------------

    def judge_consume(self, request: ConsumeCredits, now: datetime) -> Verdict:
        """A consumption: a keyed retry answers from the wallet's history; otherwise the expiries
        due are recorded first and the amount drawn in burn-down order, or nothing at all is
        recorded and ``insufficient_credit`` says what could be drawn."""
        key: WalletKey = (request.namespace, request.customer_id, request.currency)
        amount = round_to_currency(exact(request.amount), request.currency)
        if amount <= 0:
            return Verdict(error="validation_failed", problems=frozenset({"amount_not_positive"}))
        wallet = self.wallets.get(key) or ModelWallet(key)
        idempotency_key = request.idempotency_key
        if idempotency_key is not None and idempotency_key in wallet.consumptions:
            identity, version = wallet.consumptions[idempotency_key]
            if identity != identity_of(request):
                return Verdict(error="idempotency_key_reused", wallet=key)
            return Verdict(replay_of_consumption=version, wallet=key)
        available, events = wallet.consumption(
            amount, request.feature_key, request.usage_reference, idempotency_key, now
        )
        if not events:
            return Verdict(error="insufficient_credit", available=available, wallet=key)
        return Verdict(wallet=key, wallet_events=tuple(events))

    def record_consume(self, request: ConsumeCredits, verdict: Verdict) -> ModelWalletEvent:
        """Apply an accepted consumption; returns its ``CreditsConsumed``."""
        if not verdict.accepted or verdict.wallet is None or not verdict.wallet_events:
            msg = "only an accepted consumption is recorded"
            raise ValueError(msg)
        wallet = self.wallet(verdict.wallet)
        wallet.record(list(verdict.wallet_events))
        consumed = verdict.wallet_events[-1]
        self.writes += 1
        if request.idempotency_key is not None:
            wallet.consumptions[request.idempotency_key] = (identity_of(request), consumed.version)
            self.consumptions.append(request)
        return consumed

    def judge_expire_due(self, key: WalletKey, now: datetime) -> Verdict:
        """The sweep's command: the expiries due at ``now`` (none: nothing is written)."""
        wallet = self.wallets.get(key) or ModelWallet(key)
        return Verdict(wallet=key, wallet_events=tuple(wallet.due_expiries(now)))

    def record_expire_due(self, verdict: Verdict) -> None:
        if verdict.wallet is None:
            msg = "an expiry sweep names its wallet"
            raise ValueError(msg)
        if verdict.wallet_events:
            self.wallet(verdict.wallet).record(list(verdict.wallet_events))
            self.writes += 1

    # -- shared ---------------------------------------------------------------------------------

    def _replay_or_reuse(
        self, purchase: ModelPurchase, key: str, request: PurchaseRequest
    ) -> Verdict:
        identity, version = purchase.requests[key]
        if identity != identity_of(request):
            return Verdict(error="idempotency_key_reused")
        return Verdict(replay_of=(purchase.id, version))

    def _append(
        self,
        purchase: ModelPurchase,
        events: Sequence[str],
        request: PurchaseRequest,
        now: datetime,
        *,
        amount: Decimal | None = None,
        facts: EventFacts | None = None,
    ) -> None:
        # Time never runs backwards within one purchase, whatever the clock says.
        at = max(now, purchase.updated_at) if purchase.updated_at else now
        self.writes += 1
        reference = getattr(request, "external_reference", None)
        key = request.idempotency_key
        for event_type in events:
            purchase.events.append(
                ModelEvent(
                    type=model_event_type(event_type),
                    version=purchase.version + 1,
                    at=at,
                    idempotency_key=key,
                    external_reference=reference,
                    amount=amount,
                    reason=getattr(request, "reason", None),
                    facts=facts,
                )
            )
        if key is not None:
            purchase.requests[key] = (identity_of(request), purchase.version)
            self.answers.append(Answer(request, purchase.id, purchase.version))


def exact_text(amount: object) -> str:
    """An amount as text, exactly as written (the model keeps cost bases unrounded)."""
    if isinstance(amount, str | int | Decimal) and not isinstance(amount, bool):
        return str(amount)
    msg = f"the model reads amounts written as str, int or Decimal, not {amount!r}"
    raise TypeError(msg)


def _initial_status(request: InitiatePurchase) -> str | None:
    if request.settlement.type != EXTERNAL:
        return None
    return request.settlement.initial_status or "created"


def _normalized_expiry(expires_at: datetime | None) -> datetime | None:
    # Expiry is stored in UTC, truncated to the second, as OpenMeter stores charge times.
    if expires_at is None:
        return None
    return expires_at.astimezone(UTC).replace(microsecond=0)


def model_event_type(name: str) -> ModelEventType:
    """``name`` as one of the model's event types; a name the model does not know is refused."""
    if name in get_args(ModelEventType):
        return cast(ModelEventType, name)
    msg = f"the transition table names the event {name!r}, which the model does not know"
    raise ValueError(msg)
