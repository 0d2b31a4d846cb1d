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
- nothing but a command writes to the log (queries and replays write nothing);
- credit both ways (issue 12): every consumption draws exactly the allocations the model's own
  wallet (``model_wallet``) computes, in burn-down order, or is refused as the model says
  (``insufficient_credit`` with the same available amount, ``idempotency_key_reused``); voids,
  expiries and the sweep write exactly the wallet events the model expects; each purchase's
  remaining, consumed, expired and voided amounts are the model's, now and as of any moment;
  the customer's spendable credit and credit history (``customer_credits``, ``credit_history``)
  are the model's, now and as of past moments; FBO = granted - consumed - expired - voided >= 0
  for every customer and currency, and every account's balance is the model's; replaying a
  wallet's events gives the model's grants.

Subclass it to add invariants of your own (``@invariant()`` methods reading ``self.model``,
``self.events``, ``self.histories``, ``self.postings`` or the ledger), and override
``check_read_models`` to compare read models against the same history.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar, NoReturn, assert_never, cast
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
from creditledger.application.credit_views import ConsumptionView
from creditledger.application.ledger import CreditLedger, Outcome
from creditledger.application.purchase_view import ExternalPaymentView, PurchaseView, history_of
from creditledger.application.testing.clock import ManualClock
from creditledger.application.testing.ids import CountingIds
from creditledger.application.testing.model import (
    CREDIT_CHANGES,
    INVOICE_CREATED,
    PAYMENT_AUTHORIZED,
    PAYMENT_FAILED_EVENT,
    PAYMENT_SETTLED,
    PURCHASE_VOIDED,
    ExpectedExpiry,
    ExpectedFailure,
    ExpectedInvoice,
    ExpectedPayment,
    ExpectedRefunds,
    ExpectedState,
    ExpectedVoid,
    LedgerModel,
    ModelPurchase,
    PaymentRequest,
    PurchaseRequest,
    Verdict,
)
from creditledger.application.testing.model_postings import (
    UNITS,
    entries_by_version,
    expected_balances,
    expected_postings,
    expected_wallet_postings,
)
from creditledger.application.testing.model_wallet import (
    GrantTerms,
    ModelWallet,
    ModelWalletEvent,
    WalletKey,
    burn_down_rank,
)
from creditledger.application.testing.strategies import (
    CUSTOMERS,
    FAR_FUTURE,
    NAMESPACES,
    WALLET_CURRENCIES,
    GrantTermsDraw,
    InvalidInitiation,
    as_of_offsets,
    clock_advances,
    consumption_amounts,
    consumption_features,
    external_references,
    failure_reasons,
    invalid_initiations,
    invoice_lines,
    optional_keys,
    refund_amounts,
    refund_reasons,
    tying_grant_terms,
    usage_references,
    valid_initiations,
)
from creditledger.domain.errors import (
    InsufficientCreditError,
    LedgerError,
    RefundExceedsRemainingError,
    ValidationFailedError,
)
from creditledger.domain.events import (
    CreditsConsumed,
    GrantAdded,
    GrantExpired,
    GrantRevoked,
    GrantVoided,
    Initiated,
    LedgerEvent,
    PaymentAuthorized,
    PaymentRefunded,
    PaymentSettled,
    PurchaseEvent,
    WalletEvent,
    WalletEventBase,
)
from creditledger.domain.ledger import Account, Posting, postings_for, wallet_postings
from creditledger.domain.purchase import project_purchase
from creditledger.domain.wallet import project_wallet

_READ_BATCH = 1000
COMMAND_KINDS = ("authorize", "settle", "void", "invoice_created", "fail", "refund")
"""Every command about one purchase, by name."""


def some_command(kind: str, **fields: object) -> PaymentRequest:
    """A command of ``kind`` with ``fields`` and plain values for what else it needs."""
    match kind:
        case "authorize":
            return AuthorizePayment.model_validate(fields)
        case "settle":
            return SettlePayment.model_validate(fields)
        case "void":
            return VoidPurchase.model_validate(fields)
        case "invoice_created":
            return CreateInvoice.model_validate(
                {"invoice_id": "inv-9", "line_id": "line-9", **fields}
            )
        case "fail":
            return FailPayment.model_validate({"reason": "card_declined", **fields})
        case "refund":
            return RefundPayment.model_validate(fields)
    msg = f"no command {kind!r}"
    raise ValueError(msg)


_TICK = timedelta(microseconds=1)
WALLET_FIELDS = frozenset({"remaining", "consumed", "expired", "expiry"})
"""View fields its wallet's state gives a purchase (``realizations.expiry`` the last): they
change without the purchase's version changing (a consumption, an expiry due), so equal versions
need not show them equal."""


class InvariantViolation(AssertionError):  # noqa: N818 - reads as what it is in a failure
    """The ledger broke a rule the machine checks. (A raise, not ``assert``: it survives -O.)"""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise InvariantViolation(message)


def _payment_of(payment: ExternalPaymentView | None) -> ExpectedPayment | None:
    if payment is None:
        return None
    return ExpectedPayment(
        status=str(payment.status),
        amount=str(payment.amount),
        authorized_at=payment.authorized.at,
        authorized_reference=payment.authorized.external_reference,
        settled_at=None if payment.settled is None else payment.settled.at,
        settled_reference=None if payment.settled is None else payment.settled.external_reference,
    )


def state_of(view: PurchaseView) -> ExpectedState:
    """A view's fields in the model's terms, so the two compare field by field."""
    realizations = view.realizations
    void = realizations.void
    expiry = realizations.expiry
    invoice = realizations.invoice
    failure = realizations.payment_failure
    refunds = realizations.refunds
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
        granted_at=(
            view.realizations.credit_grant.granted_at
            if view.realizations.credit_grant is not None
            else None
        ),
        payment=_payment_of(realizations.external_payment),
        invoice_payment=_payment_of(realizations.invoice_payment),
        invoice=None
        if invoice is None
        else ExpectedInvoice(invoice.invoice_id, invoice.line_id, invoice.created_at),
        remaining=view.remaining,
        consumed=view.consumed,
        expired=view.expired,
        voided=view.voided,
        revoked=view.revoked,
        refunded=view.refunded,
        void=None if void is None else ExpectedVoid(void.at, void.amount, void.reason),
        expiry=None
        if expiry is None
        else ExpectedExpiry(expiry.at, expiry.amount, expiry.recorded),
        failure=None
        if failure is None
        else ExpectedFailure(
            at=failure.at,
            reason=failure.reason,
            revoked=failure.revoked,
            released=failure.released,
            owed=failure.owed,
            external_reference=failure.external_reference,
        ),
        refunds=None
        if refunds is None
        else ExpectedRefunds(refunds.count, refunds.amount, refunds.cash_amount, refunds.last_at),
    )


def differences(
    actual: ExpectedState, expected: ExpectedState, skip: frozenset[str] = frozenset()
) -> list[str]:
    """The fields that differ (but those in ``skip``), each with both values."""
    return [
        f"{item.name}: ledger {getattr(actual, item.name)!r}, "
        f"model {getattr(expected, item.name)!r}"
        for item in dataclasses.fields(ExpectedState)
        if item.name not in skip and getattr(actual, item.name) != getattr(expected, item.name)
    ]


def purchase_part(view: PurchaseView) -> dict[str, object]:
    """A view without what its wallet's state gives it (see ``WALLET_FIELDS``)."""
    return view.model_dump(
        exclude={"remaining": True, "consumed": True, "expired": True, "realizations": {"expiry"}}
    )


class CreditPurchaseMachine(RuleBasedStateMachine):
    """Random histories of initiate, authorize, settle, consume, void, expiry, the clock moving,
    retries, stale versions and queries.

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
        self.ids = CountingIds()
        """New ids for the ledger (``open_ledger(ids=self.ids)``): an example replays exactly."""
        self.model = LedgerModel()
        self.events: list[LedgerEvent] = []
        """Every event in the log, in notification order, read back from the store."""
        self.histories: dict[UUID, list[PurchaseEvent]] = {}
        """The purchase events per purchase, in version order."""
        self.wallet_histories: dict[UUID, list[WalletEvent]] = {}
        """The wallet events per wallet, in version order."""
        self.wallet_ids: dict[WalletKey, UUID] = {}
        """Each wallet's id, as its events name it."""
        self.postings: list[Posting] = []
        """Every ledger posting the events book (``creditledger.domain.ledger.postings_for`` for
        purchase events, ``wallet_postings`` for wallet events)."""
        self.wallet_groups: set[UUID] = set()
        """The transaction groups of ``self.postings`` that wallet events book."""
        self.seen: dict[tuple[UUID, int], PurchaseView] = {}
        """Every answer the ledger gave, by (purchase, version): what each version was then."""
        self.seen_consumptions: dict[tuple[WalletKey, int], ConsumptionView] = {}
        """Every consumption the ledger answered, by (wallet, version of its event)."""
        self._wallet_postings: dict[UUID, list[Posting]] = {}
        self._replayed_wallets: dict[UUID, int] = {}
        self._last_notification_id = 0
        self._group_owner: dict[UUID, tuple[UUID, int]] = {}
        self._group_sums: dict[tuple[UUID, str], Decimal] = {}
        self._replayed_versions: dict[UUID, tuple[int, int]] = {}
        self._writes_at_restart = 0
        self._failed_after: dict[UUID, int] = {}
        """Failed purchases, and how many events the log held right after the failure."""
        self.ledger = self.make_ledger()
        if self.ledger.recorder.max_notification_id() is not None:
            self.ledger.close()  # no teardown() for a machine that never started
            self._fail("make_ledger() must return a ledger on an empty store (one per example)")

    # -- what a subclass provides -----------------------------------------------------------------

    def make_ledger(self) -> CreditLedger:
        """A ledger on an empty store, using ``self.clock`` and ``self.ids``. Called once per
        example."""
        msg = (
            "subclass CreditPurchaseMachine and return a ledger on an empty store, e.g. "
            "open_ledger('memory://', clock=self.clock, ids=self.ids)"
        )
        raise NotImplementedError(msg)

    def reopen_ledger(self) -> CreditLedger:
        """A second ledger on the store ``make_ledger`` opened (only if ``restartable``)."""
        msg = "set restartable = True and return a new ledger on the same store"
        raise NotImplementedError(msg)

    def observe(self, events: Sequence[LedgerEvent]) -> None:
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
        kind=st.sampled_from(COMMAND_KINDS),
        offset=st.integers(-3, 3).filter(bool),
        key=optional_keys(),
    )
    def act_on_a_stale_version(
        self, purchase: UUID, kind: str, offset: int, key: str | None
    ) -> None:
        known = self.model.purchases[purchase]
        self._pay(
            some_command(
                kind,
                namespace=known.namespace,
                purchase_id=purchase,
                idempotency_key=key,
                expected_version=known.version + offset,
            )
        )

    @rule(
        purchase=purchases,
        kind=st.sampled_from(COMMAND_KINDS),
        stranger=st.uuids(version=4) | st.none(),
    )
    def act_from_another_namespace(self, purchase: UUID, kind: str, stranger: UUID | None) -> None:
        """Another tenant's purchase, or an id nobody issued: not found, either way."""
        known = self.model.purchases[purchase]
        others = [namespace for namespace in NAMESPACES if namespace != known.namespace]
        if stranger is None:
            namespace = others[0] if others else "elsewhere"
            self._pay(some_command(kind, namespace=namespace, purchase_id=purchase))
        else:
            self._pay(some_command(kind, namespace=known.namespace, purchase_id=stranger))

    @precondition(lambda self: bool(self.model.answers))
    @rule(pick=st.integers(min_value=0))
    def retry_a_keyed_command(self, pick: int) -> None:
        """Send an answered request again, key and all: the same answer, nothing written."""
        answer = self.model.answers[pick % len(self.model.answers)]
        self._resend(answer.request)

    @precondition(lambda self: bool(self.model.answers))
    @rule(
        pick=st.integers(min_value=0),
        switch=st.sampled_from((None, *COMMAND_KINDS)),
        reference=external_references(),
    )
    def reuse_a_key_for_another_request(
        self, pick: int, switch: str | None, reference: str | None
    ) -> None:
        """The same key with another request: refused (or a replay, if the request is the same)."""
        request = self.model.answers[pick % len(self.model.answers)].request
        if isinstance(request, InitiatePurchase):
            other: InitiatePurchase | PaymentRequest = request.model_copy(
                update={"customer_id": request.customer_id + "-other"}
            )
        else:
            other = some_command(
                switch or type(request).NAME,
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

    # -- credit both ways: grants, consumptions, voids, expiry ------------------------------------

    @rule(
        target=purchases,
        data=st.data(),
        pick=st.integers(min_value=0),
        new_wallet=st.integers(0, 3).map(lambda n: n == 0),
        grants=tying_grant_terms(),
    )
    def grant_more_credit(
        self,
        data: st.DataObject,
        pick: int,
        new_wallet: bool,
        grants: list[GrantTermsDraw],
    ) -> MultipleResults[UUID]:
        """One to three purchases for a customer and currency that has grants (or one of a few
        fixed ones), often expiring soon, each after the first often the one before with one
        burn-down term changed or none (``tying_grant_terms``): what the burn-down order,
        feature filters and expiry are about."""
        return multiple(*self._grant(data, pick, new_wallet, grants)[1])

    @rule(
        target=purchases,
        data=st.data(),
        pick=st.integers(min_value=0),
        grants=tying_grant_terms(min_size=2),
        key=optional_keys(),
        reference=usage_references(),
    )
    def top_up_and_spend(
        self,
        data: st.DataObject,
        pick: int,
        grants: list[GrantTermsDraw],
        key: str | None,
        reference: str | None,
    ) -> MultipleResults[UUID]:
        """Two or three neighbouring grants for a customer (one with grants, if any), then a
        consumption from that customer at once, for no feature or one the new grants name: the
        burn-down order decides which grant pays. Apart, the two are rarely drawn in that order
        on the same wallet, and an order bug would hide for hundreds of examples."""
        wallet_key, created = self._grant(data, pick, False, grants)
        wallet = self.model.wallets.get(wallet_key)
        if wallet is not None:
            served = sorted({f for _, _, filters in grants for f in filters})
            feature = data.draw(st.sampled_from([None, *served]), label="feature")
            self._consume_from(wallet, data, feature, key, reference)
        return multiple(*created)

    def _grant(
        self, data: st.DataObject, pick: int, new_wallet: bool, grants: list[GrantTermsDraw]
    ) -> tuple[WalletKey, list[UUID]]:
        """Initiate a purchase per drawn terms for one customer and currency: the wallet's key
        and the purchases created."""
        wallets = list(self.model.wallets)
        if wallets and not new_wallet:
            namespace, customer, currency = wallets[pick % len(wallets)]
        else:
            namespace = NAMESPACES[pick % len(NAMESPACES)]
            customer = CUSTOMERS[pick // len(NAMESPACES) % len(CUSTOMERS)]
            currency = WALLET_CURRENCIES[pick // 6 % len(WALLET_CURRENCIES)]
        created = []
        for expires_in, priority, filters in grants:
            drawn = data.draw(
                valid_initiations(
                    namespaces=(namespace,), customers=(customer,), in_currencies=(currency,)
                ),
                label="request",
            )
            request = drawn.model_copy(
                update={
                    "customer_id": customer,
                    "priority": priority,
                    "feature_filters": filters,
                    "expires_at": None if expires_in is None else self.clock.now() + expires_in,
                }
            )
            purchase = self._initiate(request, frozenset())
            if purchase is not None:
                created.append(purchase)
        return (namespace, customer, currency), created

    @precondition(lambda self: bool(self.model.wallets))
    @rule(
        data=st.data(),
        pick=st.integers(0, 7),
        key=optional_keys(),
        reference=usage_references(),
    )
    def consume(
        self, data: st.DataObject, pick: int, key: str | None, reference: str | None
    ) -> None:
        """Spend credit of a customer with grants, for no feature or one its grants name: part
        of what it may spend, all of it, more than it has, or any amount."""
        wallet = self._wallet(pick)
        served = sorted({f for terms in wallet.terms.values() for f in terms.feature_filters})
        feature = data.draw(st.sampled_from([None, *served]), label="feature")
        self._consume_from(wallet, data, feature, key, reference)

    @precondition(lambda self: bool(self.model.wallets))
    @rule(
        data=st.data(),
        pick=st.integers(min_value=0),
        feature=consumption_features(),
        key=optional_keys(),
        reference=usage_references(),
    )
    def consume_for_a_feature(
        self,
        data: st.DataObject,
        pick: int,
        feature: str | None,
        key: str | None,
        reference: str | None,
    ) -> None:
        """The same, for a feature drawn apart from the grants: often one no grant serves."""
        self._consume_from(self._wallet(pick), data, feature, key, reference)

    @precondition(lambda self: bool(self._grants_to_expire()))
    @rule(
        data=st.data(),
        pick=st.integers(min_value=0),
        offset=st.sampled_from((timedelta(0), -_TICK)),
        key=optional_keys(),
    )
    def consume_on_an_expiry(
        self, data: st.DataObject, pick: int, offset: timedelta, key: str | None
    ) -> None:
        """Move the clock onto a grant's ``expires_at`` (or a microsecond before it) and spend
        from its wallet, for a feature it serves: at the instant itself it cannot be drawn."""
        grants = self._grants_to_expire()
        wallet, terms = grants[pick % len(grants)]
        self.clock.set(terms.expires_at + offset if terms.expires_at else self.clock.now())
        feature = terms.feature_filters[0] if terms.feature_filters else None
        self._consume_from(wallet, data, feature, key, None)

    def _grants_to_expire(self) -> list[tuple[ModelWallet, GrantTerms]]:
        """Grants with credit left that expire after now (and before ``FAR_FUTURE``)."""
        now = self.clock.now()
        found = []
        for wallet in self.model.wallets.values():
            for grant in wallet.recorded().values():
                expires = grant.terms.expires_at
                if grant.remaining > 0 and expires and now < expires - _TICK < FAR_FUTURE:
                    found.append((wallet, grant.terms))
        return found

    def _wallet(self, pick: int) -> ModelWallet:
        # Half the picks (and the small ones, where shrinking goes) take the wallet with the most
        # grants: a consumption across grants is where the burn-down order shows.
        wallets = sorted(self.model.wallets.values(), key=lambda w: -len(w.terms))
        return wallets[0 if pick < 4 else pick % len(wallets)]

    def _consume_from(
        self,
        wallet: ModelWallet,
        data: st.DataObject,
        feature: str | None,
        key: str | None,
        reference: str | None,
    ) -> None:
        namespace, customer, currency = wallet.key
        at = wallet.decision_time(self.clock.now())
        remainders = [g.remaining for g in wallet.spendable(at, feature)]
        amount = data.draw(consumption_amounts(currency, remainders), label="amount")
        self._consume(
            ConsumeCredits(
                namespace=namespace,
                customer_id=customer,
                currency=currency,
                amount=amount,
                feature_key=feature,
                usage_reference=reference,
                idempotency_key=key,
            )
        )

    @precondition(lambda self: bool(self.model.consumptions))
    @rule(pick=st.integers(min_value=0))
    def retry_a_consumption(self, pick: int) -> None:
        """A keyed consumption again, as it was sent: its first answer, nothing written."""
        self._consume(self.model.consumptions[pick % len(self.model.consumptions)])

    @precondition(lambda self: bool(self.model.consumptions))
    @rule(pick=st.integers(min_value=0), change=st.sampled_from(("amount", "feature", "reference")))
    def reuse_a_consumption_key(self, pick: int, change: str) -> None:
        """The key of a consumption with another amount, feature or reference: refused."""
        request = self.model.consumptions[pick % len(self.model.consumptions)]
        updates: dict[str, dict[str, object]] = {
            "amount": {"amount": str(Decimal(str(request.amount)) + 1)},
            "feature": {"feature_key": "storage" if request.feature_key != "storage" else None},
            "reference": {"usage_reference": (request.usage_reference or "") + "-other"},
        }
        self._consume(request.model_copy(update=updates[change]))

    @rule(
        purchase=purchases,
        key=optional_keys(),
        reason=st.none() | st.sampled_from(("goodwill reversed", "fraud")),
        pin_version=st.booleans(),
    )
    def void(self, purchase: UUID, key: str | None, reason: str | None, pin_version: bool) -> None:
        """Void any purchase: with credit left, already voided, fully consumed or expired."""
        known = self.model.purchases[purchase]
        self._pay(
            VoidPurchase(
                namespace=known.namespace,
                purchase_id=purchase,
                idempotency_key=key,
                reason=reason,
                expected_version=known.version if pin_version else None,
            )
        )

    # -- invoices, failed payments, refunds (issue 13) ------------------------------------------

    @rule(
        purchase=purchases,
        line=invoice_lines(),
        key=optional_keys(),
        reference=external_references(),
        pin_version=st.booleans(),
    )
    def create_invoice(
        self,
        *,
        purchase: UUID,
        line: tuple[str, str],
        key: str | None,
        reference: str | None,
        pin_version: bool,
    ) -> None:
        """The invoice of any purchase: an invoice purchase's grants its credit (once); any
        other is refused (``invoice_already_created``, ``invalid_transition``...)."""
        known = self.model.purchases[purchase]
        invoice_id, line_id = line
        self._pay(
            CreateInvoice(
                namespace=known.namespace,
                purchase_id=purchase,
                invoice_id=invoice_id,
                line_id=line_id,
                idempotency_key=key,
                external_reference=reference,
                expected_version=known.version if pin_version else None,
            )
        )

    @rule(
        purchase=purchases,
        reason=failure_reasons(),
        key=optional_keys(),
        reference=external_references(),
        pin_version=st.booleans(),
    )
    def fail_payment(
        self,
        *,
        purchase: UUID,
        reason: str,
        key: str | None,
        reference: str | None,
        pin_version: bool,
    ) -> None:
        """The payment of any purchase failed: before settlement, what remains is revoked and
        what was consumed stays owed; after it, or after a failure, refused."""
        known = self.model.purchases[purchase]
        self._pay(
            FailPayment(
                namespace=known.namespace,
                purchase_id=purchase,
                reason=reason,
                idempotency_key=key,
                external_reference=reference,
                expected_version=known.version if pin_version else None,
            )
        )

    @rule(
        data=st.data(),
        purchase=purchases,
        reason=refund_reasons(),
        key=optional_keys(),
        reference=external_references(),
        pin_version=st.booleans(),
    )
    def refund(
        self,
        *,
        data: st.DataObject,
        purchase: UUID,
        reason: str | None,
        key: str | None,
        reference: str | None,
        pin_version: bool,
    ) -> None:
        """Refund any purchase: all that remains, part of it, more than it, nothing, or no
        amount at all; settled or not, failed, promotional, voided, consumed or expired."""
        self._refund(data, purchase, reason, key, reference, pin_version=pin_version)

    @precondition(lambda self: bool(self._settled_payments()))
    @rule(
        data=st.data(),
        pick=st.integers(min_value=0),
        times=st.integers(2, 4),
        reason=refund_reasons(),
        key=optional_keys(),
    )
    def refund_a_settled_payment(
        self, data: st.DataObject, pick: int, times: int, reason: str | None, key: str | None
    ) -> None:
        """The same, of a settled payment (where refunds are accepted), two to four times in a
        row: parts of one payment (amounts the ledger accepts: parts, then perhaps the rest), so
        that the cumulative rounding of the cash is exercised. Only the first part carries the
        key: a second part under it would be refused as a reused key (``refund`` covers that)
        and the payment would not be refunded in parts at all."""
        settled = self._settled_payments()
        for part in range(times):
            self._refund(
                data,
                settled[pick % len(settled)],
                reason,
                key if part == 0 else None,
                None,
                pin_version=False,
                accepted_only=True,
            )

    @precondition(lambda self: bool(self._failed_after))
    @rule(
        pick=st.integers(min_value=0),
        kind=st.sampled_from(COMMAND_KINDS),
        key=optional_keys(),
        reference=external_references(),
    )
    def act_after_a_failure(
        self, pick: int, kind: str, key: str | None, reference: str | None
    ) -> None:
        """Any command about a purchase whose payment failed (a settlement that raced the
        failure and lost, a late invoice, a refund): refused, nothing written."""
        # In the order they failed: the ids are random, and a pick that depended on them would
        # make the same choices run a different history on replay (Hypothesis calls that flaky).
        failed = list(self._failed_after)
        known = self.model.purchases[failed[pick % len(failed)]]
        self._pay(
            some_command(
                kind,
                namespace=known.namespace,
                purchase_id=known.id,
                idempotency_key=key,
                external_reference=reference,
            )
        )

    def _settled_payments(self) -> list[UUID]:
        return [
            known.id
            for known in self.model.purchases.values()
            if known.status == "final" and known.payment_amount is not None
        ]

    def _refund(
        self,
        data: st.DataObject,
        purchase: UUID,
        reason: str | None,
        key: str | None,
        reference: str | None,
        *,
        pin_version: bool,
        accepted_only: bool = False,
    ) -> None:
        known = self.model.purchases[purchase]
        credit = self.model.credit(purchase, self.clock.now())
        left = max(known.state(None, credit).remaining, Decimal(0))
        amount = data.draw(
            refund_amounts(known.currency, left, accepted_only=accepted_only), label="amount"
        )
        self._pay(
            RefundPayment(
                namespace=known.namespace,
                purchase_id=purchase,
                amount=amount.value,
                reason=reason,
                idempotency_key=key,
                external_reference=reference,
                expected_version=known.version if pin_version else None,
            ),
            amount.problems,
        )

    @precondition(lambda self: any(p.expires_at for p in self.model.purchases.values()))
    @rule(
        pick=st.integers(min_value=0),
        offset=st.sampled_from((timedelta(0), timedelta(0), -_TICK, _TICK, timedelta(days=1))),
    )
    def advance_the_clock_to_an_expiry(self, pick: int, offset: timedelta) -> None:
        """Move the clock to a grant's expiry: exactly on it (twice as often: where an
        off-by-one shows), a microsecond either side, or a day after (never back: only if that
        is later than now)."""
        expiries = sorted({p.expires_at for p in self.model.purchases.values() if p.expires_at})
        target = expiries[pick % len(expiries)] + offset
        if self.clock.now() < target < FAR_FUTURE:
            self.clock.set(target)

    @precondition(lambda self: bool(self.model.wallets))
    @rule(pick=st.integers(min_value=0))
    def sweep_expired_grants(self, pick: int) -> None:
        """The expiry sweep's command for one wallet: records each expiry due, once."""
        wallets = list(self.model.wallets)
        key = wallets[pick % len(wallets)]
        verdict = self.model.judge_expire_due(key, self.clock.now())
        before = self.ledger.recorder.max_notification_id()
        expired = self.ledger.expire_due(*key)
        answered = [(e.purchase_id, e.amount, e.effective_at, e.timestamp) for e in expired]
        expected = [(e.purchase_id, e.amount, e.effective_at, e.at) for e in verdict.wallet_events]
        check(answered == expected, f"expire_due answered {answered}; the model: {expected}")
        if not verdict.wallet_events:
            self._check_nothing_written(before, None, None, "nothing due")
            return
        event(f"expired: {len(expected)}")
        self.model.record_expire_due(verdict)
        written = self._catch_up()
        theirs = [e for e in written if isinstance(e, WalletEventBase)]
        check(len(theirs) == len(written), f"the sweep wrote purchase events: {written}")
        self._check_wallet_written(theirs, key, verdict.wallet_events)

    @precondition(lambda self: bool(self.model.wallets))
    @rule(pick=st.integers(min_value=0), which=st.integers(min_value=0), offset=as_of_offsets())
    def look_at_credits_in_the_past(self, pick: int, which: int, offset: timedelta) -> None:
        """A customer's spendable credit, credit history and balances as of a moment near one of
        its wallet's events or grants' expiries: what they were then."""
        wallets = list(self.model.wallets)
        wallet = self.model.wallets[wallets[pick % len(wallets)]]
        moments = sorted(
            {event.at for event in wallet.events}
            | {terms.expires_at for terms in wallet.terms.values() if terms.expires_at}
        )
        moment = moments[which % len(moments)] + offset
        self._check_credits(wallet, moment)
        self._check_credit_history(wallet, moment)
        self._check_ledger_balances(moment)

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
        self._check_state(view, known, version, f"as of {moment.isoformat()}", moment)

    @rule(purchase=purchases)
    def inspect_every_version(self, purchase: UUID) -> None:
        """Every past version reads as it was then, and the history matches the log."""
        known = self.model.purchases[purchase]
        for version in range(1, known.version + 1):
            view = self.ledger.get_purchase(known.namespace, purchase, version=version)
            moment = known.events[version - 1].at
            self._check_state(view, known, version, f"at version {version}", moment)
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
            self._check_state(view, known, known.version, "after a restart", self.clock.now())
        for wallet in self.model.wallets.values():
            self._check_credits(wallet, None)

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def only_commands_write(self) -> None:
        stray = self._catch_up()
        check(not stray, f"events appeared in the log outside any command: {stray}")

    @invariant()
    def replaying_the_log_gives_the_model_state(self) -> None:
        """Each purchase's and each wallet's events, folded again, give the model's state."""
        wallets = {}
        for key, wallet_id in self.wallet_ids.items():
            wallet_history = self.wallet_histories[wallet_id]
            folded = project_wallet(None, wallet_history)
            if folded is None:  # pragma: no cover - wallet histories are never empty
                self._fail(f"no events for wallet {key}")
            wallets[key] = folded
            if self._replayed_wallets.get(wallet_id) == len(wallet_history):
                continue
            expected = self.model.wallets[key].recorded()
            found = {
                purchase_id: (g.consumed, g.expired, g.voided, g.revoked, g.remaining)
                for purchase_id, g in folded.grants.items()
            }
            want = {
                purchase_id: (g.consumed, g.expired, g.voided, g.revoked + g.refunded, g.remaining)
                for purchase_id, g in expected.items()
            }
            check(found == want, f"wallet {key} replays to {found}; the model has {want}")
            self._replayed_wallets[wallet_id] = len(wallet_history)
        for purchase_id, history in self.histories.items():
            known = self.model.purchases[purchase_id]
            wallet = wallets.get(known.wallet)  # none yet: an invoice purchase's grant waits
            mark = (len(history), wallet.version if wallet else 0)
            if self._replayed_versions.get(purchase_id) == mark:
                continue  # nothing new since the last replay of this purchase
            replayed = project_purchase(None, history)
            if replayed is None:  # pragma: no cover - histories are never empty
                self._fail(f"no events for {purchase_id}")
            view = PurchaseView.of(replayed, wallet.grants.get(purchase_id) if wallet else None)
            self._check_state(view, known, known.version, "replayed", None)
            self._replayed_versions[purchase_id] = mark

    @invariant()
    def fbo_is_granted_less_what_left_it(self) -> None:
        """Per customer and currency, FBO = granted - consumed - expired - voided - revoked -
        refunded >= 0; every account's balance is the model's; no grant is below zero."""
        booked = _balances(self.postings)
        for key, wallet in self.model.wallets.items():
            grants = wallet.recorded().values()
            granted = sum((g.terms.amount for g in grants), Decimal(0))
            gone = {
                "consumed": sum((g.consumed for g in grants), Decimal(0)),
                "expired": sum((g.expired for g in grants), Decimal(0)),
                "voided": sum((g.voided for g in grants), Decimal(0)),
                "revoked": sum((g.revoked for g in grants), Decimal(0)),
                "refunded": sum((g.refunded for g in grants), Decimal(0)),
            }
            negative = [g.purchase_id for g in grants if g.remaining < 0]
            check(not negative, f"grants of {key} below zero in the model: {negative}")
            fbo = booked.get((*key, Account.CUSTOMER_FBO.value), Decimal(0))
            left = granted - sum(gone.values(), Decimal(0))
            check(
                fbo == left and fbo >= 0,
                f"FBO of {key} is {fbo}; granted {granted} less {gone} = {left}",
            )
        self._check_ledger_balances(None)

    @invariant()
    def a_failed_payment_leaves_owed_what_was_consumed(self) -> None:
        """After a failure the purchase's open receivable is minus what was consumed of it (its
        own entries, in credits), and nothing of it is authorized any more."""
        failed = [p for p in self.model.purchases.values() if p.count(PAYMENT_FAILED_EVENT)]
        if not failed:
            return
        per_purchase: dict[tuple[UUID, str], Decimal] = {}
        for posting in self.postings:
            key = (posting.purchase_id, posting.account.value)
            per_purchase[key] = per_purchase.get(key, Decimal(0)) + posting.amount
        for known in failed:
            consumed = self.model.credit(known.id).consumed
            open_ = per_purchase.get((known.id, Account.CUSTOMER_RECEIVABLE_OPEN.value), Decimal(0))
            authorized = per_purchase.get(
                (known.id, Account.CUSTOMER_RECEIVABLE_AUTHORIZED.value), Decimal(0)
            )
            check(
                open_ == -consumed and authorized == 0,
                f"failed purchase {known.id}: open receivable {open_} (consumed {consumed}), "
                f"authorized {authorized}",
            )

    @invariant()
    def refunds_return_the_payment_at_most(self) -> None:
        """From the events alone: the cash refunds return never exceeds the payment, and is
        exactly the payment once every credit was refunded."""
        for purchase_id, history in self.histories.items():
            refunds = [e for e in history if isinstance(e, PaymentRefunded)]
            if not refunds:
                continue
            initiated = cast(Initiated, history[0])
            paid = next(e.amount for e in history if isinstance(e, PaymentAuthorized))
            credits = sum((e.amount for e in refunds), Decimal(0))
            cash = sum((e.cash_amount for e in refunds), Decimal(0))
            check(
                0 <= cash <= paid and (credits < initiated.credit_amount or cash == paid),
                f"purchase {purchase_id} paid {paid} for {initiated.credit_amount}; refunds of "
                f"{credits} credits returned {cash}",
            )

    @invariant()
    def wash_is_settled_cash_less_refunded_cash(self) -> None:
        """An auditor's reconciliation: per customer and currency, what left through ``wash``
        is the cash of every settled payment less the cash refunds returned, from the events."""
        expected: dict[tuple[str, str, str], Decimal] = {}
        for history in self.histories.values():
            initiated = cast(Initiated, history[0])
            key = (initiated.namespace, initiated.customer_id, initiated.currency)
            paid = next((e.amount for e in history if isinstance(e, PaymentAuthorized)), None)
            net = Decimal(0)
            if paid is not None and any(isinstance(e, PaymentSettled) for e in history):
                net += paid
            net -= sum(
                (e.cash_amount for e in history if isinstance(e, PaymentRefunded)), Decimal(0)
            )
            expected[key] = expected.get(key, Decimal(0)) + net
        booked = _balances(self.postings)
        for key, net in expected.items():
            wash = booked.get((*key, Account.WASH.value), Decimal(0))
            check(-wash == net, f"wash of {key} is {wash}; settled less refunded cash is {net}")

    @invariant()
    def nothing_is_written_after_a_failure(self) -> None:
        """A failed purchase's history ends with its failure, and no later write touches its
        credit."""
        for purchase_id, written in self._failed_after.items():
            history = self.histories[purchase_id]
            check(
                history[-1].TYPE.value == PAYMENT_FAILED_EVENT,
                f"purchase {purchase_id} recorded {history[-1].TYPE.value} after its failure",
            )
            for later in self.events[written:]:
                touched = {getattr(later, "purchase_id", None)} | {
                    a.purchase_id for a in getattr(later, "allocations", ())
                }
                check(
                    purchase_id not in touched,
                    f"{later.TYPE.value} touched purchase {purchase_id} after its failure",
                )

    @invariant()
    def spendable_credit_is_the_models(self) -> None:
        """Each customer's spendable grants now, in burn-down order, are the model's."""
        for wallet in self.model.wallets.values():
            self._check_credits(wallet, None)

    @invariant()
    def every_transaction_group_balances(self) -> None:
        """Each transaction group sums to zero in each unit (credits, cash)."""
        unbalanced = {group: total for group, total in self._group_sums.items() if total != 0}
        check(not unbalanced, f"unbalanced transaction groups (per unit): {unbalanced}")

    @invariant()
    def no_purchase_is_authorized_or_settled_twice(self) -> None:
        """Nor invoiced, voided or failed twice."""
        once = (PAYMENT_AUTHORIZED, PAYMENT_SETTLED, PURCHASE_VOIDED, INVOICE_CREATED)
        for purchase_id, history in self.histories.items():
            types = [event.TYPE.value for event in history]
            check(
                all(types.count(kind) <= 1 for kind in (*once, PAYMENT_FAILED_EVENT)),
                f"purchase {purchase_id} recorded {types}",
            )

    @invariant()
    def read_models_agree(self) -> None:
        self.check_read_models()

    # -- running one command ----------------------------------------------------------------------

    def _resend(self, request: PurchaseRequest) -> None:
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
        if key is None:
            check(
                outcome.purchase.id in self.ids.issued,
                "make_ledger() must pass ids=self.ids to open_ledger (and clock=self.clock): "
                "with ids of its own the ledger breaks burn-down ties differently on each run, "
                "so Hypothesis cannot replay an example",
            )
        now = self.clock.now()
        purchase = self.model.record_initiate(request, verdict, outcome.purchase.id, now)
        self._check_written(verdict, purchase, 0, self.model.granted_events(purchase.id))
        self._check_answer(outcome.purchase, purchase)
        return purchase.id

    def _pay(self, request: PaymentRequest, problems: frozenset[str] = frozenset()) -> None:
        """Any command about one purchase (``problems``: what a refund's amount carries)."""
        now = self.clock.now()
        verdict = self.model.judge(request, now, problems)
        known = self.model.purchases.get(request.purchase_id)
        outcome = self._execute(verdict, known.id if known else None, lambda: self._send(request))
        if outcome is None or verdict.replay_of is not None or known is None:
            return
        check(not outcome.created, f"{request.NAME} answered created=True: {request}")
        before = known.version
        self.model.record(request, verdict, now)
        self._check_written(verdict, known, before, verdict.wallet_events)
        if isinstance(request, CREDIT_CHANGES):
            # Decided with its wallet: the answer shows the grant as that write left it.
            self._check_answer(outcome.purchase, known)
        else:
            # The answer shows the purchase's credit as of the command's clock.
            self._check_answer(outcome.purchase, known, now)
        if isinstance(request, FailPayment):
            self._failed_after[known.id] = len(self.events)

    def _send(self, request: PaymentRequest) -> Outcome:
        match request:
            case AuthorizePayment():
                return self.ledger.authorize(request)
            case SettlePayment():
                return self.ledger.settle(request)
            case VoidPurchase():
                return self.ledger.void(request)
            case CreateInvoice():
                return self.ledger.create_invoice(request)
            case FailPayment():
                return self.ledger.fail_payment(request)
            case RefundPayment():
                return self.ledger.refund(request)
            case _:
                assert_never(request)

    def _consume(self, request: ConsumeCredits) -> None:
        verdict = self.model.judge_consume(request, self.clock.now())
        key = verdict.wallet
        if key is None:  # pragma: no cover - every consumption verdict names its wallet
            self._fail(f"the model named no wallet for {request}")
        before = self.ledger.recorder.max_notification_id()
        try:
            outcome = self.ledger.consume(request)
        except LedgerError as error:
            event(f"refused: {error.code}")
            check(
                error.code == verdict.error,
                f"the ledger raised {error.code} ({error}); the model says {verdict}",
            )
            if isinstance(error, InsufficientCreditError):
                check(
                    Decimal(error.available) == verdict.available,
                    f"insufficient_credit says {error.available} available; the model "
                    f"{verdict.available}",
                )
            self._check_nothing_written(before, None, None, f"rejected ({error.code})")
            return
        if verdict.error is not None:
            self._fail(f"the model says {verdict.error}; the ledger consumed {outcome}")
        if verdict.replay_of_consumption is not None:
            event("replayed a consumption")
            check(outcome.replayed, "a consumption's retry was not marked as a replay")
            self._check_nothing_written(before, None, None, "replayed")
            first = self.seen_consumptions.get((key, verdict.replay_of_consumption))
            check(
                first is not None and outcome.consumption == first,
                f"a retry answered {outcome.consumption}; the first answer was {first}",
            )
            return
        check(not outcome.replayed, f"a new consumption was answered as a replay: {outcome}")
        event(f"consumed from {len(verdict.wallet_events[-1].allocations)} grant(s)")
        consumed = self.model.record_consume(request, verdict)
        written = self._catch_up()
        theirs = [e for e in written if isinstance(e, WalletEventBase)]
        check(len(theirs) == len(written), f"a consumption wrote purchase events: {written}")
        self._check_wallet_written(theirs, key, verdict.wallet_events)
        self._check_consumption(outcome.consumption, key, consumed)
        self.seen_consumptions[(key, consumed.version)] = outcome.consumption

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
            if isinstance(error, RefundExceedsRemainingError):
                check(
                    verdict.remaining is not None and Decimal(error.remaining) == verdict.remaining,
                    f"refund_exceeds_remaining says {error.remaining} remains; the model "
                    f"{verdict.remaining}",
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
            original is not None and purchase_part(outcome.purchase) == purchase_part(original),
            f"a retry answered {outcome.purchase}; the first answer was {original}",
        )
        # What its wallet says is shown as of the answered version's time (the ledger's choice:
        # a consumption recorded since, at that same instant, shows in the replay).
        purchase_id, version = replay_of
        known = self.model.purchases[purchase_id]
        moment = known.events[version - 1].at
        self._check_state(outcome.purchase, known, version, "replayed answer", moment)

    def _check_nothing_written(
        self, before: int | None, target: UUID | None, history: object, what: str
    ) -> None:
        after = self.ledger.recorder.max_notification_id()
        check(after == before, f"{what}, yet the log moved from {before} to {after}")
        if history is not None and target is not None:
            check(self._history(target) == history, f"{what}, yet the history of {target} changed")
        stray = self._catch_up()
        check(not stray, f"{what}, yet it wrote {stray}")

    def _check_written(
        self,
        verdict: Verdict,
        purchase: ModelPurchase,
        before: int,
        wallet_events: Sequence[ModelWalletEvent],
    ) -> None:
        """The log gained exactly the events the model expected, in order: the purchase's, then
        its wallet's (one transaction)."""
        written = self._catch_up()
        own = [e for e in written if not isinstance(e, WalletEventBase)]
        theirs = [e for e in written if isinstance(e, WalletEventBase)]
        check(
            written == [*own, *theirs],
            f"the command wrote wallet events before purchase events: {written}",
        )
        got = [(event.originator_id, event.originator_version, event.TYPE.value) for event in own]
        want = [
            (purchase.id, before + offset, event_type)
            for offset, event_type in enumerate(verdict.events, start=1)
        ]
        check(got == want, f"the command wrote {got}; the model expected {want}")
        booked = entries_by_version(
            (posting.purchase_id, posting.version, posting.account.value, posting.amount)
            for posting in self.postings
            if posting.purchase_id == purchase.id
            and posting.version > before
            and posting.transaction_group_id not in self.wallet_groups
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
        for stored, expected in zip(own, purchase.events[before:], strict=True):
            check(
                stored.timestamp == expected.at
                and stored.idempotency_key == expected.idempotency_key,
                f"event v{stored.originator_version} of {purchase.id} recorded at "
                f"{stored.timestamp} with key {stored.idempotency_key!r}; the model expected "
                f"{expected.at} with key {expected.idempotency_key!r}",
            )
        self._check_wallet_written(theirs, purchase.wallet, wallet_events)

    def _check_wallet_written(
        self,
        written: list[WalletEvent],
        key: WalletKey,
        expected: Sequence[ModelWalletEvent],
    ) -> None:
        """The wallet gained exactly the model's events (and they booked the model's entries)."""
        got = [
            ((e.namespace, e.customer_id, e.currency), e.originator_version, e.TYPE.value)
            for e in written
        ]
        want = [(key, e.version, e.type) for e in expected]
        check(got == want, f"the wallet events written are {got}; the model expected {want}")
        for stored, model_event in zip(written, expected, strict=True):
            wallet_id = self.wallet_ids.setdefault(key, stored.originator_id)
            check(
                wallet_id == stored.originator_id,
                f"wallet {key} is written as {stored.originator_id} and as {wallet_id}",
            )
            diff = _wallet_event_differences(stored, model_event)
            check(not diff, f"wallet event v{stored.originator_version} of {key} differs: {diff}")
        owners = [
            k for k, wallet_id in self.wallet_ids.items() if wallet_id == self.wallet_ids.get(key)
        ]
        check(len(owners) <= 1, f"wallets {owners} share one id")
        if written:
            self._check_wallet_postings(self.model.wallets[key])

    def _check_wallet_postings(self, wallet: ModelWallet) -> None:
        wallet_id = self.wallet_ids[wallet.key]
        booked = Counter(
            (p.purchase_id, p.version, p.account.value, p.amount, p.at)
            for p in self._wallet_postings.get(wallet_id, [])
        )
        derived = Counter(
            (p.purchase_id, p.version, p.account, p.amount, p.at)
            for p in expected_wallet_postings(wallet)
        )
        check(
            booked == derived,
            f"wallet {wallet.key} booked {sorted(map(str, booked.elements()))}; the model "
            f"expected {sorted(map(str, derived.elements()))}",
        )

    def _check_consumption(
        self, view: ConsumptionView, key: WalletKey, consumed: ModelWalletEvent
    ) -> None:
        """The consumption's answer: the model's allocations exactly, in burn-down order."""
        allocations = [(a.purchase_id, a.amount) for a in view.allocations]
        found = (
            (view.namespace, view.customer_id, view.currency),
            view.amount,
            view.feature,
            view.reference,
            view.balance_after,
            view.consumed_at,
            view.sequence,
        )
        want = (
            key,
            consumed.amount,
            consumed.feature,
            consumed.reference,
            consumed.balance_after,
            consumed.at,
            consumed.version,
        )
        check(found == want, f"the consumption answered {found}; the model says {want}")
        check(
            str(view.amount) == str(consumed.amount),
            f"consumed {view.amount}, not rounded as the model's {consumed.amount}",
        )
        check(
            allocations == list(consumed.allocations),
            f"the consumption drew {allocations}; the model draws {list(consumed.allocations)}",
        )

    def _check_answer(
        self, view: PurchaseView, purchase: ModelPurchase, moment: datetime | None = None
    ) -> None:
        """The answer matches the model (its wallet's amounts as of ``moment``, or as recorded),
        and the store reads back the same purchase."""
        self._check_state(view, purchase, purchase.version, "answered", moment)
        self.seen[(purchase.id, purchase.version)] = view
        stored = self.ledger.get_purchase(purchase.namespace, purchase.id)
        check(
            purchase_part(stored) == purchase_part(view),
            f"read back {stored}; the command answered {view}",
        )
        self._check_state(stored, purchase, purchase.version, "read back", self.clock.now())

    def _check_state(
        self,
        view: PurchaseView,
        purchase: ModelPurchase,
        version: int,
        context: str,
        moment: datetime | None,
    ) -> None:
        """``view`` is the purchase at ``version``, with what its wallet says as of ``moment``
        (None: every wallet event, and no expiry that was not written)."""
        expected = self.model.purchase_state(purchase.id, version, moment)
        diff = differences(state_of(view), expected)
        check(not diff, f"{context}: purchase {purchase.id} v{version} differs: {diff}")
        earlier = self.seen.get((purchase.id, version))
        check(
            earlier is None or purchase_part(earlier) == purchase_part(view),
            f"{context}: v{version} of {purchase.id} reads {view}; it was answered as {earlier}",
        )

    def _check_credits(self, wallet: ModelWallet, as_of: datetime | None) -> None:
        """``customer_credits`` (now, or as of a moment): the model's spendable grants."""
        namespace, customer, currency = wallet.key
        view = self.ledger.customer_credits(namespace, customer, currency, as_of=as_of)
        moment = self.clock.now() if as_of is None else as_of
        check(view.as_of == moment, f"credits of {wallet.key} as of {view.as_of}, not {moment}")
        grants = sorted(
            (g for g in wallet.grants(moment).values() if g.live_at(moment)), key=burn_down_rank
        )
        found = [(g.purchase_id, g.remaining, g.consumed) for g in view.grants]
        want = [(g.purchase_id, g.remaining, g.consumed) for g in grants]
        check(
            found == want,
            f"spendable credit of {wallet.key} as of {moment}: ledger {found}, model {want}",
        )
        balance = sum((g.remaining for g in grants), Decimal(0))
        check(
            view.balance == balance,
            f"balance of {wallet.key} as of {moment}: ledger {view.balance}, model {balance}",
        )

    def _check_credit_history(self, wallet: ModelWallet, as_of: datetime) -> None:
        """``credit_history`` as of a moment: the model's wallet events recorded by then."""
        namespace, customer, currency = wallet.key
        entries = self.ledger.credit_history(namespace, customer, currency, as_of=as_of)
        found = [
            (
                e.sequence,
                str(e.type),
                e.amount,
                e.balance_before,
                e.balance_after,
                e.purchase_id,
                [(a.purchase_id, a.amount) for a in e.allocations],
                e.effective_at,
                e.recorded_at,
            )
            for e in entries
        ]
        want = []
        balance = Decimal(0)
        names = {
            "GrantAdded": "granted",
            "CreditsConsumed": "consumed",
            "GrantExpired": "expired",
            "GrantVoided": "voided",
        }
        revocations = {"payment_failed": "revoked", "refund": "refunded"}
        for e in wallet.events:
            if e.at > as_of:
                break
            name = revocations[e.cause or ""] if e.type == "GrantRevoked" else names[e.type]
            change = e.amount if e.type == "GrantAdded" else -e.amount
            effective = e.at
            if e.type == "GrantAdded" and e.purchase_id is not None:
                effective = wallet.terms[e.purchase_id].granted_at
            elif e.type == "GrantExpired" and e.effective_at is not None:
                effective = e.effective_at
            want.append(
                (
                    e.version,
                    name,
                    e.amount,
                    balance,
                    balance + change,
                    None if e.type == "CreditsConsumed" else e.purchase_id,
                    list(e.allocations),
                    effective,
                    e.at,
                )
            )
            balance += change
        check(
            found == want,
            f"credit history of {wallet.key} as of {as_of}: ledger {found}, model {want}",
        )

    def _check_ledger_balances(self, as_of: datetime | None) -> None:
        """Every account's balance from the booked entries (as of a moment: entries at or
        before it) equals the fold of the model's own postings."""
        model_postings = [
            *(p for purchase in self.model.purchases.values() for p in expected_postings(purchase)),
            *(
                p
                for wallet in self.model.wallets.values()
                for p in expected_wallet_postings(wallet)
            ),
        ]
        expected = {
            key: amount
            for key, amount in expected_balances(model_postings, as_of=as_of).items()
            if amount != 0
        }
        booked = {
            key: amount for key, amount in _balances(self.postings, as_of).items() if amount != 0
        }
        check(
            booked == expected,
            f"balances as of {as_of or 'now'}: ledger {booked}, model {expected}",
        )

    # -- reading the log --------------------------------------------------------------------------

    def _catch_up(self) -> list[LedgerEvent]:
        """Read the log past the last notification seen; check and book what is new."""
        new: list[LedgerEvent] = []
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
                event = cast(LedgerEvent, self.ledger.mapper.to_domain_event(notification))
                if isinstance(event, WalletEventBase):
                    self._book_wallet_event(event)
                else:
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
        self._post(postings_for(cast(Initiated, initiated), event), event.originator_id, event)

    def _book_wallet_event(self, event: WalletEvent) -> None:
        history = self.wallet_histories.setdefault(event.originator_id, [])
        check(
            event.originator_version == len(history) + 1,
            f"wallet event v{event.originator_version} of {event.originator_id} follows "
            f"v{len(history)}",
        )
        check(
            isinstance(history[0] if history else event, GrantAdded),
            f"wallet {event.originator_id} does not begin with a grant",
        )
        history.append(event)
        self.events.append(event)
        postings = wallet_postings(event, self._grant_terms)
        self._wallet_postings.setdefault(event.originator_id, []).extend(postings)
        self.wallet_groups.update(p.transaction_group_id for p in postings)
        self._post(postings, event.originator_id, event)

    def _grant_terms(self, purchase_id: UUID) -> Initiated:
        history = self.histories.get(purchase_id)
        if not history or not isinstance(history[0], Initiated):
            self._fail(f"a wallet event names purchase {purchase_id}, which has no Initiated")
        return history[0]

    def _post(self, postings: list[Posting], owner_id: UUID, event: LedgerEvent) -> None:
        owner = (owner_id, event.originator_version)
        for posting in postings:
            group = posting.transaction_group_id
            check(
                self._group_owner.setdefault(group, owner) == owner,
                f"transaction group {group} is booked by {self._group_owner[group]} and {owner}",
            )
            # Units from the model's own table: a group balances in credits and in cash apart.
            unit = (group, UNITS[posting.account.value])
            self._group_sums[unit] = self._group_sums.get(unit, Decimal(0)) + posting.amount
            self.postings.append(posting)

    def _history(self, purchase_id: UUID) -> object:
        known = self.model.purchases[purchase_id]
        return self.ledger.purchase_history(known.namespace, purchase_id)

    @staticmethod
    def _fail(message: str) -> NoReturn:
        raise InvariantViolation(message)


def _balances(
    postings: Sequence[Posting], as_of: datetime | None = None
) -> dict[tuple[str, str, str, str], Decimal]:
    """(namespace, customer, currency, account) -> balance of the entries at or before ``as_of``."""
    totals: dict[tuple[str, str, str, str], Decimal] = {}
    for posting in postings:
        if as_of is None or posting.at <= as_of:
            key = (posting.namespace, posting.customer_id, posting.currency, posting.account.value)
            totals[key] = totals.get(key, Decimal(0)) + posting.amount
    return totals


def _wallet_event_differences(stored: WalletEvent, expected: ModelWalletEvent) -> list[str]:
    """How a stored wallet event differs from the model's (amounts by value)."""
    found: dict[str, object] = {"timestamp": stored.timestamp}
    want: dict[str, object] = {"timestamp": expected.at}
    match stored:
        case GrantAdded():
            found |= {
                "purchase_id": stored.purchase_id,
                "amount": stored.amount,
                "granted_at": stored.granted_at,
            }
            want |= {
                "purchase_id": expected.purchase_id,
                "amount": expected.amount,
                "granted_at": expected.terms.granted_at if expected.terms else None,
            }
        case CreditsConsumed():
            found |= {
                "amount": stored.amount,
                "allocations": [(a.purchase_id, a.amount) for a in stored.allocations],
                "feature_key": stored.feature_key,
                "usage_reference": stored.usage_reference,
                "consumed_at": stored.consumed_at,
                "balance_after": stored.balance_after,
                "idempotency_key": stored.idempotency_key,
            }
            want |= {
                "amount": expected.amount,
                "allocations": list(expected.allocations),
                "feature_key": expected.feature,
                "usage_reference": expected.reference,
                "consumed_at": expected.at,
                "balance_after": expected.balance_after,
                "idempotency_key": expected.idempotency_key,
            }
        case GrantExpired():
            found |= {
                "purchase_id": stored.purchase_id,
                "amount": stored.amount,
                "effective_at": stored.effective_at,
            }
            want |= {
                "purchase_id": expected.purchase_id,
                "amount": expected.amount,
                "effective_at": expected.effective_at,
            }
        case GrantVoided():
            found |= {"purchase_id": stored.purchase_id, "amount": stored.amount}
            want |= {"purchase_id": expected.purchase_id, "amount": expected.amount}
        case GrantRevoked():
            found |= {"purchase_id": stored.purchase_id, "amount": stored.amount}
            want |= {"purchase_id": expected.purchase_id, "amount": expected.amount}
            found |= {"cause": stored.cause}
            want |= {"cause": expected.cause}
        case _:
            assert_never(stored)
    return [
        f"{name}: ledger {found[name]!r}, model {want[name]!r}"
        for name in found
        if found[name] != want[name]
    ]
