"""The reference model's own credit wallet: what each grant holds, in plain Python.

Written apart from ``creditledger.domain.wallet`` (nothing of it is imported here), from the
rules of the domain reference and ``docs/credit-lifecycle-design.md``, so that the ledger's wallet
and this one are two implementations that must agree:

- one wallet per (namespace, customer, currency) holds the grants of its purchases;
- a consumption draws greedily in burn-down order: priority ascending, then ``expires_at``
  ascending with grants that never expire last, then grant time, then purchase id;
- a grant with feature filters serves only consumptions naming one of its features; a grant
  without filters serves every consumption, and a consumption naming no feature draws only from
  grants without filters;
- expiry takes effect at exactly ``expires_at``: a consumption at or after that instant cannot
  draw from the grant, and what remained then is forfeited (booked to breakage at
  ``expires_at``), recorded by the wallet's next decision or the sweep (``expire_due``);
- a void forfeits what remains now; refused with ``credit_grant_expired`` once the grant expired,
  and ``nothing_to_void`` when it was voided already or nothing remains;
- a revocation takes credit back (``GrantRevoked``, after recording the expiries due): everything
  that remains when the payment fails, the amount refunded for a refund; nothing is recorded
  when it would take nothing;
- a consumption larger than what it may draw is refused with ``insufficient_credit`` and the
  amount it could have drawn, and records nothing (not even the expiries due);
- the wallet's time never runs backwards: each decision is taken at the later of the clock and
  its last event.

The wallet keeps its events, each with the time it was recorded, and folds them for any moment:
``grants(moment)`` is the wallet as a query at that moment sees it (events recorded by then, and
the expiries due by then applied whether recorded or not).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Literal, assert_never
from uuid import UUID

ZERO = Decimal(0)

WalletKey = tuple[str, str, str]
"""(namespace, customer, currency): one wallet."""

WalletEventType = Literal[
    "GrantAdded", "CreditsConsumed", "GrantExpired", "GrantVoided", "GrantRevoked"
]
RevocationCause = Literal["payment_failed", "refund"]
"""Why a ``GrantRevoked`` took credit back (the model's own names for the domain's causes)."""
PAYMENT_FAILED: RevocationCause = "payment_failed"
REFUND: RevocationCause = "refund"


@dataclass(frozen=True)
class GrantTerms:
    """What a purchase grants, as the wallet needs it: amount and the burn-down terms."""

    purchase_id: UUID
    amount: Decimal
    priority: int
    expires_at: datetime | None
    feature_filters: tuple[str, ...]
    granted_at: datetime


@dataclass(frozen=True)
class ModelGrant:
    """One grant at one moment: what became of it."""

    terms: GrantTerms
    consumed: Decimal = ZERO
    expired: Decimal = ZERO
    voided: Decimal = ZERO
    revoked: Decimal = ZERO
    """Taken back because the payment failed."""
    refunded: Decimal = ZERO
    """Taken back by refunds."""
    expiry_recorded: bool = False
    """A ``GrantExpired`` holds the expiry (else, if ``expired_at`` is set, it is only due)."""
    expired_at: datetime | None = None
    voided_at: datetime | None = None

    @property
    def purchase_id(self) -> UUID:
        return self.terms.purchase_id

    @property
    def remaining(self) -> Decimal:
        return (
            self.terms.amount
            - self.consumed
            - self.expired
            - self.voided
            - self.revoked
            - self.refunded
        )

    def expires_by(self, moment: datetime) -> bool:
        """At exactly ``expires_at`` the grant has expired."""
        return self.terms.expires_at is not None and moment >= self.terms.expires_at

    def live_at(self, moment: datetime) -> bool:
        """Something remains, and neither a void nor an expiry took it away by ``moment``."""
        return (
            self.remaining > 0
            and self.voided_at is None
            and self.expired_at is None
            and not self.expires_by(moment)
        )

    def serves(self, feature: str | None) -> bool:
        filters = self.terms.feature_filters
        if not filters:
            return True
        return feature is not None and feature in filters


def burn_down_rank(grant: ModelGrant) -> tuple[int, int, datetime, datetime, int]:
    """The order consumptions draw in (see the module docstring)."""
    terms = grant.terms
    never = terms.expires_at is None
    # A grant that never expires sorts after every dated one; its date slot is then unused.
    return (
        terms.priority,
        1 if never else 0,
        terms.granted_at if terms.expires_at is None else terms.expires_at,
        terms.granted_at,
        terms.purchase_id.int,
    )


@dataclass(frozen=True)
class ModelWalletEvent:
    """One wallet event as the model expects it to be recorded."""

    type: WalletEventType
    version: int
    at: datetime
    """When it was recorded (the event's timestamp)."""
    purchase_id: UUID | None = None
    amount: Decimal = ZERO
    effective_at: datetime | None = None
    """An expiry's ``expires_at``; a consumption's time; a grant's grant time."""
    allocations: tuple[tuple[UUID, Decimal], ...] = ()
    feature: str | None = None
    reference: str | None = None
    idempotency_key: str | None = None
    balance_after: Decimal | None = None
    cause: RevocationCause | None = None
    """A revocation's cause."""
    terms: GrantTerms | None = None
    """A grant's terms (``GrantAdded``): recorded with it."""


@dataclass
class ModelWallet:
    key: WalletKey
    terms: dict[UUID, GrantTerms] = field(default_factory=dict)
    events: list[ModelWalletEvent] = field(default_factory=list)
    consumptions: dict[str, tuple[tuple[str, str], int]] = field(default_factory=dict)
    """Idempotency key -> (the request's identity, the version of its ``CreditsConsumed``)."""

    @property
    def version(self) -> int:
        return len(self.events)

    @property
    def updated_at(self) -> datetime | None:
        return self.events[-1].at if self.events else None

    def decision_time(self, now: datetime) -> datetime:
        updated = self.updated_at
        return now if updated is None or now > updated else updated

    def event(self, version: int) -> ModelWalletEvent:
        return self.events[version - 1]

    # -- the fold -------------------------------------------------------------------------------

    def recorded(self, moment: datetime | None = None) -> dict[UUID, ModelGrant]:
        """The grants after the events recorded by ``moment`` (all of them by default)."""
        grants: dict[UUID, ModelGrant] = {}
        for event in self.events:
            if moment is not None and event.at > moment:
                break  # the wallet's time never runs backwards: the rest is later still
            match event.type:
                case "GrantAdded":
                    grants[_grant_of(event)] = ModelGrant(self.terms[_grant_of(event)])
                case "CreditsConsumed":
                    for purchase_id, amount in event.allocations:
                        grant = grants[purchase_id]
                        grants[purchase_id] = replace(grant, consumed=grant.consumed + amount)
                case "GrantExpired":
                    grant = grants[_grant_of(event)]
                    grants[grant.purchase_id] = replace(
                        grant,
                        expired=event.amount,
                        expiry_recorded=True,
                        expired_at=event.effective_at,
                    )
                case "GrantVoided":
                    grant = grants[_grant_of(event)]
                    grants[grant.purchase_id] = replace(
                        grant, voided=event.amount, voided_at=event.at
                    )
                case "GrantRevoked":
                    grant = grants[_grant_of(event)]
                    grants[grant.purchase_id] = (
                        replace(grant, refunded=grant.refunded + event.amount)
                        if event.cause == REFUND
                        else replace(grant, revoked=grant.revoked + event.amount)
                    )
                case _:
                    assert_never(event.type)
        return grants

    def grants(self, moment: datetime) -> dict[UUID, ModelGrant]:
        """The grants as a query at ``moment`` sees them: recorded by then, expiries due applied."""
        return self._with_due_expiries(self.recorded(moment), moment)

    def listed(self, now: datetime) -> dict[UUID, ModelGrant]:
        """The grants as the read models list them at ``now``: every event recorded so far, and
        the expiries due by ``now`` applied (recorded or not)."""
        return self._with_due_expiries(self.recorded(), now)

    def due_unrecorded(self, moment: datetime) -> list[ModelGrant]:
        """Grants whose expiry is due by ``moment`` with credit left and no expiry recorded."""
        return [
            grant
            for grant in self.recorded().values()
            if grant.expires_by(moment)
            and grant.remaining > 0
            and grant.voided_at is None
            and grant.expired_at is None
        ]

    @staticmethod
    def _with_due_expiries(
        grants: dict[UUID, ModelGrant], moment: datetime
    ) -> dict[UUID, ModelGrant]:
        for purchase_id, grant in grants.items():
            if (
                grant.expires_by(moment)
                and grant.remaining > 0
                and grant.voided_at is None
                and grant.expired_at is None
            ):
                grants[purchase_id] = replace(
                    grant, expired=grant.remaining, expired_at=grant.terms.expires_at
                )
        return grants

    def spendable(self, moment: datetime, feature: str | None = None) -> list[ModelGrant]:
        """What a consumption at ``moment`` may draw from, in burn-down order."""
        grants = self.recorded(moment)
        usable = [g for g in grants.values() if g.live_at(moment) and g.serves(feature)]
        return sorted(usable, key=burn_down_rank)

    def balance(self, moment: datetime) -> Decimal:
        """Every grant's remaining credit at ``moment``, whatever its features."""
        grants = self.recorded(moment)
        return sum((g.remaining for g in grants.values() if g.live_at(moment)), ZERO)

    # -- deciding -------------------------------------------------------------------------------

    def add(self, terms: GrantTerms, now: datetime) -> ModelWalletEvent:
        """The ``GrantAdded`` making ``terms`` spendable (its terms are kept when recorded)."""
        added = self._next("GrantAdded", now, purchase_id=terms.purchase_id, amount=terms.amount)
        return replace(added, terms=terms)

    def due_expiries(self, now: datetime) -> list[ModelWalletEvent]:
        """The ``GrantExpired`` events a decision at ``now`` records first, in recording order."""
        at = self.decision_time(now)
        grants = self.recorded()
        due = [
            g
            for g in grants.values()
            if g.expires_by(at) and g.remaining > 0 and g.voided_at is None and g.expired_at is None
        ]
        due.sort(key=lambda g: (g.terms.expires_at, g.purchase_id.int))
        return [
            ModelWalletEvent(
                type="GrantExpired",
                version=self.version + offset,
                at=at,
                purchase_id=grant.purchase_id,
                amount=grant.remaining,
                effective_at=grant.terms.expires_at,
            )
            for offset, grant in enumerate(due, start=1)
        ]

    def consumption(
        self,
        amount: Decimal,
        feature: str | None,
        reference: str | None,
        key: str | None,
        now: datetime,
    ) -> tuple[Decimal, list[ModelWalletEvent]]:
        """(what may be drawn, the events a consumption records: none when it is refused)."""
        at = self.decision_time(now)
        spendable = self.spendable(at, feature)
        available = sum((g.remaining for g in spendable), ZERO)
        if available < amount:
            return available, []
        allocations: list[tuple[UUID, Decimal]] = []
        left = amount
        for grant in spendable:
            if left <= 0:
                break
            take = grant.remaining if grant.remaining < left else left
            allocations.append((grant.purchase_id, take))
            left -= take
        expiries = self.due_expiries(now)
        consumed = ModelWalletEvent(
            type="CreditsConsumed",
            version=self.version + len(expiries) + 1,
            at=at,
            amount=amount,
            effective_at=at,
            allocations=tuple(allocations),
            feature=feature,
            reference=reference,
            idempotency_key=key,
            balance_after=self.balance(at) - amount,
        )
        return available, [*expiries, consumed]

    def void_refusal(self, purchase_id: UUID, now: datetime) -> str | None:
        """Why a void of the grant at ``now`` is refused, if it is."""
        at = self.decision_time(now)
        grant = self.recorded().get(purchase_id)
        if grant is None:
            return "credits_not_granted"
        if grant.expired_at is not None or grant.expires_by(at):
            return "credit_grant_expired"
        if grant.voided_at is not None or grant.remaining <= 0:
            return "nothing_to_void"
        return None

    def remaining_after_due_expiries(self, purchase_id: UUID, now: datetime) -> ModelGrant | None:
        """The grant as a decision at ``now`` sees it: every event recorded, and its expiry
        applied if due then (None: not granted)."""
        grant = self.recorded().get(purchase_id)
        if grant is None:
            return None
        return self._with_due_expiries({purchase_id: grant}, self.decision_time(now))[purchase_id]

    def revocation(
        self, purchase_id: UUID, amount: Decimal | None, cause: RevocationCause, now: datetime
    ) -> list[ModelWalletEvent]:
        """The events taking ``amount`` (everything that remains, when None) back from a grant:
        the expiries due first, then the ``GrantRevoked`` unless it would take nothing."""
        expiries = self.due_expiries(now)
        grant = self.remaining_after_due_expiries(purchase_id, now)
        if grant is None:
            msg = f"the model revokes purchase {purchase_id}, which its wallet never granted"
            raise ValueError(msg)
        take = grant.remaining if amount is None else amount
        if take <= 0:
            return expiries
        revoked = ModelWalletEvent(
            type="GrantRevoked",
            version=self.version + len(expiries) + 1,
            at=self.decision_time(now),
            purchase_id=purchase_id,
            amount=take,
            cause=cause,
        )
        return [*expiries, revoked]

    def void(self, purchase_id: UUID, now: datetime) -> ModelWalletEvent:
        remaining = self.recorded()[purchase_id].remaining
        return self._next("GrantVoided", now, purchase_id=purchase_id, amount=remaining)

    def record(self, events: list[ModelWalletEvent]) -> None:
        for event in events:
            if event.version != self.version + 1:
                msg = f"wallet {self.key}: event v{event.version} after v{self.version}"
                raise ValueError(msg)
            if event.terms is not None:
                self.terms[event.terms.purchase_id] = event.terms
            self.events.append(event)

    def _next(
        self, kind: WalletEventType, now: datetime, *, purchase_id: UUID, amount: Decimal
    ) -> ModelWalletEvent:
        return ModelWalletEvent(
            type=kind,
            version=self.version + 1,
            at=self.decision_time(now),
            purchase_id=purchase_id,
            amount=amount,
        )


def _grant_of(event: ModelWalletEvent) -> UUID:
    if event.purchase_id is None:
        msg = f"the model's {event.type} v{event.version} names no grant"
        raise ValueError(msg)
    return event.purchase_id
