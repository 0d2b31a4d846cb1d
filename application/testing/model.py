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
    InitiatePurchase,
    SettlePayment,
    VoidPurchase,
)
from creditledger.application.testing.model_wallet import (
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
ModelEventType = Literal["Initiated", "PaymentAuthorized", "PaymentSettled", "PurchaseVoided"]
"""The event types the model knows, closed: ``ModelPurchase.state`` matches on every one, so a
type added here and not handled there fails ``mypy``; a type the table names and the model does
not know is refused when the model records it."""
STATUS_KEEPING = frozenset({PURCHASE_VOIDED})
"""Events that leave the status as it was (domain reference: a void forfeits credit and leaves
the payment alone). The table's ``status_after`` lists only the events that move a purchase."""
EXTERNAL = "external"
INITIATE = "initiate"
VOID = "void"
INVALID_TRANSITION = "invalid_transition"

PaymentRequest = AuthorizePayment | SettlePayment | VoidPurchase
PurchaseRequest = InitiatePurchase | PaymentRequest


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

    @classmethod
    def of(cls, grant: ModelGrant | None) -> CreditAmounts:
        if grant is None:
            return cls()
        expiry = None
        if grant.expired_at is not None:
            expiry = ExpectedExpiry(grant.expired_at, grant.expired, grant.expiry_recorded)
        return cls(consumed=grant.consumed, expired=grant.expired, expiry=expiry)


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
    remaining: Decimal = ZERO
    """credit_amount - consumed - expired - voided (compared by value, like the other amounts
    below: they are sums the ledger may write with any exponent)."""
    consumed: Decimal = ZERO
    expired: Decimal = ZERO
    voided: Decimal = ZERO
    revoked: Decimal = ZERO
    refunded: Decimal = ZERO
    void: ExpectedVoid | None = None
    expiry: ExpectedExpiry | None = None


@dataclass(frozen=True)
class ModelEvent:
    type: ModelEventType
    version: int
    at: datetime
    idempotency_key: str | None
    external_reference: str | None = None
    amount: Decimal | None = None
    """A void's forfeited amount."""
    reason: str | None = None


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

    def state(
        self, version: int | None = None, credit: CreditAmounts | None = None
    ) -> ExpectedState:
        """The purchase as it stood at ``version`` (now, by default), with what its wallet says
        of its grant (``LedgerModel.credit``; nothing consumed or expired without it)."""
        version = self.version if version is None else version
        if not 1 <= version <= self.version:
            msg = f"purchase {self.id} has no version {version}"
            raise ValueError(msg)
        events = self.events[:version]
        payment: ExpectedPayment | None = None
        void: ExpectedVoid | None = None
        for event in events:
            match event.type:
                case "Initiated":
                    pass  # the purchase's terms are the model's own fields
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
                case _:
                    assert_never(event.type)
        status = self.status_at(version)
        if status is None:  # pragma: no cover - a history begins with Initiated
            msg = f"purchase {self.id} has no status at version {version}"
            raise ValueError(msg)
        credit = credit or CreditAmounts()
        voided = void.amount if void is not None else ZERO
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
            granted_at=events[0].at,
            payment=payment,
            remaining=self.credit_amount - credit.consumed - credit.expired - voided,
            consumed=credit.consumed,
            expired=credit.expired,
            voided=voided,
            void=void,
            expiry=credit.expiry,
        )

    def grant_terms(self) -> GrantTerms:
        return GrantTerms(
            purchase_id=self.id,
            amount=self.credit_amount,
            priority=self.priority,
            expires_at=self.expires_at,
            feature_filters=self.feature_filters,
            granted_at=self.events[0].at,
        )

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
        wallet = self.wallets[self.purchases[purchase_id].wallet]
        grants = wallet.recorded() if moment is None else wallet.grants(moment)
        return CreditAmounts.of(grants.get(purchase_id))

    def listed_state(self, purchase_id: UUID, now: datetime) -> ExpectedState:
        """The purchase as the read models list it at ``now`` (see ``ModelWallet.listed``)."""
        wallet = self.wallets[self.purchases[purchase_id].wallet]
        grant = wallet.listed(now).get(purchase_id)
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
        # The grant becomes spendable in the customer's wallet, in the same write.
        wallet = self.wallet(purchase.wallet)
        wallet.record([wallet.add(purchase.grant_terms(), now)])
        return purchase

    def granted_events(self, purchase_id: UUID) -> tuple[ModelWalletEvent, ...]:
        """The ``GrantAdded`` an initiation wrote to its wallet."""
        wallet = self.wallets[self.purchases[purchase_id].wallet]
        return tuple(
            event
            for event in wallet.events
            if event.type == "GrantAdded" and event.purchase_id == purchase_id
        )

    # -- authorize and settle ---------------------------------------------------------------------

    def judge_payment(self, request: PaymentRequest) -> Verdict:
        purchase = self.purchases.get(request.purchase_id)
        # Another tenant's purchase is indistinguishable from a missing one.
        if purchase is None or purchase.namespace != request.namespace:
            return Verdict(error="credit_purchase_not_found")
        key = request.idempotency_key
        if key is not None and key in purchase.requests:
            return self._replay_or_reuse(purchase, key, request)
        if request.expected_version is not None and request.expected_version != purchase.version:
            return Verdict(error="version_mismatch")
        row = self.table.row(purchase.settlement, purchase.status, request.NAME)
        if row.error is not None:
            return Verdict(error=row.error)
        if PAYMENT_AUTHORIZED in row.events and purchase.payment_amount is None:
            # Whatever a table says, credit nobody pays for has no payment to authorize.
            return Verdict(error=INVALID_TRANSITION)
        return Verdict(events=row.events)

    def record_payment(self, request: PaymentRequest, verdict: Verdict, now: datetime) -> None:
        if not verdict.accepted:
            msg = "only an accepted payment command is recorded"
            raise ValueError(msg)
        self._append(self.purchases[request.purchase_id], verdict.events, request, now)

    # -- void -------------------------------------------------------------------------------------

    def judge_void(self, request: VoidPurchase, now: datetime) -> Verdict:
        """A void: the purchase's checks (key, version), then the wallet's, then the table's."""
        purchase = self.purchases.get(request.purchase_id)
        if purchase is None or purchase.namespace != request.namespace:
            return Verdict(error="credit_purchase_not_found")
        key = request.idempotency_key
        if key is not None and key in purchase.requests:
            return self._replay_or_reuse(purchase, key, request)
        if request.expected_version is not None and request.expected_version != purchase.version:
            return Verdict(error="version_mismatch")
        wallet = self.wallet(purchase.wallet)
        refusal = wallet.void_refusal(purchase.id, now)
        if refusal is not None:
            return Verdict(error=refusal)
        row = self.table.row(purchase.settlement, purchase.status, VOID)
        if row.error is not None:
            return Verdict(error=row.error)
        return Verdict(
            events=row.events,
            wallet=purchase.wallet,
            wallet_events=(wallet.void(purchase.id, now),),
        )

    def record_void(self, request: VoidPurchase, verdict: Verdict, now: datetime) -> None:
        if not verdict.accepted or len(verdict.wallet_events) != 1:
            msg = "only an accepted void is recorded"
            raise ValueError(msg)
        purchase = self.purchases[request.purchase_id]
        forfeited = verdict.wallet_events[0].amount
        self._append(purchase, verdict.events, request, now, forfeited)
        self.wallets[purchase.wallet].record(list(verdict.wallet_events))

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
        amount: Decimal | None = None,
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
