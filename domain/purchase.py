"""The CreditPurchase aggregate: state derived only from events; commands that follow the rules.

A command method looks up its row in the transition table, raises the row's typed error, or
records the row's events in order. ``apply`` is the only place state changes; it guards again
(defence in depth) so that no sequence of events, recorded or replayed, can authorize twice,
settle twice, or settle what was never authorized.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import assert_never
from uuid import UUID

from creditledger.domain.aggregate import Aggregate
from creditledger.domain.errors import (
    STATE_ERRORS,
    CannotSettleNotAuthorizedPaymentError,
    EventSequenceError,
    InvalidTransitionError,
    NothingToVoidError,
    PaymentAlreadyAuthorizedError,
    PaymentAlreadySettledError,
    ValidationFailedError,
)
from creditledger.domain.events import (
    Initiated,
    PaymentAuthorized,
    PaymentSettled,
    PurchaseEvent,
    PurchaseVoided,
)
from creditledger.domain.identity import LedgerStep, transaction_group_id
from creditledger.domain.intent import PurchaseIntent, intent_problems
from creditledger.domain.money import payment_amount
from creditledger.domain.rules import Rule, initiation_plan, rule_for, status_after
from creditledger.domain.status import (
    Command,
    EventType,
    PaymentStatus,
    PurchaseStatus,
    SettlementType,
)


@dataclass(frozen=True)
class LedgerReference:
    """A ledger transaction group written at a point in time."""

    transaction_group_id: UUID
    at: datetime
    external_reference: str | None = None


@dataclass(frozen=True)
class ExternalPayment:
    """The external payment realization: authorized, then settled."""

    status: PaymentStatus
    amount: Decimal
    authorized: LedgerReference
    settled: LedgerReference | None = None


@dataclass(frozen=True)
class CommandContext:
    """Who asked and when: the same for every event one command records."""

    at: datetime
    idempotency_key: str | None = None
    request_fingerprint: str | None = None
    external_reference: str | None = None


class CreditPurchase(Aggregate[PurchaseEvent]):
    """One customer's purchase of prepaid credit, and what has happened to it since."""

    def __init__(self, purchase_id: UUID) -> None:
        super().__init__(purchase_id)
        self.initiated: Initiated | None = None
        self.status: PurchaseStatus | None = None
        self.payment: ExternalPayment | None = None
        self._payment_amount: Decimal | None = None
        self.created_at: datetime | None = None
        self.updated_at: datetime | None = None
        self.voided: PurchaseVoided | None = None
        # idempotency key -> (request fingerprint, version after that command)
        self.commands: dict[str, tuple[str | None, int]] = {}

    # -- what it is -------------------------------------------------------------------------

    @property
    def intent(self) -> Initiated:
        """The initiation facts; a purchase object only exists once it has been initiated."""
        if self.initiated is None:
            raise EventSequenceError("purchase has no Initiated event")
        return self.initiated

    @property
    def settlement_type(self) -> SettlementType:
        return self.intent.settlement_type

    @property
    def payment_amount(self) -> Decimal | None:
        """What the customer pays, or None for promotional credit (computed once, at initiation)."""
        self.intent  # noqa: B018 - raises for a purchase that was never initiated
        return self._payment_amount

    # -- commands -----------------------------------------------------------------------------

    @classmethod
    def initiate(
        cls, purchase_id: UUID, intent: PurchaseIntent, context: CommandContext
    ) -> CreditPurchase:
        """Grant the credits; for an external purchase, then act on its initial payment status."""
        problems = intent_problems(intent, context.at)
        if problems:
            raise ValidationFailedError(problems)
        purchase = cls(purchase_id)
        for rule in initiation_plan(intent.settlement_type, intent.initial_payment_status):
            purchase._follow(rule, context, intent)
        return purchase

    def authorize_payment(self, context: CommandContext) -> None:
        self._follow(rule_for(self.settlement_type, self.status, Command.AUTHORIZE), context)

    def settle_payment(self, context: CommandContext) -> None:
        self._follow(rule_for(self.settlement_type, self.status, Command.SETTLE), context)

    def void(self, amount: Decimal, context: CommandContext, reason: str | None = None) -> None:
        """Record that ``amount`` (what remained of the grant, as its wallet says) is forfeited."""
        rule = rule_for(self.settlement_type, self.status, Command.VOID)
        if rule.error is None and self.voided is not None:
            raise NothingToVoidError(f"purchase {self._id} is already voided")
        if rule.error is None and amount <= 0:
            raise NothingToVoidError(f"nothing remains of the credit of purchase {self._id}")
        self._follow(rule, context, void=(amount, reason))

    def _follow(
        self,
        rule: Rule,
        context: CommandContext,
        intent: PurchaseIntent | None = None,
        void: tuple[Decimal, str | None] | None = None,
    ) -> None:
        if rule.error is not None:
            status = self.status.value if self.status else "none"
            raise STATE_ERRORS[rule.error](
                f"cannot {rule.command.value} {rule.settlement.value} purchase in status "
                f"{status} [id={self._id}]"
            )
        for event_type in rule.events:
            self._record(self._new_event(event_type, context, intent, void))

    def _new_event(
        self,
        event_type: EventType,
        context: CommandContext,
        intent: PurchaseIntent | None,
        void: tuple[Decimal, str | None] | None = None,
    ) -> PurchaseEvent:
        # Event time never runs backwards within one purchase, whatever the clock does, so
        # "state as of T" is always a prefix of the history.
        at = max(context.at, self.updated_at) if self.updated_at else context.at
        common = {
            "originator_id": self._id,
            "originator_version": self._version + 1,
            "timestamp": at,
            "idempotency_key": context.idempotency_key,
            "request_fingerprint": context.request_fingerprint,
        }
        if event_type is EventType.INITIATED:
            if intent is None:  # pragma: no cover - the rules only initiate from initiate()
                raise InvalidTransitionError("initiation needs an intent")
            return Initiated(
                **common,
                **dict(intent),
                credit_grant_transaction_group_id=transaction_group_id(
                    self._id, LedgerStep.CREDIT_GRANT
                ),
                granted_at=at,
            )
        if event_type is EventType.PAYMENT_AUTHORIZED:
            amount = self.payment_amount
            if amount is None:
                raise InvalidTransitionError("promotional purchases have no payment")
            return PaymentAuthorized(
                **common,
                amount=amount,
                transaction_group_id=transaction_group_id(
                    self._id, LedgerStep.PAYMENT_AUTHORIZATION
                ),
                at=at,
                external_reference=context.external_reference,
            )
        if event_type is EventType.PURCHASE_VOIDED:
            if void is None:  # pragma: no cover - the rules only void from void()
                raise InvalidTransitionError("a void needs its amount")
            return PurchaseVoided(
                **common,
                amount=void[0],
                reason=void[1],
                transaction_group_id=transaction_group_id(self._id, LedgerStep.VOID),
                at=at,
            )
        return PaymentSettled(
            **common,
            transaction_group_id=transaction_group_id(self._id, LedgerStep.PAYMENT_SETTLEMENT),
            at=at,
            external_reference=context.external_reference,
        )

    def _record(self, event: PurchaseEvent) -> None:
        self.apply(event)
        self._pending.append(event)

    # -- applying events: the only place state changes ---------------------------------------

    def apply(self, event: PurchaseEvent) -> None:
        if event.originator_id != self._id or event.originator_version != self._version + 1:
            raise EventSequenceError(
                f"event v{event.originator_version} of {event.originator_id} does not follow "
                f"v{self._version} of {self._id}"
            )
        match event:
            case Initiated():
                self._apply_initiated(event)
            case PaymentAuthorized():
                self._apply_authorized(event)
            case PaymentSettled():
                self._apply_settled(event)
            case PurchaseVoided():
                self._apply_voided(event)
            case _:
                assert_never(event)
        if self.initiated is None:  # pragma: no cover - _apply_initiated always sets it
            raise EventSequenceError("purchase has no Initiated event")
        self.status = status_after(self.initiated.settlement_type, event.TYPE, self.status)
        self._version = event.originator_version
        self.updated_at = event.timestamp
        if event.idempotency_key is not None:
            self.commands[event.idempotency_key] = (event.request_fingerprint, self._version)

    def _apply_initiated(self, event: Initiated) -> None:
        if self.initiated is not None:
            raise EventSequenceError("purchase is already initiated")
        self.initiated = event
        self.created_at = event.timestamp
        if event.cost_basis is not None:
            self._payment_amount = payment_amount(
                event.credit_amount, event.cost_basis, event.currency
            )

    def _apply_authorized(self, event: PaymentAuthorized) -> None:
        if self.settlement_type is not SettlementType.EXTERNAL:
            raise InvalidTransitionError(f"{self.settlement_type.value} purchases have no payment")
        if self.payment is not None:
            raise PaymentAlreadyAuthorizedError(f"payment already authorized [id={self._id}]")
        self.payment = ExternalPayment(
            status=PaymentStatus.AUTHORIZED,
            amount=event.amount,
            authorized=LedgerReference(
                event.transaction_group_id, event.at, event.external_reference
            ),
        )

    def _apply_settled(self, event: PaymentSettled) -> None:
        if self.payment is None:
            raise CannotSettleNotAuthorizedPaymentError(
                f"cannot settle an unauthorized payment [id={self._id}]"
            )
        if self.payment.status is PaymentStatus.SETTLED:
            raise PaymentAlreadySettledError(f"payment already settled [id={self._id}]")
        self.payment = ExternalPayment(
            status=PaymentStatus.SETTLED,
            amount=self.payment.amount,
            authorized=self.payment.authorized,
            settled=LedgerReference(event.transaction_group_id, event.at, event.external_reference),
        )

    def _apply_voided(self, event: PurchaseVoided) -> None:
        if self.voided is not None:
            raise NothingToVoidError(f"purchase {self._id} is already voided")
        if event.amount <= 0 or event.amount > self.intent.credit_amount:
            raise NothingToVoidError(f"a void of {event.amount} does not fit purchase {self._id}")
        self.voided = event


def project_purchase(
    purchase: CreditPurchase | None, events: Iterable[PurchaseEvent]
) -> CreditPurchase | None:
    """Fold events into a purchase: the library's projector function, and the auditor's."""
    for event in events:
        if purchase is None:
            purchase = CreditPurchase(event.originator_id)
        purchase.apply(event)
    return purchase
