"""The CreditPurchase aggregate: state derived only from events; commands that follow the rules.

A command method looks up its row in the transition table, raises the row's typed error, or
records the row's events in order. ``apply`` is the only place state changes; it guards again
(defence in depth) so that no sequence of events, recorded or replayed, can authorize twice,
settle twice, or settle what was never authorized.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar, assert_never
from uuid import UUID

from creditledger.domain.aggregate import Aggregate
from creditledger.domain.errors import (
    STATE_ERRORS,
    CannotSettleNotAuthorizedPaymentError,
    EventSequenceError,
    FieldError,
    InvalidTransitionError,
    NothingToRefundError,
    NothingToVoidError,
    PaymentAlreadyAuthorizedError,
    PaymentAlreadyFailedError,
    PaymentAlreadySettledError,
    PaymentNotSettledError,
    RefundExceedsRemainingError,
    ValidationFailedError,
)
from creditledger.domain.events import (
    Initiated,
    InvoiceCreated,
    PaymentAuthorized,
    PaymentFailed,
    PaymentRefunded,
    PaymentSettled,
    PurchaseEvent,
    PurchaseVoided,
)
from creditledger.domain.identity import LedgerStep, refund_group_id, transaction_group_id
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

_T = TypeVar("_T")


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
class InvoiceReference:
    """The invoice that bills an invoice purchase: one invoice, one line, never changed."""

    invoice_id: str
    line_id: str
    created_at: datetime


@dataclass(frozen=True)
class GrantOutcome:
    """What became of a purchase's granted credit, as its wallet says at one moment: the facts a
    payment failure records (everything not consumed is no longer the customer's)."""

    consumed: Decimal
    forfeited: Decimal
    """Expired or voided before the failure."""
    remaining: Decimal


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
        self.invoice: InvoiceReference | None = None
        self.granted: tuple[UUID, datetime] | None = None
        """The grant's transaction group and time; None until credit is granted (an invoice
        purchase before its invoice exists)."""
        self.failure: PaymentFailed | None = None
        self.refunds: tuple[PaymentRefunded, ...] = ()
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
    def refunded(self) -> Decimal:
        """Credit taken back by refunds so far."""
        return sum((refund.amount for refund in self.refunds), Decimal(0))

    @property
    def refunded_cash(self) -> Decimal:
        """Money returned by refunds so far."""
        return sum((refund.cash_amount for refund in self.refunds), Decimal(0))

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
            purchase._follow(rule, context, intent=intent)
        return purchase

    def authorize_payment(self, context: CommandContext) -> None:
        self._follow(rule_for(self.settlement_type, self.status, Command.AUTHORIZE), context)

    def settle_payment(self, context: CommandContext) -> None:
        self._follow(rule_for(self.settlement_type, self.status, Command.SETTLE), context)

    def create_invoice(self, invoice_id: str, line_id: str, context: CommandContext) -> None:
        """Record the invoice that bills this invoice purchase: its credits are granted now."""
        rule = rule_for(self.settlement_type, self.status, Command.INVOICE_CREATED)
        self._follow(rule, context, invoice=(invoice_id, line_id))

    def fail_payment(
        self, grant: GrantOutcome | None, reason: str, context: CommandContext
    ) -> None:
        """Record that the payment failed. ``grant`` is the credit's state at the failure (None
        when nothing was granted): what remains is revoked, what was consumed stays owed."""
        rule = rule_for(self.settlement_type, self.status, Command.FAIL)
        if rule.error is None and (grant is None) != (self.granted is None):
            raise EventSequenceError(f"the grant of purchase {self._id} is not as its wallet says")
        self._follow(rule, context, failure=(grant, reason))

    def refund(
        self,
        amount: Decimal | None,
        remaining: Decimal,
        context: CommandContext,
        reason: str | None,
    ) -> None:
        """Give back ``amount`` credits of a settled payment (everything that ``remaining`` says
        is unconsumed, when None), with the money they were paid for."""
        rule = rule_for(self.settlement_type, self.status, Command.REFUND)
        if amount is not None and amount <= 0:
            raise ValidationFailedError(
                [FieldError("amount", "amount_not_positive", "must be greater than zero")]
            )
        if rule.error is None:
            if remaining <= 0:
                raise NothingToRefundError(f"nothing remains of the credit of purchase {self._id}")
            if amount is not None and amount > remaining:
                raise RefundExceedsRemainingError(
                    f"a refund of {amount} {self.intent.currency} exceeds the {remaining} that "
                    f"remains unconsumed [id={self._id}]",
                    remaining=str(remaining),
                )
        self._follow(rule, context, refund=(amount if amount is not None else remaining, reason))

    def void(self, amount: Decimal, context: CommandContext, reason: str | None = None) -> None:
        """Record that ``amount`` (what remained of the grant, as its wallet says) is forfeited."""
        rule = rule_for(self.settlement_type, self.status, Command.VOID)
        if rule.error is None and self.voided is not None:
            raise NothingToVoidError(f"purchase {self._id} is already voided")
        if rule.error is None and amount <= 0:
            raise NothingToVoidError(f"nothing remains of the credit of purchase {self._id}")
        self._follow(rule, context, void=(amount, reason))

    def refuse_unless_allowed(self, command: Command) -> None:
        """Raise the transition table's error if it refuses ``command`` in the current status:
        for a caller that must hear the table before asking anyone else (the wallet, say)."""
        self._refuse(rule_for(self.settlement_type, self.status, command))

    def _refuse(self, rule: Rule) -> None:
        if rule.error is not None:
            status = self.status.value if self.status else "none"
            raise STATE_ERRORS[rule.error](
                f"cannot {rule.command.value} {rule.settlement.value} purchase in status "
                f"{status} [id={self._id}]"
            )

    def _follow(self, rule: Rule, context: CommandContext, **facts: Any) -> None:
        self._refuse(rule)
        for event_type in rule.events:
            self._record(self._new_event(event_type, context, _Facts(**facts)))

    def _new_event(
        self, event_type: EventType, context: CommandContext, facts: _Facts
    ) -> PurchaseEvent:
        # Event time never runs backwards within one purchase, whatever the clock does, so
        # "state as of T" is always a prefix of the history.
        at = max(context.at, self.updated_at) if self.updated_at else context.at
        common: dict[str, Any] = {
            "originator_id": self._id,
            "originator_version": self._version + 1,
            "timestamp": at,
            "idempotency_key": context.idempotency_key,
            "request_fingerprint": context.request_fingerprint,
        }
        return self._BUILDERS[event_type](self, common, context, facts)

    def _initiated(self, common: dict[str, Any], _: CommandContext, facts: _Facts) -> Initiated:
        intent = facts.need(facts.intent)
        # An invoice purchase grants when its invoice exists, not now.
        grants_now = intent.settlement_type is not SettlementType.INVOICE
        return Initiated(
            **common,
            **dict(intent),
            credit_grant_transaction_group_id=self._grant_group() if grants_now else None,
            granted_at=common["timestamp"] if grants_now else None,
        )

    def _invoice_created(
        self, common: dict[str, Any], _: CommandContext, facts: _Facts
    ) -> InvoiceCreated:
        invoice_id, line_id = facts.need(facts.invoice)
        return InvoiceCreated(
            **common,
            invoice_id=invoice_id,
            line_id=line_id,
            credit_grant_transaction_group_id=self._grant_group(),
            granted_at=common["timestamp"],
        )

    def _authorized(
        self, common: dict[str, Any], context: CommandContext, _: _Facts
    ) -> PaymentAuthorized:
        amount = self.payment_amount
        if amount is None:
            raise InvalidTransitionError("promotional purchases have no payment")
        return PaymentAuthorized(
            **common,
            amount=amount,
            transaction_group_id=transaction_group_id(self._id, LedgerStep.PAYMENT_AUTHORIZATION),
            at=common["timestamp"],
            external_reference=context.external_reference,
        )

    def _settled(
        self, common: dict[str, Any], context: CommandContext, _: _Facts
    ) -> PaymentSettled:
        return PaymentSettled(
            **common,
            transaction_group_id=transaction_group_id(self._id, LedgerStep.PAYMENT_SETTLEMENT),
            at=common["timestamp"],
            external_reference=context.external_reference,
        )

    def _voided(self, common: dict[str, Any], _: CommandContext, facts: _Facts) -> PurchaseVoided:
        amount, reason = facts.need(facts.void)
        return PurchaseVoided(
            **common,
            amount=amount,
            reason=reason,
            transaction_group_id=transaction_group_id(self._id, LedgerStep.VOID),
            at=common["timestamp"],
        )

    def _failed(
        self, common: dict[str, Any], context: CommandContext, facts: _Facts
    ) -> PaymentFailed:
        grant, reason = facts.need(facts.failure)
        zero = Decimal(0)
        return PaymentFailed(
            **common,
            reason=reason,
            revoked=grant.remaining if grant else zero,
            released=grant.forfeited if grant else zero,
            consumed=grant.consumed if grant else zero,
            reversed_authorization=self.payment.amount if self.payment else None,
            transaction_group_id=transaction_group_id(self._id, LedgerStep.PAYMENT_FAILURE),
            at=common["timestamp"],
            external_reference=context.external_reference,
        )

    def _refunded(
        self, common: dict[str, Any], context: CommandContext, facts: _Facts
    ) -> PaymentRefunded:
        amount, reason = facts.need(facts.refund)
        return PaymentRefunded(
            **common,
            amount=amount,
            cash_amount=self._refund_cash(amount),
            reason=reason,
            transaction_group_id=refund_group_id(self._id, self._version + 1),
            at=common["timestamp"],
            external_reference=context.external_reference,
        )

    _BUILDERS: ClassVar[
        dict[
            EventType,
            Callable[[CreditPurchase, dict[str, Any], CommandContext, _Facts], PurchaseEvent],
        ]
    ] = {
        EventType.INITIATED: _initiated,
        EventType.INVOICE_CREATED: _invoice_created,
        EventType.PAYMENT_AUTHORIZED: _authorized,
        EventType.PAYMENT_SETTLED: _settled,
        EventType.PURCHASE_VOIDED: _voided,
        EventType.PAYMENT_FAILED: _failed,
        EventType.PAYMENT_REFUNDED: _refunded,
    }
    """How each event type is made from a command's context and facts."""

    def _grant_group(self) -> UUID:
        return transaction_group_id(self._id, LedgerStep.CREDIT_GRANT)

    def _refund_cash(self, amount: Decimal) -> Decimal:
        """The money a refund of ``amount`` credits returns: the payment for everything refunded
        so far, rounded once, less what earlier refunds returned. Refunding every credit in any
        number of parts therefore returns exactly the payment, never a cent more or less."""
        basis = self.intent.cost_basis
        if basis is None:  # pragma: no cover - the rules refuse refunds of promotional credit
            raise InvalidTransitionError("promotional purchases have no payment")
        currency = self.intent.currency
        before = self.refunded
        owed_before = payment_amount(before, basis, currency) if before else Decimal(0)
        return payment_amount(before + amount, basis, currency) - owed_before

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
            case InvoiceCreated():
                self._apply_invoice(event)
            case PaymentFailed():
                self._apply_failed(event)
            case PaymentRefunded():
                self._apply_refunded(event)
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
        if event.credit_grant_transaction_group_id is not None and event.granted_at is not None:
            self.granted = (event.credit_grant_transaction_group_id, event.granted_at)
        elif event.settlement_type is not SettlementType.INVOICE:
            raise EventSequenceError(f"{event.settlement_type.value} purchases grant at once")
        if event.cost_basis is not None:
            self._payment_amount = payment_amount(
                event.credit_amount, event.cost_basis, event.currency
            )

    def _apply_authorized(self, event: PaymentAuthorized) -> None:
        if self.settlement_type is SettlementType.PROMOTIONAL:
            raise InvalidTransitionError(f"{self.settlement_type.value} purchases have no payment")
        self._refuse_after_failure()
        if self.granted is None:
            raise InvalidTransitionError(f"purchase {self._id} has no credit granted yet")
        if event.amount != self._payment_amount:
            raise EventSequenceError(f"authorization of {event.amount} is not the payment amount")
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
        self._refuse_after_failure()
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
        self._refuse_after_failure()
        if self.granted is None:
            raise InvalidTransitionError(f"purchase {self._id} has no credit granted yet")
        if self.voided is not None:
            raise NothingToVoidError(f"purchase {self._id} is already voided")
        if event.amount <= 0 or event.amount > self.intent.credit_amount:
            raise NothingToVoidError(f"a void of {event.amount} does not fit purchase {self._id}")
        self.voided = event

    def _apply_invoice(self, event: InvoiceCreated) -> None:
        if self.settlement_type is not SettlementType.INVOICE:
            raise InvalidTransitionError(f"{self.settlement_type.value} purchases have no invoice")
        self._refuse_after_failure()
        if self.invoice is not None or self.granted is not None:
            raise EventSequenceError(f"purchase {self._id} already has its invoice")
        self.invoice = InvoiceReference(event.invoice_id, event.line_id, event.timestamp)
        self.granted = (event.credit_grant_transaction_group_id, event.granted_at)

    def _apply_failed(self, event: PaymentFailed) -> None:
        if self.settlement_type is SettlementType.PROMOTIONAL:
            raise InvalidTransitionError("promotional purchases have no payment")
        self._refuse_after_failure()
        if self.payment is not None and self.payment.status is PaymentStatus.SETTLED:
            raise PaymentAlreadySettledError(f"payment already settled [id={self._id}]")
        authorized = self.payment.amount if self.payment is not None else None
        granted = self.intent.credit_amount if self.granted is not None else Decimal(0)
        amounts = (event.revoked, event.released, event.consumed)
        if (
            event.reversed_authorization != authorized
            or any(amount < 0 for amount in amounts)
            or sum(amounts) != granted
        ):
            raise EventSequenceError(f"the failure of purchase {self._id} does not add up")
        self.failure = event
        if self.payment is not None:
            self.payment = replace(self.payment, status=PaymentStatus.FAILED)

    def _apply_refunded(self, event: PaymentRefunded) -> None:
        self._refuse_after_failure()
        if self.payment is None or self.payment.status is not PaymentStatus.SETTLED:
            raise PaymentNotSettledError(f"payment not settled [id={self._id}]")
        if event.amount <= 0 or self.refunded + event.amount > self.intent.credit_amount:
            raise RefundExceedsRemainingError(
                f"a refund of {event.amount} does not fit purchase {self._id}",
                remaining=str(self.intent.credit_amount - self.refunded),
            )
        if event.cash_amount != self._refund_cash(event.amount):
            raise EventSequenceError(f"refund of purchase {self._id} returns the wrong amount")
        self.refunds = (*self.refunds, event)

    def _refuse_after_failure(self) -> None:
        if self.failure is not None:
            raise PaymentAlreadyFailedError(f"payment already failed [id={self._id}]")


@dataclass(frozen=True)
class _Facts:
    """What one command brings to the events it records, beyond its context."""

    intent: PurchaseIntent | None = None
    invoice: tuple[str, str] | None = None
    void: tuple[Decimal, str | None] | None = None
    failure: tuple[GrantOutcome | None, str] | None = None
    refund: tuple[Decimal, str | None] | None = None

    @staticmethod
    def need(fact: _T | None) -> _T:
        if fact is None:  # pragma: no cover - the rules only record an event from its command
            raise InvalidTransitionError("the command did not bring what its event records")
        return fact


def project_purchase(
    purchase: CreditPurchase | None, events: Iterable[PurchaseEvent]
) -> CreditPurchase | None:
    """Fold events into a purchase: the library's projector function, and the auditor's."""
    for event in events:
        if purchase is None:
            purchase = CreditPurchase(event.originator_id)
        purchase.apply(event)
    return purchase
