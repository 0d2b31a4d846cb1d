"""Domain-level purchases and wallets for the domain tests: built by the aggregates' own commands.

A purchase is brought to a status by the commands a caller would send (never by editing its
state), and a ``Lifecycle`` pairs a purchase with its customer's wallet the way the application
does, so the postings of a whole lifecycle come from ``postings_for`` and ``wallet_postings``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

from creditledger.domain.consumption import normalize_consumption
from creditledger.domain.events import CreditsConsumed, Initiated, PurchaseEvent, WalletEvent
from creditledger.domain.identity import wallet_id_for
from creditledger.domain.intent import PurchaseIntent, normalize_intent
from creditledger.domain.ledger import Account, Posting, postings_for, wallet_postings
from creditledger.domain.purchase import CommandContext, CreditPurchase, GrantOutcome
from creditledger.domain.status import PurchaseStatus, RevocationCause, SettlementType
from creditledger.domain.wallet import CreditWallet, WalletContext

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
AT_NOW = CommandContext(at=NOW)


def intent(**overrides: Any) -> PurchaseIntent:
    fields: dict[str, Any] = {
        "now": NOW,
        "namespace": "acme",
        "customer_id": "cust-1",
        "currency": "USD",
        "credit_amount": "100",
        "settlement_type": "external",
        "cost_basis": "0.5",
    }
    if overrides.get("settlement_type") == "promotional":
        fields["cost_basis"] = None
    return normalize_intent(**{**fields, **overrides})


def whole_grant(purchase: CreditPurchase) -> GrantOutcome | None:
    """The grant of a purchase nobody spent from: everything remains (None before any grant)."""
    if purchase.granted is None:
        return None
    remaining = purchase.intent.credit_amount - purchase.refunded
    return GrantOutcome(consumed=Decimal(0), forfeited=Decimal(0), remaining=remaining)


def purchase_in(settlement: SettlementType, status: PurchaseStatus) -> CreditPurchase:
    """A purchase of ``settlement`` type resting in ``status``, reached by commands; its events
    are collected (nothing pending)."""
    initial = {
        PurchaseStatus.PAYMENT_AUTHORIZED: "authorized",
        PurchaseStatus.FINAL: "settled",
    }
    if settlement is SettlementType.EXTERNAL:
        chosen = initial.get(status)
        purchase = CreditPurchase.initiate(
            uuid4(), intent(initial_status=chosen) if chosen else intent(), AT_NOW
        )
    else:
        purchase = CreditPurchase.initiate(
            uuid4(), intent(settlement_type=settlement.value), AT_NOW
        )
    if settlement is SettlementType.INVOICE and status not in (
        PurchaseStatus.CREATED,
        PurchaseStatus.PAYMENT_FAILED,
    ):
        purchase.create_invoice("inv-1", "line-1", AT_NOW)
        if status in (PurchaseStatus.PAYMENT_AUTHORIZED, PurchaseStatus.FINAL):
            purchase.authorize_payment(AT_NOW)
        if status is PurchaseStatus.FINAL:
            purchase.settle_payment(AT_NOW)
    if status is PurchaseStatus.PAYMENT_FAILED:
        purchase.fail_payment(whole_grant(purchase), "card declined", AT_NOW)
    if purchase.status is not status:
        msg = f"cannot bring a {settlement.value} purchase to {status.value}"
        raise ValueError(msg)
    purchase.collect_events()
    return purchase


def snapshot(purchase: CreditPurchase) -> tuple[object, ...]:
    """Everything a command or an event may change."""
    return (
        purchase.version,
        purchase.status,
        purchase.payment,
        purchase.updated_at,
        purchase.granted,
        purchase.invoice,
        purchase.voided,
        purchase.failure,
        purchase.refunds,
        dict(purchase.commands),
    )


@dataclass
class Lifecycle:
    """A purchase and its customer's wallet, changed together as the application changes them."""

    purchase: CreditPurchase
    wallet: CreditWallet
    purchase_events: list[PurchaseEvent] = field(default_factory=list)
    wallet_events: list[WalletEvent] = field(default_factory=list)
    at: datetime = NOW

    @classmethod
    def start(cls, **overrides: Any) -> Lifecycle:
        purchase = CreditPurchase.initiate(uuid4(), intent(**overrides), AT_NOW)
        terms = purchase.intent
        wallet = CreditWallet(
            wallet_id_for(terms.namespace, terms.customer_id, terms.currency),
            terms.namespace,
            terms.customer_id,
            terms.currency,
        )
        if purchase.granted is not None:
            wallet.add_grant(terms, WalletContext(at=NOW))
        lifecycle = cls(purchase, wallet)
        lifecycle._collect()
        return lifecycle

    @property
    def initiated(self) -> Initiated:
        return self.purchase.intent

    def later(self, seconds: float = 60) -> CommandContext:
        self.at += timedelta(seconds=seconds)
        return CommandContext(at=self.at)

    def invoice(self) -> None:
        context = self.later()
        self.purchase.create_invoice("inv-1", "line-1", context)
        granted = self.purchase.granted
        assert granted is not None
        self.wallet.add_grant(self.initiated, WalletContext(at=context.at), granted_at=granted[1])
        self._collect()

    def authorize(self) -> None:
        self.purchase.authorize_payment(self.later())
        self._collect()

    def settle(self) -> None:
        self.purchase.settle_payment(self.later())
        self._collect()

    def consume(self, amount: str) -> CreditsConsumed:
        terms = self.initiated
        request = normalize_consumption(
            namespace=terms.namespace,
            customer_id=terms.customer_id,
            currency=terms.currency,
            amount=amount,
        )
        consumed = self.wallet.consume(uuid4(), request, WalletContext(at=self.later().at))
        self._collect()
        return consumed

    def void(self) -> None:
        context = self.later()
        forfeited = self.wallet.void_grant(self.purchase.id, WalletContext(at=context.at))
        self.purchase.void(forfeited.amount, context)
        self._collect()

    def expire(self) -> None:
        """Move past the grant's expiry and record it (as the sweep does)."""
        expires_at = self.initiated.expires_at
        assert expires_at is not None
        self.at = max(self.at, expires_at) + timedelta(seconds=1)
        self.wallet.expire_due(self.at)
        self._collect()

    def fail(self, reason: str = "card declined") -> None:
        context = self.later()
        grant = self.wallet.grant_as_of(self.purchase.id, context.at)
        outcome = None
        if grant is not None:
            outcome = GrantOutcome(
                consumed=grant.consumed,
                forfeited=grant.expired + grant.voided,
                remaining=grant.remaining,
            )
        self.purchase.fail_payment(outcome, reason, context)
        if grant is not None:
            self.wallet.revoke(
                self.purchase.id, None, RevocationCause.PAYMENT_FAILED, WalletContext(at=context.at)
            )
        self._collect()

    def refund(self, amount: str | None = None) -> None:
        context = self.later()
        grant = self.wallet.grant_as_of(self.purchase.id, context.at)
        remaining = grant.remaining if grant is not None else Decimal(0)
        self.purchase.refund(
            Decimal(amount) if amount is not None else None, remaining, context, None
        )
        self.wallet.revoke(
            self.purchase.id,
            self.purchase.refunds[-1].amount,
            RevocationCause.REFUND,
            WalletContext(at=context.at),
        )
        self._collect()

    def postings(self) -> list[Posting]:
        """What the domain books for every event so far, the wallet's included."""
        initiated = self.initiated
        found = [p for event in self.purchase_events for p in postings_for(initiated, event)]
        for event in self.wallet_events:
            found += wallet_postings(event, lambda _purchase: initiated)
        return found

    def balances(self) -> dict[Account, Decimal]:
        totals = dict.fromkeys(Account, Decimal(0))
        for posting in self.postings():
            totals[posting.account] += posting.amount
        return totals

    def _collect(self) -> None:
        self.purchase_events += self.purchase.collect_events()
        self.wallet_events += self.wallet.collect_events()
