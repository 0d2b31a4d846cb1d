"""The wallet keeps its open grants in burn-down order and their total as they change, so that a
consumption, a balance and the expiries due cost what they touch, not every open grant. Whatever
happens to a wallet (grants of tied priorities, expiries and filters; consumptions, some short;
expiries; voids; revocations; time moving on), its answers are exactly those of the definitions
over all its grants: the spendable grants filtered and sorted, the balance summed (to the same
digits), a draw taken greedily from them, the expiries due sorted by time, and a wallet folded
again from its events answers alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TypeVar
from uuid import UUID, uuid4

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from creditledger.domain.consumption import normalize_consumption
from creditledger.domain.errors import InsufficientCreditError, LedgerError
from creditledger.domain.events import CreditsConsumed, WalletEvent
from creditledger.domain.purchase import CommandContext, CreditPurchase
from creditledger.domain.status import RevocationCause
from creditledger.domain.wallet import ZERO, CreditWallet, Grant, WalletContext, project_wallet
from tests.domain.purchases import NOW, intent

FEATURES = (None, "a", "b")
_Decided = TypeVar("_Decided", CreditsConsumed, list[tuple[UUID, Decimal]])
_amounts = st.integers(min_value=1, max_value=5_000).map(lambda cents: Decimal(cents) / 100)
_offsets = st.integers(min_value=0, max_value=600).map(lambda seconds: timedelta(seconds=seconds))


def _spendable(wallet: CreditWallet, at: datetime, feature: str | None) -> list[Grant]:
    usable = [
        grant
        for grant in wallet.grants.values()
        if not grant.closed and grant.remaining > 0 and not grant.due(at) and grant.matches(feature)
    ]
    return sorted(usable, key=Grant.burn_down_key)


def _balance(wallet: CreditWallet, at: datetime) -> Decimal:
    return sum(
        (
            grant.remaining
            for grant in wallet.grants.values()
            if not grant.closed and grant.remaining > 0 and not grant.due(at)
        ),
        ZERO,
    )


def _drawn(
    wallet: CreditWallet, amount: Decimal, at: datetime, feature: str | None
) -> list[tuple[UUID, Decimal]] | Decimal:
    """The greedy draw over the defined spendable grants, or what they hold if too little."""
    spendable = _spendable(wallet, at, feature)
    if sum((grant.remaining for grant in spendable), ZERO) < amount:
        return sum((grant.remaining for grant in spendable), ZERO)
    drawn, left = [], amount
    for grant in spendable:
        take = min(left, grant.remaining)
        drawn.append((grant.purchase_id, take))
        left -= take
        if left == 0:
            break
    return drawn


def _outcome(decide: Callable[[], _Decided]) -> _Decided | Decimal:
    """What a draw decided, or what was available when it was refused as short."""
    try:
        return decide()
    except InsufficientCreditError as error:
        return Decimal(error.available)


class WalletMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = NOW
        self.wallet = CreditWallet(uuid4(), "acme", "cust-1", "USD")
        self.events: list[WalletEvent] = []

    @initialize()
    def start(self) -> None:
        self.wallet.collect_events()

    def _context(self) -> WalletContext:
        return WalletContext(at=self.now)

    def _keep(self) -> None:
        self.events.extend(self.wallet.collect_events())

    def _pick(self, index: int) -> UUID:
        ids = sorted(self.wallet.grants)
        return ids[index % len(ids)]

    @rule(
        amount=_amounts,
        priority=st.integers(min_value=1, max_value=3),
        expires_in=st.none() | st.integers(min_value=1, max_value=300),
        filters=st.sets(st.sampled_from(("a", "b"))),
    )
    def grant(
        self, amount: Decimal, priority: int, expires_in: int | None, filters: set[str]
    ) -> None:
        expires_at = None if expires_in is None else self.now + timedelta(seconds=expires_in)
        terms = intent(
            now=self.now,
            credit_amount=str(amount),
            priority=priority,
            expires_at=expires_at,
            feature_filters=sorted(filters),
        )
        initiated = CreditPurchase.initiate(uuid4(), terms, CommandContext(at=self.now)).intent
        self.wallet.add_grant(initiated, self._context())
        self._keep()

    @rule(amount=_amounts, feature=st.sampled_from(FEATURES))
    def consume(self, amount: Decimal, feature: str | None) -> None:
        expected = _drawn(self.wallet, amount, self.now, feature)
        request = normalize_consumption(
            namespace="acme",
            customer_id="cust-1",
            currency="USD",
            amount=str(amount),
            feature_key=feature,
        )
        outcome = _outcome(lambda: self.wallet.consume(uuid4(), request, self._context()))
        if isinstance(outcome, Decimal):
            assert outcome == expected
            return
        assert [(a.purchase_id, a.amount) for a in outcome.allocations] == expected
        self._keep()

    @rule()
    def expire_due(self) -> None:
        due = sorted(
            (
                grant
                for grant in self.wallet.grants.values()
                if not grant.closed and grant.remaining > 0 and grant.due(self.now)
            ),
            key=lambda grant: (grant.expires_at, grant.purchase_id),
        )
        expired = self.wallet.expire_due(self.now)
        assert [(e.purchase_id, e.amount) for e in expired] == [
            (grant.purchase_id, grant.remaining) for grant in due
        ]
        self._keep()

    @precondition(lambda self: self.wallet.grants)
    @rule(pick=st.integers(min_value=0))
    def void(self, pick: int) -> None:
        try:
            self.wallet.void_grant(self._pick(pick), self._context())
        except LedgerError:
            return
        self._keep()

    @precondition(lambda self: self.wallet.grants)
    @rule(pick=st.integers(min_value=0), amount=st.none() | _amounts)
    def revoke(self, pick: int, amount: Decimal | None) -> None:
        cause = RevocationCause.PAYMENT_FAILED if amount is None else RevocationCause.REFUND
        try:
            self.wallet.revoke(self._pick(pick), amount, cause, self._context())
        except LedgerError:
            self.wallet.collect_events()  # expiries recorded before the refusal stay unsaved
            self._rebuild()
            return
        self._keep()

    @rule(by=_offsets)
    def later(self, by: timedelta) -> None:
        self.now += by

    def _rebuild(self) -> None:
        """The wallet as saved: folded again from the events kept."""
        folded = project_wallet(CreditWallet(self.wallet.id, "acme", "cust-1", "USD"), self.events)
        assert folded is not None
        self.wallet = folded

    @invariant()
    def answers_are_the_definitions(self) -> None:
        wallet = self.wallet
        # Each expiry exactly (it has taken effect) and just before (it has not), among others.
        # The next expiries to come, not every one: each moment checks every query.
        expiries = sorted(
            {
                g.expires_at
                for g in wallet.grants.values()
                if g.expires_at and g.expires_at >= self.now
            }
        )[:2]
        moments = {self.now, self.now + timedelta(seconds=90), self.now + timedelta(hours=1)}
        moments |= {*expiries, *(moment - timedelta(microseconds=1) for moment in expiries)}
        for at in sorted(moments):
            balance = _balance(wallet, at)
            assert wallet.balance(at) == balance
            assert str(wallet.balance(at)) == str(balance)
            for feature in FEATURES:
                assert wallet.spendable(at, feature) == _spendable(wallet, at, feature)
                total = sum((g.remaining for g in _spendable(wallet, at, feature)), ZERO)
                for amount in {total, total + Decimal("0.01"), Decimal("0.01"), total / 2}:
                    if amount <= 0:
                        continue
                    expected = _drawn(wallet, amount, at, feature)
                    drawn = _outcome(partial(wallet.draw, amount, at, feature))
                    if isinstance(drawn, Decimal):
                        assert drawn == expected
                    else:
                        assert drawn == expected

    @invariant()
    def a_wallet_folded_again_answers_alike(self) -> None:
        folded = project_wallet(CreditWallet(self.wallet.id, "acme", "cust-1", "USD"), self.events)
        assert folded is not None
        for at in (self.now, self.now + timedelta(hours=1)):
            assert str(folded.balance(at)) == str(self.wallet.balance(at))
            for feature in FEATURES:
                assert folded.spendable(at, feature) == self.wallet.spendable(at, feature)


TestWalletBurnDownIndex = WalletMachine.TestCase
