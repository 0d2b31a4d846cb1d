"""Helpers for the read model tests: commands in one line, and the log folded by the domain.

The expected values in these tests are computed from the event log with the domain's own
functions (``postings_for``, the aggregate), never from the views under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from creditledger.application.commands import (
    AuthorizePayment,
    InitiatePurchase,
    SettlementInput,
    SettlePayment,
)
from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.source import EventLog
from creditledger.application.purchase_view import PurchaseView
from creditledger.domain.events import Initiated, LedgerEvent, WalletEventBase
from creditledger.domain.ledger import (
    Account,
    Posting,
    postings_for,
    unbalanced_groups,
    wallet_postings,
)
from creditledger.infrastructure.bootstrap import open_read_models
from creditledger.infrastructure.projections.service import ReadModelService


def initiate(
    ledger: CreditLedger,
    *,
    namespace: str = "acme",
    customer: str = "cust-1",
    currency: str = "USD",
    amount: str = "30",
    cost_basis: str | None = "0.5",
    settlement: str = "external",
    initial_status: str | None = None,
    priority: int | None = None,
) -> PurchaseView:
    return ledger.initiate(
        InitiatePurchase(
            namespace=namespace,
            customer_id=customer,
            currency=currency,
            credit_amount=amount,
            cost_basis=None if settlement == "promotional" else cost_basis,
            settlement=SettlementInput(type=settlement, initial_status=initial_status),
            priority=priority,
        )
    ).purchase


def authorize(ledger: CreditLedger, purchase: PurchaseView) -> PurchaseView:
    return ledger.authorize(
        AuthorizePayment(namespace=purchase.namespace, purchase_id=purchase.id)
    ).purchase


def settle(ledger: CreditLedger, purchase: PurchaseView) -> PurchaseView:
    return ledger.settle(
        SettlePayment(namespace=purchase.namespace, purchase_id=purchase.id)
    ).purchase


@contextmanager
def read_models(ledger: CreditLedger, *, batch_size: int = 500) -> Iterator[ReadModelService]:
    """The ledger's read models with no projector thread: the test says when to catch up."""
    with open_read_models(ledger, run_projector=False, batch_size=batch_size) as service:
        yield service


def logged_events(ledger: CreditLedger) -> list[tuple[int, LedgerEvent]]:
    """Every event of the log, with its position, in log order."""
    log = EventLog(ledger)
    found: list[tuple[int, LedgerEvent]] = []
    after = 0
    while True:
        notifications = log.read(after, 1000)
        if not notifications:
            return found
        for notification in notifications:
            recorded = log.decode(notification)
            found.append((recorded.position, recorded.event))
        after = notifications[-1].id


def logged_postings(ledger: CreditLedger) -> list[Posting]:
    """The postings the domain books for every logged event (a wallet's events included)."""
    initiated: dict[UUID, Initiated] = {}
    postings: list[Posting] = []
    for _, event in logged_events(ledger):
        if isinstance(event, WalletEventBase):
            postings += wallet_postings(event, initiated.__getitem__)
            continue
        if isinstance(event, Initiated):
            initiated[event.originator_id] = event
        postings += postings_for(initiated[event.originator_id], event)
    return postings


def logged_balances(
    ledger: CreditLedger, namespace: str = "acme", customer: str = "cust-1", currency: str = "USD"
) -> dict[Account, Decimal]:
    """Every account of a customer in one currency, folded from the whole log by the domain's
    postings; every transaction group of the log is checked to balance in each unit first."""
    postings = logged_postings(ledger)
    unbalanced = unbalanced_groups(postings)
    if unbalanced:
        msg = f"unbalanced transaction groups: {unbalanced}"
        raise AssertionError(msg)
    folded = folded_balances(postings, namespace, customer)
    return {account: folded.get((currency, account), Decimal(0)) for account in Account}


def folded_balances(
    postings: list[Posting], namespace: str, customer: str, as_of: datetime | None = None
) -> dict[tuple[str, Account], Decimal]:
    """(currency, account) -> balance: the fold of the customer's postings up to ``as_of``."""
    balances: dict[tuple[str, Account], Decimal] = {}
    for posting in postings:
        if posting.namespace != namespace or posting.customer_id != customer:
            continue
        if as_of is not None and posting.at > as_of:
            continue
        key = (posting.currency, posting.account)
        balances[key] = balances.get(key, Decimal(0)) + posting.amount
    return balances
