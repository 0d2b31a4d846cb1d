"""The reference model's own bookkeeping: the postings each recorded event must book, derived from
the transition table's statuses and the purchase's amounts, never from the ledger's
``postings_for``.

Every account counts one unit: credits at face value (FBO, the open receivable, accrued,
breakage, ``brokerage_credits``) or the cash the payment moves (the authorized receivable,
``wash``, ``brokerage_cash``); each transaction group sums to zero in each unit, and an entry of
zero is not booked.

A purchase moves through three bookings (domain reference 7.2): credit is issued (spendable,
and owed: FBO +x / open -x), the payment is authorized (the open receivable of x credits becomes
an authorized one of p cash, re-denominated against brokerage: open +x / brokerage_credits -x,
brokerage_cash +p / authorized -p), the payment settles (the cash leaves through the boundary:
wash -p / authorized +p). ``p`` is the payment amount, none for promotional credit. The table
says which status each event leaves the purchase in; the status says how far along those
bookings the purchase is, and an event books every step between the status before it and the
status after it. A promotional grant goes from nothing to ``final`` in one event, so it books
all three, in its one transaction group; an invoice purchase books nothing until its invoice
grants the credit.

A failed payment undoes the authorization, if there was one (authorized +p / brokerage_cash -p,
brokerage_credits +x / open -x), takes back the unconsumed credit (FBO -revoked / open +revoked)
and releases what expired or was voided (breakage -released / open +released): the open
receivable left is minus what was consumed. A refund of r credits returning q cash books FBO -r /
brokerage_credits +r and brokerage_cash -q / wash +q.

Credit that leaves the customer unused or used books on its own (design, section 6): a void
forfeits what remained (FBO -r / breakage +r, with the purchase's ``PurchaseVoided``); each
allocation of a consumption moves FBO -x / customer_accrued +x; an expiry forfeits what remained
at ``expires_at``, booked at that instant whenever it was recorded (FBO -r / breakage +r). The
amounts come from the model's own wallet (``model_wallet``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from creditledger.application.testing.model import (
    PAYMENT_FAILED_EVENT,
    PAYMENT_REFUNDED,
    PURCHASE_VOIDED,
    EventFacts,
    ModelEvent,
    ModelPurchase,
)
from creditledger.application.testing.model_wallet import ModelWallet

CUSTOMER_FBO = "customer_fbo"
RECEIVABLE_OPEN = "customer_receivable_open"
RECEIVABLE_AUTHORIZED = "customer_receivable_authorized"
WASH = "wash"
CUSTOMER_ACCRUED = "customer_accrued"
BREAKAGE = "breakage"
BROKERAGE_CREDITS = "brokerage_credits"
BROKERAGE_CASH = "brokerage_cash"
PURCHASE, WALLET = "purchase", "wallet"
CREDITS, CASH = "credits", "cash"
UNITS: dict[str, str] = {
    CUSTOMER_FBO: CREDITS,
    RECEIVABLE_OPEN: CREDITS,
    CUSTOMER_ACCRUED: CREDITS,
    BREAKAGE: CREDITS,
    BROKERAGE_CREDITS: CREDITS,
    RECEIVABLE_AUTHORIZED: CASH,
    WASH: CASH,
    BROKERAGE_CASH: CASH,
}
"""What each account counts (the model's own table): amounts are never summed across units."""

_CREDIT, _CASH = "x", "p"
_STEPS: tuple[tuple[tuple[str, int, str], ...], ...] = (
    ((CUSTOMER_FBO, +1, _CREDIT), (RECEIVABLE_OPEN, -1, _CREDIT)),  # issue: spendable, and owed
    (  # authorize: the receivable of x credits becomes one of p cash, through brokerage
        (RECEIVABLE_OPEN, +1, _CREDIT),
        (BROKERAGE_CREDITS, -1, _CREDIT),
        (BROKERAGE_CASH, +1, _CASH),
        (RECEIVABLE_AUTHORIZED, -1, _CASH),
    ),
    ((WASH, -1, _CASH), (RECEIVABLE_AUTHORIZED, +1, _CASH)),  # settle: the cash leaves
)
"""Each booking step, as (account, sign, of the credit amount x or the payment p) entries that
sum to zero per unit."""

_STEPS_DONE: dict[str | None, int] = {
    None: 0,
    "created": 0,
    "active.payment.pending": 1,
    "active.payment.authorized": 2,
    "final": 3,
}
"""How many booking steps a purchase in each status of the table has been through (a failed
payment books its own entries: see the module docstring)."""


@dataclass(frozen=True)
class ExpectedPosting:
    """One entry the model expects the ledger to book."""

    purchase_id: UUID
    version: int
    namespace: str
    customer_id: str
    currency: str
    account: str
    amount: Decimal
    at: datetime
    source: str = PURCHASE
    """Whose event books it: the purchase's (``version`` is the purchase's), or its wallet's
    (``version`` is the wallet's; ``purchase_id`` the grant the entry concerns)."""

    @property
    def unit(self) -> str:
        return UNITS[self.account]


def expected_postings(purchase: ModelPurchase) -> Iterator[ExpectedPosting]:
    """Every entry the purchase's events book, in version order (no entry of zero)."""
    for event in purchase.events:
        for account, amount in _entries(purchase, event):
            if amount != 0:
                yield ExpectedPosting(
                    purchase_id=purchase.id,
                    version=event.version,
                    namespace=purchase.namespace,
                    customer_id=purchase.customer_id,
                    currency=purchase.currency,
                    account=account,
                    amount=amount,
                    at=event.at,
                )


def _entries(purchase: ModelPurchase, event: ModelEvent) -> list[tuple[str, Decimal]]:
    """(account, amount) of what one event books, zeros included."""
    credits = purchase.credit_amount
    cash = purchase.payment_amount or Decimal(0)
    facts = event.facts or EventFacts()
    before = _steps_done(purchase, event.version - 1)
    if event.type == PURCHASE_VOIDED:
        forfeited = event.amount or Decimal(0)
        return [(CUSTOMER_FBO, -forfeited), (BREAKAGE, forfeited)]
    if event.type == PAYMENT_REFUNDED:
        taken = event.amount or Decimal(0)
        return [
            (CUSTOMER_FBO, -taken),
            (BROKERAGE_CREDITS, taken),
            (BROKERAGE_CASH, -facts.cash_amount),
            (WASH, facts.cash_amount),
        ]
    if event.type == PAYMENT_FAILED_EVENT:
        entries = []
        if before >= 2:  # authorized: undo the re-denomination
            entries = [
                (RECEIVABLE_AUTHORIZED, cash),
                (BROKERAGE_CASH, -cash),
                (BROKERAGE_CREDITS, credits),
                (RECEIVABLE_OPEN, -credits),
            ]
        return [
            *entries,
            (CUSTOMER_FBO, -facts.revoked),
            (RECEIVABLE_OPEN, facts.revoked),
            (BREAKAGE, -facts.released),
            (RECEIVABLE_OPEN, facts.released),
        ]
    after = _steps_done(purchase, event.version)
    amounts = {_CREDIT: credits, _CASH: cash}
    return [
        (account, sign * amounts[of]) for step in _STEPS[before:after] for account, sign, of in step
    ]


def expected_wallet_postings(wallet: ModelWallet) -> Iterator[ExpectedPosting]:
    """Every entry the wallet's events book: consumptions per allocation, and expiries."""
    namespace, customer, currency = wallet.key
    for event in wallet.events:
        if event.type == "CreditsConsumed":
            moves = [
                (grant, amount, CUSTOMER_ACCRUED, event.at) for grant, amount in event.allocations
            ]
        elif event.type == "GrantExpired" and event.purchase_id and event.effective_at:
            moves = [(event.purchase_id, event.amount, BREAKAGE, event.effective_at)]
        else:
            continue  # a grant, a void and a revocation book with their purchase's events
        for grant, amount, account, at in moves:
            for to, sign in ((CUSTOMER_FBO, -1), (account, +1)):
                yield ExpectedPosting(
                    purchase_id=grant,
                    version=event.version,
                    namespace=namespace,
                    customer_id=customer,
                    currency=currency,
                    account=to,
                    amount=sign * amount,
                    at=at,
                    source=WALLET,
                )


def due_expiry_postings(wallet: ModelWallet, moment: datetime) -> Iterator[ExpectedPosting]:
    """What the expiries due by ``moment`` and not yet recorded will book, at their expires_at:
    balances as of any time count them already."""
    namespace, customer, currency = wallet.key
    for grant in wallet.due_unrecorded(moment):
        if grant.terms.expires_at is None:  # pragma: no cover - due grants expire
            continue
        for to, sign in ((CUSTOMER_FBO, -1), (BREAKAGE, +1)):
            yield ExpectedPosting(
                purchase_id=grant.purchase_id,
                version=0,
                namespace=namespace,
                customer_id=customer,
                currency=currency,
                account=to,
                amount=sign * grant.remaining,
                at=grant.terms.expires_at,
                source=WALLET,
            )


def entries_by_version(
    postings: Iterable[tuple[UUID, int, str, Decimal]],
) -> dict[tuple[UUID, int], Counter[tuple[str, Decimal]]]:
    """(purchase, version) -> the multiset of (account, amount) it booked: the form in which
    the ledger's postings and the model's are compared (the model knows no group ids)."""
    found: dict[tuple[UUID, int], Counter[tuple[str, Decimal]]] = {}
    for purchase_id, version, account, amount in postings:
        found.setdefault((purchase_id, version), Counter())[(account, amount)] += 1
    return found


def expected_balances(
    postings: Iterable[ExpectedPosting], as_of: datetime | None = None
) -> dict[tuple[str, str, str, str], Decimal]:
    """(namespace, customer, currency, account) -> balance, from entries at or before ``as_of``."""
    totals: dict[tuple[str, str, str, str], Decimal] = {}
    for posting in postings:
        if as_of is None or posting.at <= as_of:
            key = (posting.namespace, posting.customer_id, posting.currency, posting.account)
            totals[key] = totals.get(key, Decimal(0)) + posting.amount
    return totals


def _steps_done(purchase: ModelPurchase, version: int) -> int:
    status = purchase.status_at(version)
    if status not in _STEPS_DONE:
        msg = f"the model has no bookings for status {status!r} of the transition table"
        raise ValueError(msg)
    return _STEPS_DONE[status]
