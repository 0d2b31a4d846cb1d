"""The CreditLedger service: command handlers and queries over CreditPurchase aggregates.

A command is handled in four steps: load the purchase (or derive its id), answer an idempotent
retry from the purchase's own history, let the aggregate decide (it follows the transition table
and raises typed errors), and save its new events in one transaction. A version conflict means
someone else wrote first: reload and decide again, a bounded number of times.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal, cast
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, PersistenceError
from eventsourcing.utils import Environment, EnvType

from creditledger.application.aggregate_cache import AggregateCache
from creditledger.application.clock import Clock, SystemClock
from creditledger.application.commands import (
    AuthorizePayment,
    ConsumeCredits,
    CreateInvoice,
    FailPayment,
    InitiatePurchase,
    PaymentCommand,
    RefundPayment,
    SettlePayment,
    VoidPurchase,
)
from creditledger.application.credit_history import CreditHistory
from creditledger.application.credit_views import (
    ConsumptionView,
    CreditEntry,
    CreditsView,
    GrantView,
)
from creditledger.application.errors import StoreUnavailableError
from creditledger.application.group_commit import (
    DEFAULT_MAX_BATCH,
    GroupCommitter,
    RetryDecisionError,
    Submission,
    last_position,
)
from creditledger.application.purchase_view import HistoryEntry, PurchaseView, history_of
from creditledger.application.striped_locks import StripedLocks
from creditledger.application.wallet_confirmations import WalletConfirmations
from creditledger.application.write_health import WriteHealth
from creditledger.domain.consumption import normalize_credit_amount
from creditledger.domain.errors import (
    ConcurrentModificationError,
    CreditPurchaseNotFoundError,
    CreditsNotGrantedError,
    CreditStateError,
    FieldError,
    IdempotencyKeyReusedError,
    LedgerError,
    ValidationFailedError,
    VersionMismatchError,
)
from creditledger.domain.events import (
    GrantExpired,
    LedgerEvent,
    PurchaseEvent,
    WalletEvent,
    WalletEventBase,
)
from creditledger.domain.identity import (
    consumption_id_for_key,
    purchase_id_for_key,
    wallet_id_for,
)
from creditledger.domain.intent import currency_problem, identity_problems
from creditledger.domain.money import round_money
from creditledger.domain.purchase import (
    CommandContext,
    CreditPurchase,
    GrantOutcome,
    project_purchase,
)
from creditledger.domain.status import Command, RevocationCause
from creditledger.domain.wallet import (
    CreditWallet,
    Grant,
    WalletContext,
    project_wallet,
)

DEFAULT_MAX_ATTEMPTS = 5
WALLET_ATTEMPTS_FACTOR = 4
"""A consumption tries ``max_attempts`` times this many: one hot wallet is contended by design."""
ANSWER_CONFIRMATION_SECONDS = 1.0
"""How old a wallet this process wrote or read may be for a command's answer to show its credit
amounts without asking the store whether another process wrote since: at most this stale when
another process spends the same customer's credit at the same time (queries are always exact)."""
DEFAULT_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class ConsumptionOutcome:
    """A consumption's result, and whether this answer replays an earlier one."""

    consumption: ConsumptionView
    replayed: bool = False
    position: int | None = None


class _PendingRun:
    """A wallet's decisions handed to the group committer, not all written yet: the wallet with
    all of them applied, and the last one's submission (each was decided on the one before)."""

    __slots__ = ("last", "wallet")

    def __init__(self, wallet: CreditWallet) -> None:
        self.wallet = wallet
        self.last: Submission

    @property
    def broken(self) -> bool:
        """Its last submission failed: the wallet holds decisions that were never written."""
        return self.last.settled and not self.last.succeeded


@dataclass(frozen=True)
class Outcome:
    """A command's result: the purchase, and whether this answer replays an earlier one."""

    purchase: PurchaseView
    replayed: bool = False
    created: bool = False
    position: int | None = None
    """The log position of the command's last event; None for a replay (nothing was written)."""


class CreditLedger(Application[UUID]):
    """Initiate, authorize and settle credit purchases; query them now, at a version, as of a time.

    Build it with ``creditledger.infrastructure.bootstrap.open_ledger``, which picks the store and
    sets the
    pydantic mapper; the library's default mapper cannot store pydantic events.
    """

    name = "creditledger"
    MAPPER_TOPIC: ClassVar[str] = "MAPPER_TOPIC"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        group_commit: bool = False,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait: float = 0.0,
        cache_size: int = DEFAULT_CACHE_SIZE,
        ids: Callable[[], UUID] = uuid4,
    ) -> None:
        self._committer: GroupCommitter | None = None
        # Injected like the clock: the ids of purchases and consumptions without an idempotency
        # key. They break burn-down ties, so a test that owns them replays the same history.
        self._new_id = ids
        super().__init__(env)
        if not self.env.get(self.MAPPER_TOPIC):
            self.close()
            msg = (
                "CreditLedger needs a MAPPER_TOPIC; "
                "build it with creditledger.infrastructure.bootstrap"
            )
            raise ValueError(msg)
        self.clock: Clock = clock or SystemClock()
        if max_attempts < 1:
            msg = "max_attempts must be at least 1"
            raise ValueError(msg)
        self.max_attempts = max_attempts
        self._cache: AggregateCache[CreditPurchase] = AggregateCache(cache_size)
        self._wallets: AggregateCache[CreditWallet] = AggregateCache(cache_size)
        self._wallet_locks = StripedLocks()
        # A command's answer trusts a wallet this fresh without asking the store.
        self._confirmations = WalletConfirmations(cache_size)
        self._pending: dict[UUID, _PendingRun] = {}
        """Wallets with decisions handed to the group committer and not all written yet; an
        entry is read and changed only under its wallet's lock."""
        self.write_health = WriteHealth()
        """The last write failure, if none succeeded since: readiness reports it."""
        self._credit_history = CreditHistory(
            lambda wallet_id, after, upto, limit: self._wallet_events(
                wallet_id, after=after, upto=upto, limit=limit
            )
        )
        self._committer = (
            GroupCommitter(
                self.events.put,
                max_batch=max_batch,
                max_wait=max_wait,
                taken=self._versions_taken,
            )
            if group_commit
            else None
        )

    def close(self) -> None:
        # Drain and stop the writer first: every acknowledged write is already durable, and
        # queued ones are written before the store closes.
        if self._committer is not None:
            self._committer.close()
        super().close()

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        # Only what the composition root passes in: an ambient variable such as
        # POSTGRES_ENABLE_DB_FUNCTIONS must never change how the ledger stores events.
        return Environment(name, {**type(self).env, **(env or {})})

    # -- commands -----------------------------------------------------------------------------

    def initiate(self, command: InitiatePurchase) -> Outcome:
        """Create a purchase (its credits granted), or replay the answer to an earlier request
        with the same idempotency key."""
        fingerprint = command.fingerprint()
        key = command.idempotency_key
        # With a key the id is derived, so two racing creates collide on version 1 and the
        # loser replays the winner's answer; without one, every initiate is a new purchase.
        purchase_id = purchase_id_for_key(command.namespace, key) if key else self._new_id()
        fresh_wallet = False
        for _ in range(self.max_attempts):
            if key is not None:
                # A purchase this process wrote or read lately answers a retry without a read.
                cached = self._cache.checkout(purchase_id)
                if cached is not None and cached.intent.namespace == command.namespace:
                    return self._replay(cached, key, fingerprint)
                if cached is not None:
                    self._cache.checkin(cached)
            now = self.clock.now()
            try:
                intent = command.intent(now)
            except ValidationFailedError:
                # A retry of a request that was valid when first made (its expiry has passed
                # since, say) still gets its first answer.
                earlier = self._earlier_answer(command, purchase_id)
                if earlier is None or key is None:
                    raise
                return self._replay(earlier, key, fingerprint)
            context = CommandContext(at=now, idempotency_key=key, request_fingerprint=fingerprint)
            purchase = CreditPurchase.initiate(purchase_id, intent, context)
            if purchase.granted is None:
                # An invoice purchase grants nothing until its invoice exists: no wallet yet.
                answer = self._save_ungranted(purchase, command, fingerprint)
                if answer is not None:
                    return answer
                continue
            # The grant becomes spendable in the customer's wallet in the same transaction.
            # Written first, read only if an id turns out taken: a new key for a customer this
            # process knows (or a new customer) costs no read, and a retry finds its answer
            # right after the refused write.
            wallet_id = wallet_id_for(intent.namespace, intent.customer_id, intent.currency)
            with self._wallet_locks.of(wallet_id):
                wallet = self._wallet(
                    wallet_id,
                    intent.namespace,
                    intent.customer_id,
                    intent.currency,
                    fresh=fresh_wallet,
                    guess_new=True,
                )
                if purchase_id in wallet.grants:
                    # The purchase exists already (a racing create with this key won).
                    self._wallets.checkin(wallet)
                    position: int | Literal[False] | None = False
                else:
                    position = self._commit_new(purchase, wallet)
                if position is not False:
                    self._cache.checkin(purchase)
                    self._wallets.checkin(wallet)
                    grant = wallet.grants.get(purchase_id)
                    return Outcome(
                        PurchaseView.of(purchase, grant), created=True, position=position
                    )
            fresh_wallet = True
            earlier = self._earlier_answer(command, purchase_id)
            if earlier is not None and key is not None:
                return self._replay(earlier, key, fingerprint)
        raise ConcurrentModificationError(f"purchase {purchase_id} kept changing; try again")

    def _save_ungranted(
        self, purchase: CreditPurchase, command: InitiatePurchase, fingerprint: str
    ) -> Outcome | None:
        """Write a new purchase that grants nothing yet; None if its id turned out taken by a
        purchase that is not this command's earlier answer (decide again)."""
        position = self._commit(purchase)
        if position is not False:
            self._cache.checkin(purchase)
            return Outcome(PurchaseView.of(purchase), created=True, position=position)
        earlier = self._earlier_answer(command, purchase.id)
        if earlier is not None and command.idempotency_key is not None:
            return self._replay(earlier, command.idempotency_key, fingerprint)
        return None

    def _commit_new(
        self, purchase: CreditPurchase, wallet: CreditWallet
    ) -> int | Literal[False] | None:
        """Write a new purchase and its grant (an invoice purchase grants nothing until its
        invoice exists: then the purchase alone; a racing create still collides on version 1)."""
        initiated = purchase.intent
        if initiated.granted_at is not None:
            wallet.add_grant(initiated, WalletContext(at=initiated.timestamp))
        return self._commit(purchase, wallet)

    def _earlier_answer(
        self, command: InitiatePurchase, purchase_id: UUID
    ) -> CreditPurchase | None:
        """The purchase an earlier initiate with this command's key created, if any."""
        if command.idempotency_key is None:
            return None
        existing = self._find(purchase_id)
        # Only a purchase of the same namespace can be this command's earlier answer:
        # ("a", "b/c") and the invalid ("a/b", "c") derive one id, and the latter must be refused
        # as invalid rather than look up the other tenant's keys.
        if existing is None or existing.intent.namespace != command.namespace:
            return None
        return existing

    def authorize(self, command: AuthorizePayment) -> Outcome:
        """Authorize the purchase's external payment (or replay an earlier answer)."""
        return self._change(command, CreditPurchase.authorize_payment)

    def settle(self, command: SettlePayment) -> Outcome:
        """Settle the purchase's external payment (or replay an earlier answer)."""
        return self._change(command, CreditPurchase.settle_payment)

    def _change(
        self,
        command: PaymentCommand,
        decide: Callable[[CreditPurchase, CommandContext], None],
    ) -> Outcome:
        fingerprint = command.fingerprint()
        key = command.idempotency_key
        fresh = False
        for _ in range(self.max_attempts):
            found = self._purchase_for(command, fingerprint, fresh=fresh)
            if isinstance(found, Outcome):
                return found
            purchase = found
            context = CommandContext(
                at=self.clock.now(),
                idempotency_key=key,
                request_fingerprint=fingerprint,
                external_reference=command.external_reference,
            )
            try:
                decide(purchase, context)
            except LedgerError:
                # Refused before recording anything: the purchase is as committed.
                if not purchase.has_pending_events:
                    self._cache.checkin(purchase)
                raise
            position = self._commit(purchase)
            if position is not False:
                self._cache.checkin(purchase)
                return Outcome(self._view(purchase, answer=True), position=position)
            fresh = True
        raise ConcurrentModificationError(
            f"purchase {command.purchase_id} kept changing; try again"
        )

    def _purchase_for(
        self, command: PaymentCommand, fingerprint: str, *, fresh: bool
    ) -> CreditPurchase | Outcome:
        """The purchase a command about one purchase decides on, checked out; or the replayed
        answer of an earlier request with the command's key. Raises for a purchase of another
        namespace (not found) and for an ``expected_version`` it is not at."""
        key = command.idempotency_key
        cached = None if fresh else self._cache.checkout(command.purchase_id)
        purchase = cached or self._load(command.namespace, command.purchase_id)
        if cached is not None and cached.intent.namespace != command.namespace:
            self._cache.checkin(cached)
            raise CreditPurchaseNotFoundError(f"credit purchase {command.purchase_id} not found")
        if key is not None and key in purchase.commands:
            return self._replay(purchase, key, fingerprint)
        expected = command.expected_version
        if expected is not None and expected != purchase.version and cached is not None:
            # The cache may lag the store (another process wrote): ask the store.
            purchase = self._load(command.namespace, command.purchase_id)
        if expected is not None and expected != purchase.version:
            self._cache.checkin(purchase)
            raise VersionMismatchError(f"purchase is at version {purchase.version}, not {expected}")
        return purchase

    def void(self, command: VoidPurchase) -> Outcome:
        """Forfeit what remains of the purchase's credit now (or replay an earlier answer)."""

        def decide(purchase: CreditPurchase, wallet: CreditWallet, context: CommandContext) -> None:
            # The purchase's status refuses first, as for every other command: a void after a
            # failed payment is payment_already_failed, not the wallet's nothing_to_void.
            purchase.refuse_unless_allowed(Command.VOID)
            forfeited = wallet.void_grant(purchase.id, WalletContext(at=context.at))
            purchase.void(forfeited.amount, context, command.reason)

        return self._change_credit(command, decide)

    def create_invoice(self, command: CreateInvoice) -> Outcome:
        """Record the invoice of an invoice purchase and grant its credits (or replay)."""

        def decide(purchase: CreditPurchase, wallet: CreditWallet, context: CommandContext) -> None:
            purchase.create_invoice(command.invoice_id, command.line_id, context)
            if purchase.granted is None:  # pragma: no cover - the invoice event grants
                raise CreditsNotGrantedError(f"purchase {purchase.id} granted nothing")
            wallet.add_grant(
                purchase.intent, WalletContext(at=context.at), granted_at=purchase.granted[1]
            )

        return self._change_credit(command, decide)

    def fail_payment(self, command: FailPayment) -> Outcome:
        """Record that the payment failed: what remains of the credit is taken back, what was
        consumed stays owed (or replay an earlier answer)."""

        def decide(purchase: CreditPurchase, wallet: CreditWallet, context: CommandContext) -> None:
            grant = self._granted(purchase, wallet, context.at)
            outcome = (
                GrantOutcome(
                    consumed=grant.consumed,
                    forfeited=grant.expired + grant.voided,
                    remaining=grant.remaining,
                )
                if grant is not None
                else None
            )
            purchase.fail_payment(outcome, command.reason, context)
            if grant is not None:
                wallet.revoke(
                    purchase.id, None, RevocationCause.PAYMENT_FAILED, WalletContext(at=context.at)
                )

        return self._change_credit(command, decide)

    def refund(self, command: RefundPayment) -> Outcome:
        """Give back part or all of a settled payment (or replay an earlier answer)."""

        def decide(purchase: CreditPurchase, wallet: CreditWallet, context: CommandContext) -> None:
            currency = purchase.intent.currency
            amount = (
                normalize_credit_amount(command.amount, currency)
                if command.amount is not None
                else None
            )
            grant = self._granted(purchase, wallet, context.at)
            remaining = grant.remaining if grant is not None else Decimal(0)
            purchase.refund(amount, remaining, context, command.reason)
            refunded = purchase.refunds[-1].amount
            wallet.revoke(
                purchase.id, refunded, RevocationCause.REFUND, WalletContext(at=context.at)
            )

        return self._change_credit(command, decide)

    @staticmethod
    def _granted(purchase: CreditPurchase, wallet: CreditWallet, at: datetime) -> Grant | None:
        """The purchase's grant as its wallet holds it at ``at`` (an expiry due by then applied);
        None when the purchase granted nothing yet. A wallet that lacks a grant the purchase made
        lags the store: ``credits_not_granted`` makes the caller read it again."""
        if purchase.granted is None:
            return None
        # Decided at the wallet's time, as its revocation will be: with a clock behind the
        # wallet's last event, an expiry due by then is recorded first, not revoked as well.
        at = max(at, wallet.updated_at) if wallet.updated_at else at
        grant = wallet.grant_as_of(purchase.id, at)
        if grant is None:
            raise CreditsNotGrantedError(f"the wallet does not hold purchase {purchase.id} yet")
        return grant

    def _change_credit(
        self,
        command: PaymentCommand,
        decide: Callable[[CreditPurchase, CreditWallet, CommandContext], None],
    ) -> Outcome:
        """A command that changes a purchase and its customer's wallet in one transaction (void,
        invoice, failure, refund): decided under the wallet's lock, on the store's state when a
        cached one refuses, and again from the store when someone wrote first.

        It shares the wallet with consumptions, so it gets their retry budget and back-off: a
        payment failure reported for a customer who is spending credit right now must not run
        out of attempts against consumptions that each take their turn."""
        fingerprint = command.fingerprint()
        key = command.idempotency_key
        fresh = False
        for attempt in range(self.max_attempts * WALLET_ATTEMPTS_FACTOR):
            _back_off(attempt if fresh else 0)
            found = self._purchase_for(command, fingerprint, fresh=fresh)
            if isinstance(found, Outcome):
                return found
            purchase = found
            intent = purchase.intent
            wallet_id = wallet_id_for(intent.namespace, intent.customer_id, intent.currency)
            context = CommandContext(
                at=self.clock.now(),
                idempotency_key=key,
                request_fingerprint=fingerprint,
                external_reference=command.external_reference,
            )
            with self._wallet_locks.of(wallet_id):
                wallet = self._wallet(
                    wallet_id, intent.namespace, intent.customer_id, intent.currency, fresh=fresh
                )
                try:
                    decide(purchase, wallet, context)
                except CreditStateError:
                    # A cached wallet may lag the store (another process granted, spent or
                    # voided): only the store's own state may refuse.
                    if not fresh:
                        fresh = True
                        continue
                    if not purchase.has_pending_events:
                        self._cache.checkin(purchase)
                    raise
                except LedgerError:
                    if not purchase.has_pending_events:
                        self._cache.checkin(purchase)
                    if not wallet.has_pending_events:
                        self._wallets.checkin(wallet)
                    raise
                position = self._commit(purchase, wallet)
                if position is not False:
                    self._cache.checkin(purchase)
                    self._wallets.checkin(wallet)
                    return Outcome(
                        PurchaseView.of(purchase, wallet.grants.get(purchase.id)),
                        position=position,
                    )
            fresh = True
        raise ConcurrentModificationError(
            f"purchase {command.purchase_id} kept changing; try again"
        )

    def consume(self, command: ConsumeCredits) -> ConsumptionOutcome:
        """Spend credit from the customer's grants in burn-down order (or replay an earlier
        answer); ``insufficient_credit`` when the spendable total is short.

        With group commit, a decision is made on top of the wallet's decisions already handed to
        the committer and not yet written (its *pending run*), and the wallet's lock is released
        before the write: consecutive consumptions of a hot customer share a transaction as
        versions n+1, n+2... instead of one transaction each (docs/credit-lifecycle-design.md,
        section 4). Only a new decision is made on a pending state: a replay or a refusal waits
        for the run to be written and is answered from the store, so no answer rests on
        something that may not commit.
        """
        fingerprint = command.fingerprint()
        key = command.idempotency_key
        request = command.request()
        wallet_id = wallet_id_for(request.namespace, request.customer_id, request.currency)
        consumption_id = consumption_id_for_key(wallet_id, key) if key else self._new_id()
        fresh = False
        for attempt in range(self.max_attempts * WALLET_ATTEMPTS_FACTOR):
            _back_off(attempt if fresh else 0)
            # One decision at a time per wallet in this process: callers of a hot customer queue
            # here instead of colliding on the wallet's next version and deciding again.
            with self._wallet_locks.of(wallet_id):
                run = self._pending.get(wallet_id)
                after: Submission | None = None
                if run is not None and not fresh and not run.broken:
                    wallet, after = run.wallet, run.last
                else:
                    wallet = self._wallet(
                        wallet_id,
                        request.namespace,
                        request.customer_id,
                        request.currency,
                        fresh=fresh,
                    )
                if key is not None and key in wallet.consumptions:
                    if after is not None:
                        # Perhaps not written yet: answered from the store once the run is.
                        fresh = True
                        continue
                    return self._replay_consumption(wallet, key, fingerprint)
                context = WalletContext(
                    at=self.clock.now(), idempotency_key=key, request_fingerprint=fingerprint
                )
                try:
                    consumed = wallet.consume(consumption_id, request, context)
                except CreditStateError:
                    if not fresh:
                        # Refused on a cached or pending wallet, which may lag the store or not
                        # commit: ask the store (a refusal records nothing, so a pending run's
                        # wallet is as it was).
                        fresh = True
                        continue
                    self._wallets.checkin(wallet)
                    raise
                except LedgerError:
                    if after is None and not wallet.has_pending_events:
                        self._wallets.checkin(wallet)
                    raise
                if self._committer is None:
                    position = self._commit_wallet(wallet)
                    if position is not False:
                        self._wallets.checkin(wallet)
                        return ConsumptionOutcome(ConsumptionView.of(consumed), position=position)
                    fresh = True
                    continue
                submission = self._committer.enqueue(wallet.collect_events(), after)
                run = run if after is not None and run is not None else _PendingRun(wallet)
                run.last = submission
                self._pending[wallet_id] = run
            position = self._complete_pending(wallet_id, run, submission)
            if position is not False:
                return ConsumptionOutcome(ConsumptionView.of(consumed), position=position)
            fresh = True
        raise ConcurrentModificationError(
            f"the credit of customer {request.customer_id} kept changing; try again"
        )

    def _replay_consumption(
        self, wallet: CreditWallet, key: str, fingerprint: str
    ) -> ConsumptionOutcome:
        """The first answer to a consumption with this key, from a committed wallet."""
        self._wallets.checkin(wallet)
        record = wallet.consumptions[key]
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReusedError(
                f"idempotency key {key!r} was used for a different request"
            )
        return ConsumptionOutcome(ConsumptionView.of(record.event), replayed=True)

    def _complete_pending(
        self, wallet_id: UUID, run: _PendingRun, submission: Submission
    ) -> int | Literal[False] | None:
        """Wait (or lead) until the wallet's submission is written; then, if it was the run's
        last, the run's wallet is committed and goes back to the cache. A failed run is dropped:
        whoever decides next reads the store (and every later submission of the run fails)."""
        position: int | Literal[False] | None = False
        try:
            position = self._finish(submission)
        finally:
            with self._wallet_locks.of(wallet_id):
                if self._pending.get(wallet_id) is run:
                    if position is False:
                        del self._pending[wallet_id]
                    elif run.last is submission:
                        del self._pending[wallet_id]
                        self._wallets.checkin(run.wallet)
                        self._confirmations.confirm(wallet_id)
        return position

    def _drain(self, wallet_id: UUID) -> CreditWallet | None:
        """Called under the wallet's lock: wait until its pending run is written, end the run,
        and return its wallet if all of it committed (None if there was no run, or it failed)."""
        run = self._pending.pop(wallet_id, None)
        if run is None or self._committer is None:
            return None
        # The run's callers complete their submissions without this lock, so this wait ends.
        self._committer.wait_settled(run.last)
        return run.wallet if run.last.succeeded else None

    def expire_due(
        self, namespace: str, customer_id: str, currency: str, at: datetime | None = None
    ) -> list[GrantExpired]:
        """Record the expiry of every grant of the customer's wallet due by now (or ``at``).

        Idempotent: a wallet with nothing due records nothing, so two sweeps (or a sweep and a
        consumption, which expires first too) write each expiry once.
        """
        wallet_id = wallet_id_for(namespace, customer_id, currency)
        fresh = False
        for _ in range(self.max_attempts):
            with self._wallet_locks.of(wallet_id):
                wallet = self._wallet(wallet_id, namespace, customer_id, currency, fresh=fresh)
                moment = at or self.clock.now()
                expired = wallet.expire_due(moment)
                if not expired:
                    self._wallets.checkin(wallet)
                    return []
                if self._commit_wallet(wallet) is not False:
                    self._wallets.checkin(wallet)
                    return expired
            fresh = True
        raise ConcurrentModificationError(
            f"the credit of customer {customer_id} kept changing; try again"
        )

    def _wallet(
        self,
        wallet_id: UUID,
        namespace: str,
        customer_id: str,
        currency: str,
        *,
        fresh: bool,
        guess_new: bool = False,
    ) -> CreditWallet:
        """The wallet to decide on, checked out: cached, or (``fresh``) read from the store.

        A pending run of the wallet (consumptions handed to the committer, not yet written) is
        waited for first: other commands decide on committed state only.

        With ``guess_new`` a wallet this process has not seen is taken to be new rather than
        read: adding a grant does not depend on the wallet's state, and if the guess is wrong the
        write is refused on version 1 and the caller decides again with ``fresh``.
        """
        drained = self._drain(wallet_id)
        if not fresh:
            cached = drained or self._wallets.checkout(wallet_id)
            if cached is not None:
                return cached
            if guess_new:
                return CreditWallet(wallet_id, namespace, customer_id, currency)
        found = self._find_wallet(wallet_id)
        return found or CreditWallet(wallet_id, namespace, customer_id, currency)

    def _find_wallet(self, wallet_id: UUID) -> CreditWallet | None:
        found = project_wallet(None, self._wallet_events(wallet_id))
        self._confirmations.confirm(wallet_id)
        return found

    def _wallet_events(
        self,
        wallet_id: UUID,
        *,
        after: int | None = None,
        upto: int | None = None,
        limit: int | None = None,
    ) -> list[WalletEvent]:
        """The wallet's events after version ``after``, up to ``upto``, at most ``limit``."""
        try:
            events = list(self.events.get(wallet_id, gt=after, lte=upto, limit=limit))
        except PersistenceError as error:
            raise StoreUnavailableError(f"the store could not be read: {error}") from error
        return [event for event in events if isinstance(event, WalletEventBase)]  # type: ignore[misc]

    def _commit_wallet(self, wallet: CreditWallet) -> int | Literal[False] | None:
        try:
            position = self._write(list(wallet.collect_events()))
        except StoreUnavailableError as error:
            self.write_health.failed(error.detail)
            raise
        self.write_health.succeeded()
        if position is not False:
            self._confirmations.confirm(wallet.id)
        return position

    def _commit(
        self, purchase: CreditPurchase, wallet: CreditWallet | None = None
    ) -> int | Literal[False] | None:
        """Save the purchase's new events atomically: the log position of the last one (None if
        the store does not say), or False if someone wrote first.

        With group commit on, the events share a transaction with other callers' events, and
        this returns only once that transaction committed.
        """
        events: list[LedgerEvent] = list(purchase.collect_events())
        if wallet is not None:
            events += wallet.collect_events()
        try:
            position = self._write(events)
        except StoreUnavailableError as error:
            self.write_health.failed(error.detail)
            raise
        self.write_health.succeeded()
        if wallet is not None and position is not False:
            self._confirmations.confirm(wallet.id)
        return position

    def _finish(self, submission: Submission) -> int | Literal[False] | None:
        """A queued wallet submission, completed: as ``_write``, with write health recorded."""
        committer = self._committer
        if committer is None:  # pragma: no cover - only queued with a committer
            msg = "no group committer"
            raise RuntimeError(msg)
        try:
            position = self._outcome(submission.events, lambda: committer.complete(submission))
        except StoreUnavailableError as error:
            self.write_health.failed(error.detail)
            raise
        self.write_health.succeeded()
        return position

    def _write(self, events: list[LedgerEvent]) -> int | Literal[False] | None:
        committer = self._committer
        if committer is None:
            # Straight to the event store: Application.save() would only re-collect the same
            # events through runtime protocol checks that cost more than a memory write.
            return self._outcome(events, lambda: last_position(self.events.put(events)))
        return self._outcome(events, lambda: committer.submit(events))

    def _outcome(
        self, events: Sequence[LedgerEvent], write: Callable[[], int | None]
    ) -> int | Literal[False] | None:
        """The write's log position, False if someone wrote first (decide again), or
        ``StoreUnavailableError``."""
        try:
            return write()
        except RetryDecisionError:
            return False
        except IntegrityError as error:
            if self._versions_taken(events):
                return False
            # Nobody holds that version: the store refused the write for another reason (a
            # constraint or trigger). Retrying would only fail again.
            raise StoreUnavailableError(f"the store refused the write: {error}") from error
        except PersistenceError as error:
            raise StoreUnavailableError(f"the store refused the write: {error}") from error

    def _versions_taken(self, events: Sequence[LedgerEvent]) -> bool:
        """Whether a stored event already holds the first new version of any aggregate the
        events write (a purchase, a wallet): then someone else wrote first."""
        firsts: dict[UUID, LedgerEvent] = {}
        for event in events:
            firsts.setdefault(event.originator_id, event)
        return any(self._version_taken(event) for event in firsts.values())

    def _version_taken(self, event: LedgerEvent) -> bool:
        """Whether a stored event already holds this event's (aggregate, version) slot."""
        try:
            taken = self.recorder.select_events(
                event.originator_id,
                gt=event.originator_version - 1,
                lte=event.originator_version,
                limit=1,
            )
        except PersistenceError as error:
            # The write was refused and the store cannot say why: neither "someone else wrote
            # first" nor "refused" can be told apart, so the caller hears the store is away (a
            # retry with the same idempotency key is safe either way).
            raise StoreUnavailableError(f"the store could not be read: {error}") from error
        return bool(taken)

    def _replay(self, purchase: CreditPurchase, key: str, fingerprint: str) -> Outcome:
        self._cache.checkin(purchase)
        stored_fingerprint, version = purchase.commands[key]
        if stored_fingerprint != fingerprint:
            raise IdempotencyKeyReusedError(
                f"idempotency key {key!r} was used for a different request"
            )
        if version != purchase.version:
            events = self._events(purchase.id)[:version]
            return Outcome(self._view(self._fold(events), events[-1].timestamp), replayed=True)
        # The first answer: the purchase's credit as it stood when the command was answered.
        return Outcome(self._view(purchase, purchase.updated_at), replayed=True)

    # -- queries ------------------------------------------------------------------------------

    def get_purchase(
        self,
        namespace: str,
        purchase_id: UUID,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> PurchaseView:
        """The purchase now, at a version, or as it stood at a time (inclusive)."""
        if version is None and as_of is None:
            return self._view(self._load(namespace, purchase_id))
        events = self.purchase_events(namespace, purchase_id, version=version)
        if as_of is not None:
            if as_of.tzinfo is None or as_of.utcoffset() is None:
                raise ValidationFailedError(
                    [FieldError("as_of", "timezone_required", "must include a timezone")]
                )
            events = [event for event in events if event.timestamp <= as_of]
            if not events:
                raise CreditPurchaseNotFoundError(
                    f"purchase {purchase_id} did not exist at {as_of.isoformat()}"
                )
        moment = as_of if as_of is not None else events[-1].timestamp
        return self._view(self._fold(events), moment)

    def customer_credits(
        self, namespace: str, customer_id: str, currency: str, *, as_of: datetime | None = None
    ) -> CreditsView:
        """The customer's spendable grants in one currency, in burn-down order, now or as of a
        time (an expiry due by then counts, recorded or not)."""
        moment = self._credit_query(namespace, customer_id, currency, as_of)
        if as_of is None:
            grants = self._grants_now(namespace, customer_id, currency, moment, spendable=True)
        else:
            grants = self._grants_as_of(namespace, customer_id, currency, moment)
        spendable = sorted(
            (g for g in grants.values() if g.remaining > 0 and not g.closed and not g.due(moment)),
            key=Grant.burn_down_key,
        )
        return CreditsView(
            namespace=namespace,
            customer_id=customer_id,
            currency=currency,
            as_of=moment,
            balance=round_money(sum((g.remaining for g in spendable), Decimal(0)), currency),
            grants=[GrantView.of(g) for g in spendable],
        )

    def credit_history(
        self,
        namespace: str,
        customer_id: str,
        currency: str,
        *,
        after: int = 0,
        limit: int | None = None,
        as_of: datetime | None = None,
    ) -> list[CreditEntry]:
        """Every change to the customer's credit in one currency, in recorded order (entries
        numbered from 1), with the balance before and after each; ``as_of`` keeps the entries
        recorded by then."""
        moment = self._credit_query(namespace, customer_id, currency, as_of)
        return self._credit_history.page(
            wallet_id_for(namespace, customer_id, currency),
            after=after,
            limit=limit,
            as_of=None if as_of is None else moment,
        )

    def _grants_as_of(
        self, namespace: str, customer_id: str, currency: str, moment: datetime
    ) -> dict[UUID, Grant]:
        events = self._wallet_events(wallet_id_for(namespace, customer_id, currency))
        wallet = project_wallet(None, [event for event in events if event.timestamp <= moment])
        return wallet.grants_as_of(moment) if wallet is not None else {}

    def _grants_now(
        self,
        namespace: str,
        customer_id: str,
        currency: str,
        now: datetime,
        *,
        only: UUID | None = None,
        spendable: bool = False,
    ) -> dict[UUID, Grant]:
        """Every grant of the wallet as the store holds it ``now``, what ``_grants_as_of``
        gives; ``only``: just that purchase's, if any; ``spendable``: at least every grant
        still spendable now (the open ones, read as they stand: exhausted and closed grants
        have left them, and a due one is not spendable either way).

        A query reads the store, but not the wallet's whole history each time: that grew with
        the customer's history (85 ms for a customer of 2,000 purchases and consumptions, on
        every GET of one of its purchases). The wallet this process holds is brought up to date
        with the events the store has after it (one read, usually empty: the fold of a prefix
        and then of the rest is the fold of the whole) and kept for the next query. Folded from
        the history instead when there is none, when one is being decided on (its events not
        yet written), or when the clock stands before its last event (``now`` then keeps fewer
        events than the wallet holds).
        """
        wallet_id = wallet_id_for(namespace, customer_id, currency)
        with self._wallet_locks.of(wallet_id):
            held = (
                None
                if wallet_id in self._pending
                else self._held_grants(wallet_id, now, only=only, spendable=spendable)
            )
        if held is not None:
            return held
        # The history's fold runs outside the lock: commands on the wallet need not wait for it.
        return self._grants_as_of(namespace, customer_id, currency, now)

    def _held_grants(
        self, wallet_id: UUID, now: datetime, *, only: UUID | None, spendable: bool
    ) -> dict[UUID, Grant] | None:
        """``_grants_now``'s answer from the held wallet brought up to date (under the wallet's
        lock); None when the clock stands before its last event."""
        wallet = self._wallets.checkout(wallet_id)
        if wallet is None:
            wallet = project_wallet(None, self._wallet_events(wallet_id))
            if wallet is None:
                return {}
        # Folded into the copy this query owns; a tail that does not replay leaves the cache
        # without it (the next reader folds the history and meets the same refusal).
        for event in self._wallet_events(wallet_id, after=wallet.version):
            wallet.apply(event)
        self._confirmations.confirm(wallet_id)
        try:
            if wallet.updated_at is not None and wallet.updated_at > now:
                return None
            # Read before the wallet goes back: a command may check it out and change it.
            if spendable:
                return {grant.purchase_id: grant for grant in wallet.open_grants()}
            if only is None:
                return wallet.grants_as_of(now)
            grant = wallet.grant_as_of(only, now)
            return {only: grant} if grant is not None else {}
        finally:
            self._wallets.checkin(wallet)

    def _credit_query(
        self, namespace: str, customer_id: str, currency: str, as_of: datetime | None
    ) -> datetime:
        """The moment a credit query asks about; every problem of its arguments at once (a
        customer or currency no wallet can have is the caller's mistake, not an empty answer)."""
        problems = identity_problems(namespace, customer_id, None)
        bad_currency = currency_problem(currency, "currency")
        if bad_currency is not None:
            problems.append(bad_currency)
        if as_of is not None and (as_of.tzinfo is None or as_of.utcoffset() is None):
            problems.append(FieldError("as_of", "timezone_required", "must include a timezone"))
        if problems:
            raise ValidationFailedError(problems)
        return self._moment(as_of)

    def _moment(self, as_of: datetime | None) -> datetime:
        if as_of is None:
            return self.clock.now()
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            raise ValidationFailedError(
                [FieldError("as_of", "timezone_required", "must include a timezone")]
            )
        return as_of

    def _view(
        self, purchase: CreditPurchase, moment: datetime | None = None, *, answer: bool = False
    ) -> PurchaseView:
        """The purchase with its credit amounts from its wallet, now or as of ``moment``.

        A command's ``answer`` may take them from the wallet this process holds (the write path
        stays free of a history read); a query always reads the store, so that what it shows is
        what the log says.
        """
        intent = purchase.intent
        if moment is None and answer:
            now = self.clock.now()
            known, grant = self._current_grant(purchase, now)
            if known:
                return PurchaseView.of(purchase, grant)
            moment = now
        routing = (intent.namespace, intent.customer_id, intent.currency)
        if moment is None:
            grants = self._grants_now(*routing, self.clock.now(), only=purchase.id)
        else:
            grants = self._grants_as_of(*routing, moment)
        return PurchaseView.of(purchase, grants.get(purchase.id))

    def _current_grant(self, purchase: CreditPurchase, now: datetime) -> tuple[bool, Grant | None]:
        """The purchase's grant now, from the wallet this process holds when it wrote or read it
        within ``ANSWER_CONFIRMATION_SECONDS`` or the store has nothing newer (one probe for a
        later version instead of reading and folding the wallet's history). ``(False, None)``
        when that cannot be told: no cached wallet, one being decided on, or a clock that stands
        before its last event."""
        intent = purchase.intent
        wallet_id = wallet_id_for(intent.namespace, intent.customer_id, intent.currency)
        with self._wallet_locks.of(wallet_id):
            if wallet_id in self._pending:
                return False, None
            wallet = self._wallets.checkout(wallet_id)
            if wallet is None:
                return False, None
            try:
                if wallet.updated_at is not None and wallet.updated_at > now:
                    return False, None
                age = self._confirmations.age(wallet_id)
                if age is None or age > ANSWER_CONFIRMATION_SECONDS:
                    if self._has_events_after(wallet_id, wallet.version):
                        return False, None
                    self._confirmations.confirm(wallet_id)
                return True, wallet.grant_as_of(purchase.id, now)
            finally:
                self._wallets.checkin(wallet)

    def _has_events_after(self, aggregate_id: UUID, version: int) -> bool:
        try:
            return bool(self.recorder.select_events(aggregate_id, gt=version, limit=1))
        except PersistenceError as error:
            raise StoreUnavailableError(f"the store could not be read: {error}") from error

    def purchase_events(
        self, namespace: str, purchase_id: UUID, *, version: int | None = None
    ) -> list[PurchaseEvent]:
        """The purchase's own events, oldest first, up to ``version`` (default: all), read as
        ``get_purchase`` reads them; its wallet is not read (see ``get_purchase`` for the credit
        amounts it holds)."""
        events = self._namespaced_events(namespace, purchase_id)
        if version is None:
            return events
        if version < 1 or version > len(events):
            raise CreditPurchaseNotFoundError(f"purchase {purchase_id} has no version {version}")
        return events[:version]

    def purchase_history(self, namespace: str, purchase_id: UUID) -> list[HistoryEntry]:
        """Every event of the purchase, oldest first, each with the status it left behind."""
        return history_of(self._namespaced_events(namespace, purchase_id))

    def head_position(self) -> int:
        """The log position of the last event written (0 while the log is empty).

        A reader that reaches it has seen every write acknowledged so far; it raises
        ``StoreUnavailableError`` when the store cannot be read.
        """
        try:
            return self.recorder.max_notification_id() or 0
        except PersistenceError as error:
            raise StoreUnavailableError(f"the store could not be read: {error}") from error

    # -- loading ------------------------------------------------------------------------------

    def _find(self, purchase_id: UUID) -> CreditPurchase | None:
        try:
            return cast(
                CreditPurchase,
                self.repository.get(purchase_id, projector_func=_project),
            )
        except AggregateNotFoundError:
            return None
        except PersistenceError as error:
            raise StoreUnavailableError(f"the store could not be read: {error}") from error

    def _load(self, namespace: str, purchase_id: UUID) -> CreditPurchase:
        purchase = self._find(purchase_id)
        # Another tenant's purchase is indistinguishable from a missing one: ids do not leak.
        if purchase is None or purchase.intent.namespace != namespace:
            raise CreditPurchaseNotFoundError(f"credit purchase {purchase_id} not found")
        return purchase

    def _events(self, purchase_id: UUID) -> list[PurchaseEvent]:
        try:
            return cast(list[PurchaseEvent], list(self.events.get(purchase_id)))
        except PersistenceError as error:
            raise StoreUnavailableError(f"the store could not be read: {error}") from error

    def _namespaced_events(self, namespace: str, purchase_id: UUID) -> list[PurchaseEvent]:
        events = self._events(purchase_id)
        first = events[0] if events else None
        if first is None or getattr(first, "namespace", None) != namespace:
            raise CreditPurchaseNotFoundError(f"credit purchase {purchase_id} not found")
        return events

    @staticmethod
    def _fold(events: list[PurchaseEvent]) -> CreditPurchase:
        purchase = project_purchase(None, events)
        if purchase is None:  # pragma: no cover - callers pass at least one event
            msg = "no events to fold"
            raise CreditPurchaseNotFoundError(msg)
        return purchase


def _back_off(attempt: int) -> None:
    """After another process wrote a wallet first: wait a little, at random, so that processes
    spending one hot customer's credit take turns instead of colliding again."""
    if attempt:
        time.sleep(random.uniform(0, 0.001 * 2 ** min(attempt, 6)))  # noqa: S311 - not crypto


def _project(purchase: Any, events: Any) -> Any:
    # The repository's projector signature is generic; ours folds purchase events.
    return project_purchase(purchase, events)
