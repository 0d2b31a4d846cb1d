"""The CreditWallet aggregate: one customer's spendable credit in one currency.

It owns every grant's remaining amount, so that "a balance never goes below zero" and the
burn-down order are decided inside one consistency boundary (one version sequence), whatever the
concurrency: see docs/credit-lifecycle-design.md. Its events are written in the same transaction
as the purchase events that grant or void credit.

Time: a grant's expiry takes effect at exactly its ``expires_at``. Before deciding anything at time
T the wallet first records the expiry of every grant due at T, so nothing is ever drawn from a
grant at or after its expiry, and the amount an expiry forfeits is what remained at ``expires_at``.
Queries as of any time apply expiries that are due but not yet recorded (``grants_as_of``).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TypeVar, assert_never
from uuid import UUID

from creditledger.domain.aggregate import Aggregate
from creditledger.domain.consumption import ConsumptionRequest, consumption_problems
from creditledger.domain.errors import (
    CreditGrantExpiredError,
    CreditsNotGrantedError,
    EventSequenceError,
    InsufficientCreditError,
    NothingToVoidError,
    ValidationFailedError,
)
from creditledger.domain.events import (
    Allocation,
    CreditsConsumed,
    GrantAdded,
    GrantExpired,
    GrantRevoked,
    GrantVoided,
    Initiated,
    WalletEvent,
)
from creditledger.domain.money import round_money
from creditledger.domain.status import RevocationCause

ZERO = Decimal(0)

BurnDownKey = tuple[int, bool, datetime, datetime, UUID]
"""Where a grant stands in the burn-down order (``Grant.burn_down_key``): unique, since it ends
with the grant's purchase id."""


@dataclass(frozen=True)
class Grant:
    """One purchase's credit as the wallet sees it: what was granted and what became of it."""

    purchase_id: UUID
    amount: Decimal
    cost_basis: Decimal | None
    priority: int
    expires_at: datetime | None
    feature_filters: tuple[str, ...]
    granted_at: datetime
    consumed: Decimal = ZERO
    expired: Decimal = ZERO
    voided: Decimal = ZERO
    revoked: Decimal = ZERO
    """Taken back because the payment failed or was refunded."""
    expired_at: datetime | None = None
    """When the expiry took effect (the grant's ``expires_at``), once recorded or due."""
    voided_at: datetime | None = None
    expiry_recorded: bool = False
    """Whether a ``GrantExpired`` event holds the expiry (else it is due and applied by query)."""

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.consumed - self.expired - self.voided - self.revoked

    @property
    def closed(self) -> bool:
        """Expired or voided: nothing can be drawn from it any more."""
        return self.expired_at is not None or self.voided_at is not None

    def due(self, at: datetime) -> bool:
        """Whether its expiry has taken effect at ``at`` (at exactly ``expires_at`` it has)."""
        return self.expires_at is not None and self.expires_at <= at

    def matches(self, feature_key: str | None) -> bool:
        """An empty filter list matches every consumption; otherwise only its features."""
        return not self.feature_filters or feature_key in self.feature_filters

    def burn_down_key(self) -> BurnDownKey:
        """Priority ascending, then ``expires_at`` ascending (no expiry last), then grant time,
        then purchase id: the order consumptions draw in."""
        expires = self.expires_at or self.granted_at
        return (self.priority, self.expires_at is None, expires, self.granted_at, self.purchase_id)


@dataclass(frozen=True)
class WalletContext:
    """Who asked and when: the same for every event one wallet command records."""

    at: datetime
    idempotency_key: str | None = None
    request_fingerprint: str | None = None


@dataclass(frozen=True)
class ConsumptionRecord:
    """What a keyed consumption recorded, so that a retry replays its first answer."""

    fingerprint: str | None
    version: int
    event: CreditsConsumed


class CreditWallet(Aggregate[WalletEvent]):
    """A customer's grants in one currency, what remains of each, and the consumptions."""

    def __init__(self, wallet_id: UUID, namespace: str, customer_id: str, currency: str) -> None:
        super().__init__(wallet_id)
        self.namespace = namespace
        self.customer_id = customer_id
        self.currency = currency
        self.grants: dict[UUID, Grant] = {}
        # The grants something can still be drawn from or forfeited; exhausted and closed grants
        # leave it, so a decision costs the open grants, not the wallet's whole history. They are
        # also kept in burn-down order, those that expire by expiry, and what they hold as a
        # total, all updated as a grant changes: a consumption then costs the grants it walks
        # past, a balance the grants due, the expiries the ones due, never every open grant.
        self._open: set[UUID] = set()
        self._burn_down: list[BurnDownKey] = []
        self._expiring: list[tuple[datetime, UUID]] = []
        self._open_total = ZERO
        """What the open grants hold (those holding something)."""
        self.updated_at: datetime | None = None
        self.consumptions: dict[str, ConsumptionRecord] = {}

    # -- queries --------------------------------------------------------------------------------

    def open_grants(self) -> Iterator[Grant]:
        """The open grants, in burn-down order."""
        grants = self.grants
        return (grants[key[-1]] for key in self._burn_down)

    def spendable(self, at: datetime, feature_key: str | None = None) -> list[Grant]:
        """The grants a consumption at ``at`` may draw from, in burn-down order."""
        return list(self._spendable(at, feature_key))

    def _spendable(self, at: datetime, feature_key: str | None) -> Iterator[Grant]:
        """The one walk over the spendable grants, in burn-down order, that the credit queries
        and a consumption's draw (``draw``) both take; lazy, so a draw stops where it is
        met."""
        grants = self.grants
        for key in self._burn_down:
            grant = grants[key[-1]]
            if grant.remaining > 0 and not grant.due(at) and grant.matches(feature_key):
                yield grant

    def available(self, at: datetime, feature_key: str | None = None) -> Decimal:
        """What a consumption at ``at`` with this feature key could spend at most."""
        return sum((grant.remaining for grant in self.spendable(at, feature_key)), ZERO)

    def balance(self, at: datetime) -> Decimal:
        """Every grant's remaining credit at ``at``, whatever its features."""
        due = ZERO
        for grant in self._due(at):
            due += grant.remaining
        left = self._open_total - due
        # The sum of nothing is written 0 (not 0.00), as a sum over the grants would write it.
        return left if left else ZERO

    def _due(self, at: datetime) -> Iterator[Grant]:
        """The open grants holding something whose expiry has taken effect at ``at``, by
        expiry then purchase id."""
        grants = self.grants
        for expires_at, purchase_id in self._expiring:
            if expires_at > at:
                return
            grant = grants[purchase_id]
            if grant.remaining > 0:
                yield grant

    def grant_as_of(self, purchase_id: UUID, at: datetime) -> Grant | None:
        """One grant as it stood at ``at`` (see ``grants_as_of``), without copying the others."""
        grant = self.grants.get(purchase_id)
        if grant is None or purchase_id not in self._open or not grant.due(at):
            return grant
        return replace(grant, expired=grant.remaining, expired_at=grant.expires_at)

    def grants_as_of(self, at: datetime) -> dict[UUID, Grant]:
        """Every grant as it stood at ``at``, given this wallet folded up to ``at``: an expiry due
        by then but not yet recorded is applied, exactly as it will be recorded."""
        result = dict(self.grants)
        for purchase_id in self._open:
            grant = self.grants[purchase_id]
            if grant.due(at) and grant.expires_at is not None:
                result[purchase_id] = replace(
                    grant, expired=grant.remaining, expired_at=grant.expires_at
                )
        return result

    # -- commands -----------------------------------------------------------------------------

    def add_grant(
        self, initiated: Initiated, context: WalletContext, granted_at: datetime | None = None
    ) -> None:
        """Make a purchase's credit spendable (recorded with the purchase's grant: its
        ``Initiated``, or an invoice purchase's ``InvoiceCreated`` at ``granted_at``)."""
        granted_at = granted_at or initiated.granted_at
        if granted_at is None:
            raise CreditsNotGrantedError(f"purchase {initiated.originator_id} grants no credit yet")
        self._record(
            GrantAdded(
                **self._common(context, with_key=False),
                purchase_id=initiated.originator_id,
                amount=initiated.credit_amount,
                cost_basis=initiated.cost_basis,
                priority=initiated.priority,
                expires_at=initiated.expires_at,
                feature_filters=initiated.feature_filters,
                granted_at=granted_at,
            )
        )

    def consume(
        self, consumption_id: UUID, request: ConsumptionRequest, context: WalletContext
    ) -> CreditsConsumed:
        """Spend ``request.amount`` in burn-down order, after recording the expiries due.

        Refused with ``insufficient_credit`` (and nothing recorded, not even the expiries) when
        the spendable total is short.
        """
        problems = consumption_problems(request)
        if problems:
            raise ValidationFailedError(problems)
        if (request.namespace, request.customer_id, request.currency) != (
            self.namespace,
            self.customer_id,
            self.currency,
        ):
            raise EventSequenceError(f"consumption is not for wallet {self._id}")
        at = self._now(context)
        allocations = tuple(
            Allocation(purchase_id=purchase_id, amount=amount)
            for purchase_id, amount in self.draw(request.amount, at, request.feature_key)
        )
        self.expire_due(at)
        event = CreditsConsumed(
            **self._common(context, with_key=True),
            consumption_id=consumption_id,
            amount=request.amount,
            feature_key=request.feature_key,
            usage_reference=request.usage_reference,
            allocations=allocations,
            balance_after=self.balance(at) - request.amount,
            consumed_at=at,
        )
        self._record(event)
        return event

    def draw(
        self, amount: Decimal, at: datetime, feature_key: str | None
    ) -> list[tuple[UUID, Decimal]]:
        """How a consumption of ``amount`` (positive) at ``at`` draws on the grants, as (purchase
        id, amount) pairs: the spendable ones in burn-down order, each up to what remains, until
        ``amount`` is met. The one rule both ``consume`` (deciding) and an auditor (checking a
        recorded consumption) apply.

        Refused with ``insufficient_credit`` when the spendable total is short.
        """
        drawn: list[tuple[UUID, Decimal]] = []
        left = amount
        available = ZERO
        # Walks the grants in order only as far as the draw needs: short, it has walked them all.
        for grant in self._spendable(at, feature_key):
            remaining = grant.remaining
            available += remaining
            take = min(left, remaining)
            drawn.append((grant.purchase_id, take))
            left -= take
            if left == 0:
                return drawn
        feature = f" for feature {feature_key!r}" if feature_key else ""
        available = round_money(available, self.currency)
        raise InsufficientCreditError(
            f"{amount} {self.currency} requested, {available} available{feature}",
            available=str(available),
        )

    def expire_due(self, at: datetime) -> list[GrantExpired]:
        """Record the expiry of every grant due at ``at`` that still holds credit."""
        at = max(at, self.updated_at) if self.updated_at else at
        due = list(self._due(at))  # recording each expiry changes what ``_due`` walks
        recorded = []
        for grant in due:
            if grant.expires_at is None:  # pragma: no cover - due() implies an expiry
                continue
            event = GrantExpired(
                **self._common(WalletContext(at=at), with_key=False),
                purchase_id=grant.purchase_id,
                amount=grant.remaining,
                effective_at=grant.expires_at,
            )
            self._record(event)
            recorded.append(event)
        return recorded

    def void_grant(self, purchase_id: UUID, context: WalletContext) -> GrantVoided:
        """Forfeit what remains of one grant now; the consumed part stays consumed."""
        at = self._now(context)
        grant = self.grants.get(purchase_id)
        if grant is None:
            raise CreditsNotGrantedError(f"purchase {purchase_id} has no credit granted yet")
        if grant.expired_at is not None or grant.due(at):
            raise CreditGrantExpiredError(
                f"the credit of purchase {purchase_id} expired at {grant.expires_at}"
            )
        if grant.voided_at is not None:
            raise NothingToVoidError(f"the credit of purchase {purchase_id} is already voided")
        if grant.remaining <= 0:
            raise NothingToVoidError(f"nothing remains of the credit of purchase {purchase_id}")
        event = GrantVoided(
            **self._common(context, with_key=False),
            purchase_id=purchase_id,
            amount=grant.remaining,
        )
        self._record(event)
        return event

    def revoke(
        self,
        purchase_id: UUID,
        amount: Decimal | None,
        cause: RevocationCause,
        context: WalletContext,
    ) -> GrantRevoked | None:
        """Take credit back from one grant, after recording the expiries due: ``amount``, or
        everything that remains when None (a failed payment). None when nothing remained."""
        at = self._now(context)
        grant = self.grants.get(purchase_id)
        if grant is None:
            raise CreditsNotGrantedError(f"purchase {purchase_id} has no credit granted yet")
        self.expire_due(at)
        remaining = self.grants[purchase_id].remaining
        take = remaining if amount is None else amount
        if take > remaining or take < 0:
            raise EventSequenceError(
                f"cannot take back {take} of purchase {purchase_id}, which has {remaining}"
            )
        if take == 0:
            return None
        event = GrantRevoked(
            **self._common(context, with_key=False),
            purchase_id=purchase_id,
            amount=take,
            cause=cause,
        )
        self._record(event)
        return event

    def _now(self, context: WalletContext) -> datetime:
        # Event time never runs backwards within one wallet, whatever the clock does, so "state
        # as of T" is a prefix of its history and decisions are made at the recorded time.
        return max(context.at, self.updated_at) if self.updated_at else context.at

    def _common(self, context: WalletContext, *, with_key: bool) -> dict[str, object]:
        return {
            "originator_id": self._id,
            "originator_version": self._version + 1,
            "timestamp": self._now(context),
            "namespace": self.namespace,
            "customer_id": self.customer_id,
            "currency": self.currency,
            # Only consumptions are keyed on the wallet: a void's or a grant's key belongs to
            # its purchase, and must not collide with a consumption's key here.
            "idempotency_key": context.idempotency_key if with_key else None,
            "request_fingerprint": context.request_fingerprint if with_key else None,
        }

    def _record(self, event: WalletEvent) -> None:
        self.apply(event)
        self._pending.append(event)

    # -- applying events: the only place state changes ---------------------------------------

    def apply(self, event: WalletEvent) -> None:
        if event.originator_id != self._id or event.originator_version != self._version + 1:
            raise EventSequenceError(
                f"event v{event.originator_version} of {event.originator_id} does not follow "
                f"v{self._version} of {self._id}"
            )
        match event:
            case GrantAdded():
                self._apply_grant(event)
            case CreditsConsumed():
                self._apply_consumption(event)
            case GrantExpired():
                self._apply_expiry(event)
            case GrantVoided():
                self._apply_void(event)
            case GrantRevoked():
                self._apply_revoke(event)
            case _:
                assert_never(event)
        self._version = event.originator_version
        self.updated_at = event.timestamp

    def _apply_grant(self, event: GrantAdded) -> None:
        if event.purchase_id in self.grants:
            raise EventSequenceError(f"purchase {event.purchase_id} is already in the wallet")
        grant = self.grants[event.purchase_id] = Grant(
            purchase_id=event.purchase_id,
            amount=event.amount,
            cost_basis=event.cost_basis,
            priority=event.priority,
            expires_at=event.expires_at,
            feature_filters=event.feature_filters,
            granted_at=event.granted_at,
        )
        self._open.add(grant.purchase_id)
        insort(self._burn_down, grant.burn_down_key())
        if grant.expires_at is not None:
            insort(self._expiring, (grant.expires_at, grant.purchase_id))
        self._open_total += _held(grant)

    def _apply_consumption(self, event: CreditsConsumed) -> None:
        if sum((a.amount for a in event.allocations), ZERO) != event.amount or event.amount <= 0:
            raise EventSequenceError(f"consumption {event.consumption_id} does not add up")
        for allocation in event.allocations:
            grant = self._open_grant(allocation.purchase_id)
            if grant.due(event.consumed_at):
                raise CreditGrantExpiredError(
                    f"consumption drew from purchase {grant.purchase_id} after its expiry"
                )
            if allocation.amount <= 0 or allocation.amount > grant.remaining:
                raise InsufficientCreditError(
                    f"consumption drew {allocation.amount} from purchase {grant.purchase_id}, "
                    f"which had {grant.remaining}",
                    available=str(grant.remaining),
                )
            self._put(replace(grant, consumed=grant.consumed + allocation.amount))
        if event.idempotency_key is not None:
            self.consumptions[event.idempotency_key] = ConsumptionRecord(
                event.request_fingerprint, event.originator_version, event
            )

    def _apply_expiry(self, event: GrantExpired) -> None:
        grant = self._open_grant(event.purchase_id)
        if grant.expires_at != event.effective_at or event.timestamp < event.effective_at:
            raise EventSequenceError(f"expiry of purchase {event.purchase_id} is not at its time")
        if event.amount != grant.remaining or event.amount <= 0:
            raise EventSequenceError(
                f"expiry of purchase {event.purchase_id} forfeits {event.amount}, "
                f"not the {grant.remaining} that remained"
            )
        self._put(
            replace(
                grant,
                expired=event.amount,
                expired_at=event.effective_at,
                expiry_recorded=True,
            )
        )

    def _apply_void(self, event: GrantVoided) -> None:
        grant = self._open_grant(event.purchase_id)
        if grant.due(event.timestamp):
            raise CreditGrantExpiredError(f"purchase {event.purchase_id} expired before the void")
        if event.amount != grant.remaining or event.amount <= 0:
            raise NothingToVoidError(
                f"void of purchase {event.purchase_id} forfeits {event.amount}, "
                f"not the {grant.remaining} that remained"
            )
        self._put(replace(grant, voided=event.amount, voided_at=event.timestamp))

    def _apply_revoke(self, event: GrantRevoked) -> None:
        grant = self._open_grant(event.purchase_id)
        if grant.due(event.timestamp):
            raise CreditGrantExpiredError(f"purchase {event.purchase_id} expired before")
        if event.amount <= 0 or event.amount > grant.remaining:
            raise EventSequenceError(
                f"revocation of {event.amount} from purchase {event.purchase_id}, "
                f"which had {grant.remaining}"
            )
        if event.cause is RevocationCause.PAYMENT_FAILED and event.amount != grant.remaining:
            raise EventSequenceError(
                f"a failed payment takes back all that remained of purchase {event.purchase_id}"
            )
        self._put(replace(grant, revoked=grant.revoked + event.amount))

    def _open_grant(self, purchase_id: UUID) -> Grant:
        grant = self.grants.get(purchase_id)
        if grant is None:
            raise CreditsNotGrantedError(f"purchase {purchase_id} is not in the wallet")
        if grant.closed or purchase_id not in self._open:
            raise EventSequenceError(f"the credit of purchase {purchase_id} is closed")
        return grant

    def _put(self, grant: Grant) -> None:
        """A changed open grant (``_open_grant``'s, changed by one event)."""
        before = self.grants[grant.purchase_id]
        self.grants[grant.purchase_id] = grant
        remaining = grant.remaining
        if grant.closed or remaining <= 0:
            self._open.discard(grant.purchase_id)
            _remove(self._burn_down, grant.burn_down_key())
            if grant.expires_at is not None:
                _remove(self._expiring, (grant.expires_at, grant.purchase_id))
            self._open_total -= _held(before)
        else:
            self._open_total += remaining - _held(before)


def _held(grant: Grant) -> Decimal:
    """What a grant adds to the balance (never less than nothing)."""
    remaining = grant.remaining
    return remaining if remaining > 0 else ZERO


_Ordered = TypeVar("_Ordered", BurnDownKey, tuple[datetime, UUID])


def _remove(ordered: list[_Ordered], item: _Ordered) -> None:
    index = bisect_left(ordered, item)
    if index < len(ordered) and ordered[index] == item:
        del ordered[index]


def project_wallet(
    wallet: CreditWallet | None, events: Iterable[WalletEvent]
) -> CreditWallet | None:
    """Fold events into a wallet: the library's projector function, and the auditor's."""
    for event in events:
        if wallet is None:
            wallet = CreditWallet(
                event.originator_id, event.namespace, event.customer_id, event.currency
            )
        wallet.apply(event)
    return wallet
