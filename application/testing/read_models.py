"""``ReadModelMachine``: the state machine, with the read models checked after every step.

It opens the read models on the machine's ledger (``make_read_models``, which a subclass
provides: the kit lives in ``application`` and cannot import the infrastructure that stores
them), waits after each step until the views have reached the log's last event the machine has
seen, and checks that:

- the purchases view lists exactly the model's purchases, each equal to the model's state
  (status, amounts, realizations, version, times);
- every customer's balances equal the model's own (``model_postings``: derived from the
  transition table and the amounts, not from the ledger's ``postings_for``), now and as of past
  moments (the time of a posting, and just before it: clocks that went back included);
- every transaction group in the ledger view sums to zero in each unit (credits, cash);
- the receivables are exactly the payment-backed purchases granted and not yet settled, each at
  its stage (``open`` while pending, ``authorized`` once authorized); a purchase whose payment
  failed is left to the report's own rule (the balances check what it leaves owed).

Wallet events (consumption, expiry, the wallet's side of a void) are checked too: every purchase
field is compared with the model's state as the read models list it (every event recorded, and the
expiries due by now applied, written or not), and the balances include what wallet events book and
what due expiries will book at their ``expires_at``. A read-model store that does not apply wallet
events can set ``read_models_follow_wallets = False``: then the checks leave out the purchases'
credit amounts and what only wallet events book. The machine itself checks all of it through the
ledger's own queries after every step either way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar, Protocol
from uuid import UUID

from hypothesis.stateful import precondition, rule

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.rows import ReadModelSnapshot
from creditledger.application.readmodels import MAX_LIMIT, ReadModels, ReceivableStage
from creditledger.application.testing.machine import (
    CreditPurchaseMachine,
    check,
    differences,
    state_of,
)
from creditledger.application.testing.model import CREDIT_FIELDS
from creditledger.application.testing.model_postings import (
    UNITS,
    due_expiry_postings,
    expected_balances,
    expected_postings,
    expected_wallet_postings,
)
from creditledger.domain.ledger import Account
from creditledger.domain.status import PurchaseStatus

_OPEN_STAGES = {
    PurchaseStatus.PAYMENT_PENDING.value: ReceivableStage.OPEN,
    PurchaseStatus.PAYMENT_AUTHORIZED.value: ReceivableStage.AUTHORIZED,
}
_TICK = timedelta(microseconds=1)


class ViewStore(Protocol):
    def snapshot(self) -> ReadModelSnapshot:
        """Every row of every read model, read at one instant."""
        ...


class ReadModelHandle(Protocol):
    """What the machine needs of an opened set of read models (``open_read_models`` returns one)."""

    @property
    def read_models(self) -> ReadModels: ...

    @property
    def database(self) -> ViewStore: ...

    def close(self) -> None: ...


class ReadModelMachine(CreditPurchaseMachine):
    """``CreditPurchaseMachine`` with the read models of its ledger checked after every step.

    Subclasses provide ``make_ledger`` and ``make_read_models``, e.g.::

        def make_read_models(self, ledger):
            return open_read_models(ledger)   # creditledger.infrastructure.bootstrap
    """

    read_model_timeout: float = 30.0
    """Seconds to wait for the views to reach the log (a generous bound: load, not a bug)."""

    read_models_follow_wallets: ClassVar[bool] = True
    """Whether the read models apply wallet events (consumption, expiry, void amounts); the
    built-in ones do (see the module docstring for what turning it off leaves out)."""

    def __init__(self) -> None:
        self._views: ReadModelHandle | None = None
        super().__init__()
        self._views = self.make_read_models(self.ledger)

    # -- what a subclass provides -----------------------------------------------------------------

    def make_read_models(self, ledger: CreditLedger) -> ReadModelHandle:
        """The read models of ``ledger``, fed by a projector (its own thread, say)."""
        msg = (
            "subclass ReadModelMachine and return the ledger's read models, e.g. "
            "creditledger.infrastructure.bootstrap.open_read_models(ledger)"
        )
        raise NotImplementedError(msg)

    def catch_up_read_models(self, position: int) -> None:
        """Wait until the views reflect ``position``; override to run batches yourself."""
        reached = self.views.read_models.wait_until(position, timeout=self.read_model_timeout)
        check(
            reached,
            f"the read models did not reach position {position} within "
            f"{self.read_model_timeout} s (they stand at {self.views.read_models.position()})",
        )

    @property
    def views(self) -> ReadModelHandle:
        if self._views is None:  # pragma: no cover - set in __init__
            self._fail("the read models are not open")
        return self._views

    def teardown(self) -> None:
        if self._views is not None:
            self._views.close()
            self._views = None
        super().teardown()

    # The views follow one ledger: close them before it closes, and reopen them on the next one.
    @precondition(lambda self: self.restartable and self.model.writes > self._writes_at_restart)
    @rule(purchase=CreditPurchaseMachine.purchases)
    def restart(self, purchase: UUID) -> None:
        self.views.close()
        self._views = None
        super().restart(purchase)
        self._views = self.make_read_models(self.ledger)

    # -- the checks -------------------------------------------------------------------------------

    def check_read_models(self) -> None:
        self.catch_up_read_models(self._last_notification_id)
        read = self.views.read_models
        self._check_purchases(read)
        self._check_balances(read)
        self._check_groups()
        self._check_receivables(read)

    def _check_purchases(self, read: ReadModels) -> None:
        listed = {}
        for namespace in sorted({purchase.namespace for purchase in self.model.purchases.values()}):
            cursor = None
            while True:
                page = read.list_purchases(namespace, limit=MAX_LIMIT, cursor=cursor)
                listed.update({view.id: view for view in page.items})
                cursor = page.next_cursor
                if cursor is None:
                    break
        check(
            listed.keys() == self.model.purchases.keys(),
            f"the purchases view lists {sorted(map(str, listed))}, "
            f"the model has {sorted(map(str, self.model.purchases))}",
        )
        follow = self.read_models_follow_wallets
        for purchase_id, known in self.model.purchases.items():
            diff = differences(
                state_of(listed[purchase_id]),
                self.model.listed_state(purchase_id, self.clock.now()) if follow else known.state(),
                skip=frozenset() if follow else CREDIT_FIELDS,
            )
            check(not diff, f"the purchases view's row of {purchase_id} differs: {diff}")

    def _check_balances(self, read: ReadModels) -> None:
        postings = [
            posting
            for purchase in self.model.purchases.values()
            for posting in expected_postings(purchase)
        ]
        if self.read_models_follow_wallets:
            postings += [
                posting
                for wallet in self.model.wallets.values()
                for posting in expected_wallet_postings(wallet)
            ]
        moments: list[datetime | None] = [None]
        if postings:
            # A posting's own time (inclusive) and just before it: where a wrong order shows.
            middle = sorted(posting.at for posting in postings)[len(postings) // 2]
            moments += [middle, middle - _TICK]
        customers = {(posting.namespace, posting.customer_id) for posting in postings}
        customers |= {wallet.key[:2] for wallet in self.model.wallets.values()}
        for moment in moments:
            due = []
            if self.read_models_follow_wallets:
                # Expiries due by then count whether or not they are written yet.
                due = [
                    posting
                    for wallet in self.model.wallets.values()
                    for posting in due_expiry_postings(wallet, moment or self.clock.now())
                ]
            balances = expected_balances(postings + due, as_of=moment)
            for namespace, customer in sorted(customers):
                expected = {
                    (currency, Account(account)): amount
                    for (owner_namespace, owner, currency, account), amount in balances.items()
                    if (owner_namespace, owner) == (namespace, customer)
                }
                found = read.balances(namespace, customer, as_of=moment)
                for (currency, account), amount in expected.items():
                    check(
                        found.balance(currency, account) == amount,
                        f"balance of {namespace}/{customer}/{currency}/{account} as of "
                        f"{moment or 'now'}: view {found.balance(currency, account)}, "
                        f"model {amount}",
                    )
                extra = [
                    line
                    for line in found.balances
                    if line.balance != 0 and (line.currency, line.account) not in expected
                ]
                check(not extra, f"balances the model does not expect, as of {moment}: {extra}")

    def _check_groups(self) -> None:
        sums: dict[UUID, Decimal] = {}
        units: dict[tuple[UUID, str], Decimal] = {}
        for entry in self.views.database.snapshot().entries:
            group = entry.transaction_group_id
            sums[group] = sums.get(group, Decimal(0)) + entry.amount
            # Each unit apart (the model's own table of what each account counts).
            unit = (group, UNITS[Account(entry.account).value])
            units[unit] = units.get(unit, Decimal(0)) + entry.amount
        unbalanced = {group: total for group, total in units.items() if total != 0}
        check(not unbalanced, f"the ledger view's unbalanced transaction groups: {unbalanced}")
        booked = {posting.transaction_group_id for posting in self.postings}
        if not self.read_models_follow_wallets:
            booked -= self.wallet_groups
        check(
            sums.keys() == booked,
            f"the ledger view has groups {len(sums)}, the log books {len(booked)}",
        )

    def _check_receivables(self, read: ReadModels) -> None:
        # As of the latest event time: every event counts, whichever way the clock went.
        latest = max((event.timestamp for event in self.events), default=self.clock.now())
        owed = {
            purchase_id: _OPEN_STAGES[known.status]
            for purchase_id, known in self.model.purchases.items()
            if known.status in _OPEN_STAGES
        }
        # What a failed payment leaves owed is the receivables report's own rule (its rows keep
        # failed_at and owed); the balances above check the open receivable it leaves.
        failed = {
            purchase_id
            for purchase_id, known in self.model.purchases.items()
            if known.status == PurchaseStatus.PAYMENT_FAILED.value
        }
        for namespace in sorted({purchase.namespace for purchase in self.model.purchases.values()}):
            found = {
                item.purchase_id: item.stage
                for item in read.receivables(namespace, as_of=latest).items
                if item.purchase_id not in failed
            }
            expected = {
                purchase_id: stage
                for purchase_id, stage in owed.items()
                if self.model.purchases[purchase_id].namespace == namespace
            }
            check(
                found == expected,
                f"receivables of {namespace}: view {found}, pending/authorized purchases "
                f"{expected}",
            )
