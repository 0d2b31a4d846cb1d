"""``CreditPurchaseMachine``: a Hypothesis state machine that drives a real ``CreditLedger``.

Each example opens a ledger on an empty store (``make_ledger``, which a subclass provides), runs
a random history of commands against it and against the reference model, and checks, after
every step, that the two agree and that the ledger's own guarantees hold:

- each command does what the model says: the same events or the same error code, and the
  answer shows the status, amounts and realizations the model computes;
- a rejected command wrote nothing: the log's last notification id and the purchase's history
  are unchanged;
- an idempotent retry answers exactly what the first request was answered, and writes nothing;
- replaying the stored events gives the state the ledger answered with, and the state at every
  past version and as of any past moment is what it was then;
- every event books exactly the postings the model derives on its own (from the transition
  table's statuses and the credit amount, never from the ledger's ``postings_for``); every
  ledger transaction group balances, each belongs to one event of one purchase, and no
  purchase is ever authorized or settled twice;
- nothing but a command writes to the log (queries and replays write nothing).

Subclass it to add invariants of your own (``@invariant()`` methods reading ``self.model``,
``self.events``, ``self.histories``, ``self.postings`` or the ledger), and override
``check_read_models`` to compare read models against the same history.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import ClassVar, NoReturn, cast
from uuid import UUID

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
)

from creditledger.application.commands import AuthorizePayment, InitiatePurchase, SettlePayment
from creditledger.application.ledger import CreditLedger, Outcome
from creditledger.application.purchase_view import PurchaseView, history_of
from creditledger.application.testing.clock import ManualClock
from creditledger.application.testing.model import (
    PAYMENT_AUTHORIZED,
    PAYMENT_SETTLED,
    ExpectedPayment,
    ExpectedState,
    LedgerModel,
    ModelPurchase,
    PaymentRequest,
    Verdict,
)
from creditledger.application.testing.model_postings import entries_by_version, expected_postings
from creditledger.application.testing.strategies import (
    NAMESPACES,
    InvalidInitiation,
    as_of_offsets,
    clock_advances,
    external_references,
    invalid_initiations,
    optional_keys,
    valid_initiations,
)
from creditledger.domain.errors import LedgerError, ValidationFailedError
from creditledger.domain.events import Initiated, PurchaseEvent
from creditledger.domain.ledger import Posting, postings_for
from creditledger.domain.purchase import project_purchase

_READ_BATCH = 1000


class InvariantViolation(AssertionError):  # noqa: N818 - reads as what it is in a failure
    """The ledger broke a rule the machine checks. (A raise, not ``assert``: it survives -O.)"""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise InvariantViolation(message)


def state_of(view: PurchaseView) -> ExpectedState:
    """A view's fields in the model's terms, so the two compare field by field."""
    payment = view.realizations.external_payment
    return ExpectedState(
        id=view.id,
        namespace=view.namespace,
        customer_id=view.customer_id,
        currency=view.currency,
        credit_amount=str(view.credit_amount),
        cost_basis=view.cost_basis,
        payment_amount=None if view.payment_amount is None else str(view.payment_amount),
        settlement=str(view.settlement.type),
        initial_status=(
            None if view.settlement.initial_status is None else str(view.settlement.initial_status)
        ),
        priority=view.priority,
        expires_at=view.expires_at,
        feature_filters=tuple(view.feature_filters),
        name=view.name,
        metadata=dict(view.metadata),
        status=str(view.status),
        meta_status=str(view.meta_status),
        version=view.version,
        created_at=view.created_at,
        updated_at=view.updated_at,
        granted_at=view.realizations.credit_grant.granted_at,
        payment=None
        if payment is None
        else ExpectedPayment(
            status=str(payment.status),
            amount=str(payment.amount),
            authorized_at=payment.authorized.at,
            authorized_reference=payment.authorized.external_reference,
            settled_at=None if payment.settled is None else payment.settled.at,
            settled_reference=None
            if payment.settled is None
            else payment.settled.external_reference,
        ),
    )


def differences(actual: ExpectedState, expected: ExpectedState) -> list[str]:
    return [
        f"{item.name}: ledger {getattr(actual, item.name)!r}, "
        f"model {getattr(expected, item.name)!r}"
        for item in dataclasses.fields(ExpectedState)
        if getattr(actual, item.name) != getattr(expected, item.name)
    ]


class CreditPurchaseMachine(RuleBasedStateMachine):
    """Random histories of initiate, authorize, settle, retries, stale versions and queries.

    Subclasses provide ``make_ledger`` (and, for stores that outlive a ledger, ``reopen_ledger``
    with ``restartable = True``). Run it with ``MyMachine.TestCase`` or
    ``hypothesis.stateful.run_state_machine_as_test(MyMachine, settings=...)``.
    """

    restartable: ClassVar[bool] = False
    """True if ``reopen_ledger`` opens a second ledger on the same store (not the memory one)."""

    purchases: Bundle[UUID] = Bundle("purchases")

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.model = LedgerModel()
        self.events: list[PurchaseEvent] = []
        """Every event in the log, in notification order, read back from the store."""
        self.histories: dict[UUID, list[PurchaseEvent]] = {}
        """The same events per purchase, in version order."""
        self.postings: list[Posting] = []
        """Every ledger posting the events book (``creditledger.domain.ledger.postings_for``)."""
        self.seen: dict[tuple[UUID, int], PurchaseView] = {}
        """Every answer the ledger gave, by (purchase, version): what each version was then."""
        self._last_notification_id = 0
        self._group_owner: dict[UUID, tuple[UUID, int]] = {}
        self._group_sums: dict[UUID, Decimal] = {}
        self._replayed_versions: dict[UUID, int] = {}
        self._writes_at_restart = 0
        self.ledger = self.make_ledger()
        if self.ledger.recorder.max_notification_id() is not None:
            self.ledger.close()  # no teardown() for a machine that never started
            self._fail("make_ledger() must return a ledger on an empty store (one per example)")

    # -- what a subclass provides -----------------------------------------------------------------

    def make_ledger(self) -> CreditLedger:
        """A ledger on an empty store, using ``self.clock``. Called once per example."""
        msg = (
            "subclass CreditPurchaseMachine and return a ledger on an empty store, e.g. "
            "open_ledger('memory://', clock=self.clock)"
        )
        raise NotImplementedError(msg)

    def reopen_ledger(self) -> CreditLedger:
        """A second ledger on the store ``make_ledger`` opened (only if ``restartable``)."""
        msg = "set restartable = True and return a new ledger on the same store"
        raise NotImplementedError(msg)

    def observe(self, events: Sequence[PurchaseEvent]) -> None:
        """Called with every batch of new events read from the log, in notification order.

        A hook for read models: feed a projection here, then compare it in ``check_read_models``.
        """

    def check_read_models(self) -> None:
        """Called after every step: override to check read models against ``self.model``.

        The purchases projection and the balance views (the read-models work) plug in here.
        """

    def teardown(self) -> None:
        self.ledger.close()

    # -- commands ---------------------------------------------------------------------------------

    @rule(target=purchases, request=valid_initiations())
    def initiate(self, request: InitiatePurchase) -> UUID | MultipleResults[UUID]:
        purchase = self._initiate(request, frozenset())
        return multiple() if purchase is None else purchase

    @rule(case=invalid_initiations())
    def initiate_an_invalid_purchase(self, case: InvalidInitiation) -> None:
        self._initiate(case.request, case.problems)

    @rule(
        purchase=purchases,
        key=optional_keys(),
        reference=external_references(),
        pin_version=st.booleans(),
    )
    def authorize(
        self, purchase: UUID, key: str | None, reference: str | None, pin_version: bool
    ) -> None:
        self._pay(
            self._payment(AuthorizePayment, purchase, key, reference, pin_version=pin_version)
        )

    @rule(
        purchase=purchases,
        key=optional_keys(),
        reference=external_references(),
        pin_version=st.booleans(),
    )
    def settle(
        self, purchase: UUID, key: str | None, reference: str | None, pin_version: bool
    ) -> None:
        self._pay(self._payment(SettlePayment, purchase, key, reference, pin_version=pin_version))

    def _payment(
        self,
        kind: type[AuthorizePayment] | type[SettlePayment],
        purchase: UUID,
        key: str | None,
        reference: str | None,
        *,
        pin_version: bool,
    ) -> PaymentRequest:
        known = self.model.purchases[purchase]
        return kind(
            namespace=known.namespace,
            purchase_id=purchase,
            idempotency_key=key,
            external_reference=reference,
            expected_version=known.version if pin_version else None,
        )

    @rule(
        purchase=purchases,
        settle=st.booleans(),
        offset=st.integers(-3, 3).filter(bool),
        key=optional_keys(),
    )
    def act_on_a_stale_version(
        self, purchase: UUID, settle: bool, offset: int, key: str | None
    ) -> None:
        known = self.model.purchases[purchase]
        kind = SettlePayment if settle else AuthorizePayment
        self._pay(
            kind(
                namespace=known.namespace,
                purchase_id=purchase,
                idempotency_key=key,
                expected_version=known.version + offset,
            )
        )

    @rule(purchase=purchases, settle=st.booleans(), stranger=st.uuids(version=4) | st.none())
    def act_from_another_namespace(
        self, purchase: UUID, settle: bool, stranger: UUID | None
    ) -> None:
        """Another tenant's purchase, or an id nobody issued: not found, either way."""
        known = self.model.purchases[purchase]
        others = [namespace for namespace in NAMESPACES if namespace != known.namespace]
        kind = SettlePayment if settle else AuthorizePayment
        if stranger is None:
            self._pay(kind(namespace=others[0] if others else "elsewhere", purchase_id=purchase))
        else:
            self._pay(kind(namespace=known.namespace, purchase_id=stranger))

    @precondition(lambda self: bool(self.model.answers))
    @rule(pick=st.integers(min_value=0))
    def retry_a_keyed_command(self, pick: int) -> None:
        """Send an answered request again, key and all: the same answer, nothing written."""
        answer = self.model.answers[pick % len(self.model.answers)]
        self._resend(answer.request)

    @precondition(lambda self: bool(self.model.answers))
    @rule(pick=st.integers(min_value=0), switch=st.booleans(), reference=external_references())
    def reuse_a_key_for_another_request(
        self, pick: int, switch: bool, reference: str | None
    ) -> None:
        """The same key with another request: refused (or a replay, if the request is the same)."""
        request = self.model.answers[pick % len(self.model.answers)].request
        if isinstance(request, InitiatePurchase):
            other: InitiatePurchase | PaymentRequest = request.model_copy(
                update={"customer_id": request.customer_id + "-other"}
            )
        else:
            kind = type(request)
            if switch:
                kind = AuthorizePayment if isinstance(request, SettlePayment) else SettlePayment
            other = kind(
                namespace=request.namespace,
                purchase_id=request.purchase_id,
                idempotency_key=request.idempotency_key,
                external_reference=reference,
            )
        self._resend(other)

    @rule(by=clock_advances())
    def advance_the_clock(self, by: timedelta) -> None:
        self.clock.advance(by)

    @rule(by=clock_advances())
    def turn_the_clock_back(self, by: timedelta) -> None:
        """Another writer's clock, or NTP: events of one purchase must still never go back."""
        self.clock.set(self.clock.now() - by)

    # -- queries ----------------------------------------------------------------------------------

    @rule(purchase=purchases, pick=st.integers(min_value=0), offset=as_of_offsets())
    def look_back_in_time(self, purchase: UUID, pick: int, offset: timedelta) -> None:
        """The purchase as of a moment near one of its events: what it was at that moment."""
        known = self.model.purchases[purchase]
        moment = known.events[pick % len(known.events)].at + offset
        version = known.version_as_of(moment)
        try:
            view = self.ledger.get_purchase(known.namespace, purchase, as_of=moment)
        except LedgerError as error:
            check(
                version == 0 and error.code == "credit_purchase_not_found",
                f"as of {moment.isoformat()} (version {version}) the ledger raised {error.code}",
            )
            return
        check(version > 0, f"as of {moment.isoformat()} the purchase did not exist yet: {view}")
        self._check_state(view, known, version, f"as of {moment.isoformat()}")

    @rule(purchase=purchases)
    def inspect_every_version(self, purchase: UUID) -> None:
        """Every past version reads as it was then, and the history matches the log."""
        known = self.model.purchases[purchase]
        for version in range(1, known.version + 1):
            view = self.ledger.get_purchase(known.namespace, purchase, version=version)
            self._check_state(view, known, version, f"at version {version}")
        for missing in (0, known.version + 1):
            try:
                self.ledger.get_purchase(known.namespace, purchase, version=missing)
            except LedgerError as error:
                check(error.code == "credit_purchase_not_found", f"version {missing}: {error}")
            else:
                self._fail(f"version {missing} of {purchase} should not exist")
        history = self.ledger.purchase_history(known.namespace, purchase)
        check(
            history == history_of(self.histories[purchase]),
            f"the history of {purchase} differs from its events in the log",
        )
        check(
            [(entry.version, entry.type, entry.recorded_at) for entry in history]
            == [(event.version, event.type, event.at) for event in known.events],
            f"the history of {purchase} differs from the model's",
        )

    @precondition(lambda self: self.restartable and self.model.writes > self._writes_at_restart)
    @rule(purchase=purchases)
    def restart(self, purchase: UUID) -> None:
        """Close the ledger and open another on the same store: everything reads back the same.

        (It takes a purchase, read back first, so that it waits until there is something to read.)
        """
        self.ledger.close()
        self.ledger = self.reopen_ledger()
        self._writes_at_restart = self.model.writes
        first = self.model.purchases[purchase]
        for known in [first, *self.model.purchases.values()]:
            view = self.ledger.get_purchase(known.namespace, known.id)
            self._check_state(view, known, known.version, "after a restart")

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def only_commands_write(self) -> None:
        stray = self._catch_up()
        check(not stray, f"events appeared in the log outside any command: {stray}")

    @invariant()
    def replaying_the_log_gives_the_model_state(self) -> None:
        for purchase_id, history in self.histories.items():
            if self._replayed_versions.get(purchase_id) == len(history):
                continue  # nothing new since the last replay of this purchase
            replayed = project_purchase(None, history)
            if replayed is None:  # pragma: no cover - histories are never empty
                self._fail(f"no events for {purchase_id}")
            known = self.model.purchases[purchase_id]
            self._check_state(PurchaseView.of(replayed), known, known.version, "replayed")
            self._replayed_versions[purchase_id] = len(history)

    @invariant()
    def every_transaction_group_balances(self) -> None:
        unbalanced = {group: total for group, total in self._group_sums.items() if total != 0}
        check(not unbalanced, f"unbalanced transaction groups: {unbalanced}")

    @invariant()
    def no_purchase_is_authorized_or_settled_twice(self) -> None:
        for purchase_id, history in self.histories.items():
            types = [event.TYPE.value for event in history]
            check(
                types.count(PAYMENT_AUTHORIZED) <= 1 and types.count(PAYMENT_SETTLED) <= 1,
                f"purchase {purchase_id} recorded {types}",
            )

    @invariant()
    def read_models_agree(self) -> None:
        self.check_read_models()

    # -- running one command ----------------------------------------------------------------------

    def _resend(self, request: InitiatePurchase | PaymentRequest) -> None:
        if isinstance(request, InitiatePurchase):
            self._initiate(request, frozenset())
        else:
            self._pay(request)

    def _initiate(self, request: InitiatePurchase, problems: frozenset[str]) -> UUID | None:
        verdict = self.model.judge_initiate(request, problems)
        key = request.idempotency_key
        target = self.model.keyed_initiations.get((request.namespace, key)) if key else None
        outcome = self._execute(verdict, target, lambda: self.ledger.initiate(request))
        if outcome is None or verdict.replay_of is not None:
            return None
        check(outcome.created, f"a new purchase was answered with created=False: {request}")
        now = self.clock.now()
        purchase = self.model.record_initiate(request, verdict, outcome.purchase.id, now)
        self._check_written(verdict, purchase, 0)
        self._check_answer(outcome.purchase, purchase)
        return purchase.id

    def _pay(self, request: PaymentRequest) -> None:
        verdict = self.model.judge_payment(request)
        known = self.model.purchases.get(request.purchase_id)
        call: Callable[[], Outcome] = (
            (lambda: self.ledger.authorize(request))
            if isinstance(request, AuthorizePayment)
            else (lambda: self.ledger.settle(request))
        )
        outcome = self._execute(verdict, known.id if known else None, call)
        if outcome is None or verdict.replay_of is not None or known is None:
            return
        check(not outcome.created, f"a payment command answered created=True: {request}")
        before = known.version
        self.model.record_payment(request, verdict, self.clock.now())
        self._check_written(verdict, known, before)
        self._check_answer(outcome.purchase, known)

    def _execute(
        self, verdict: Verdict, target: UUID | None, command: Callable[[], Outcome]
    ) -> Outcome | None:
        """Run ``command``; check a rejection or a replay here, return an acceptance's outcome."""
        before = self.ledger.recorder.max_notification_id()
        history = self._history(target) if verdict.error and target else None
        try:
            outcome = command()
        except LedgerError as error:
            event(f"refused: {error.code}")  # --hypothesis-show-statistics lists how often
            if verdict.error is None:
                self._fail(f"the ledger raised {error.code} ({error}); the model says {verdict}")
            check(
                error.code == verdict.error,
                f"the ledger raised {error.code} ({error}), the model says {verdict.error}",
            )
            if isinstance(error, ValidationFailedError):
                check(
                    error.codes == verdict.problems,
                    f"problems listed {sorted(error.codes)}, expected {sorted(verdict.problems)}",
                )
            self._check_nothing_written(before, target, history, f"rejected ({error.code})")
            return None
        if verdict.error is not None:
            self._fail(f"the model says {verdict.error}; the ledger answered {outcome.purchase}")
        if verdict.replay_of is not None:
            event("replayed")
            self._check_replay(outcome, verdict.replay_of, before, target)
        else:
            event(f"accepted: {' + '.join(verdict.events)}")
        return outcome

    def _check_replay(
        self, outcome: Outcome, replay_of: tuple[UUID, int], before: int | None, target: UUID | None
    ) -> None:
        check(outcome.replayed, "an idempotent retry was not marked as a replay")
        check(not outcome.created, "an idempotent retry claimed to create the purchase")
        self._check_nothing_written(before, target, None, "replayed")
        original = self.seen.get(replay_of)
        check(
            original is not None and outcome.purchase == original,
            f"a retry answered {outcome.purchase}; the first answer was {original}",
        )

    def _check_nothing_written(
        self, before: int | None, target: UUID | None, history: object, what: str
    ) -> None:
        after = self.ledger.recorder.max_notification_id()
        check(after == before, f"{what}, yet the log moved from {before} to {after}")
        if history is not None and target is not None:
            check(self._history(target) == history, f"{what}, yet the history of {target} changed")
        stray = self._catch_up()
        check(not stray, f"{what}, yet it wrote {stray}")

    def _check_written(self, verdict: Verdict, purchase: ModelPurchase, before: int) -> None:
        """The log gained exactly the events the model expected, in order, for this purchase."""
        written = self._catch_up()
        got = [
            (event.originator_id, event.originator_version, event.TYPE.value) for event in written
        ]
        want = [
            (purchase.id, before + offset, event_type)
            for offset, event_type in enumerate(verdict.events, start=1)
        ]
        check(got == want, f"the command wrote {got}; the model expected {want}")
        booked = entries_by_version(
            (posting.purchase_id, posting.version, posting.account.value, posting.amount)
            for posting in self.postings
            if posting.purchase_id == purchase.id and posting.version > before
        )
        derived = entries_by_version(
            (posting.purchase_id, posting.version, posting.account, posting.amount)
            for posting in expected_postings(purchase)
            if posting.version > before
        )
        check(
            booked == derived,
            f"the ledger booked {booked} for {purchase.id}; the model expected {derived}",
        )
        for stored, expected in zip(written, purchase.events[before:], strict=True):
            check(
                stored.timestamp == expected.at
                and stored.idempotency_key == expected.idempotency_key,
                f"event v{stored.originator_version} of {purchase.id} recorded at "
                f"{stored.timestamp} with key {stored.idempotency_key!r}; the model expected "
                f"{expected.at} with key {expected.idempotency_key!r}",
            )

    def _check_answer(self, view: PurchaseView, purchase: ModelPurchase) -> None:
        """The answer matches the model, and the store reads back the same purchase."""
        self._check_state(view, purchase, purchase.version, "answered")
        self.seen[(purchase.id, purchase.version)] = view
        stored = self.ledger.get_purchase(purchase.namespace, purchase.id)
        check(stored == view, f"read back {stored}; the command answered {view}")

    def _check_state(
        self, view: PurchaseView, purchase: ModelPurchase, version: int, context: str
    ) -> None:
        diff = differences(state_of(view), purchase.state(version))
        check(not diff, f"{context}: purchase {purchase.id} v{version} differs: {diff}")
        earlier = self.seen.get((purchase.id, version))
        check(
            earlier is None or earlier == view,
            f"{context}: v{version} of {purchase.id} reads {view}; it was answered as {earlier}",
        )

    # -- reading the log --------------------------------------------------------------------------

    def _catch_up(self) -> list[PurchaseEvent]:
        """Read the log past the last notification seen; check and book what is new."""
        new: list[PurchaseEvent] = []
        while True:
            notifications = self.ledger.recorder.select_notifications(
                start=self._last_notification_id, limit=_READ_BATCH, inclusive_of_start=False
            )
            for notification in notifications:
                check(
                    notification.id > self._last_notification_id,
                    f"notification {notification.id} after {self._last_notification_id}",
                )
                self._last_notification_id = notification.id
                event = cast(PurchaseEvent, self.ledger.mapper.to_domain_event(notification))
                self._book(event)
                new.append(event)
            if len(notifications) < _READ_BATCH:
                break
        if new:
            self.observe(new)
        return new

    def _book(self, event: PurchaseEvent) -> None:
        history = self.histories.setdefault(event.originator_id, [])
        check(
            event.originator_version == len(history) + 1,
            f"event v{event.originator_version} of {event.originator_id} follows v{len(history)}",
        )
        initiated = history[0] if history else event
        check(
            isinstance(initiated, Initiated),
            f"purchase {event.originator_id} does not begin with Initiated",
        )
        history.append(event)
        self.events.append(event)
        for posting in postings_for(cast(Initiated, initiated), event):
            owner = (event.originator_id, event.originator_version)
            group = posting.transaction_group_id
            check(
                self._group_owner.setdefault(group, owner) == owner,
                f"transaction group {group} is booked by {self._group_owner[group]} and {owner}",
            )
            self._group_sums[group] = self._group_sums.get(group, Decimal(0)) + posting.amount
            self.postings.append(posting)

    def _history(self, purchase_id: UUID) -> object:
        known = self.model.purchases[purchase_id]
        return self.ledger.purchase_history(known.namespace, purchase_id)

    @staticmethod
    def _fail(message: str) -> NoReturn:
        raise InvariantViolation(message)
