"""The reference model's own bookkeeping: the postings each recorded event must book, derived from
the transition table's statuses and the purchase's credit amount, never from the ledger's
``postings_for``.

A purchase moves through three bookings (domain reference 7.2): credit is issued (spendable,
and owed), the payment is authorized (owed, authorized), the payment settles (it leaves through
the cash boundary). The table says which status each event leaves the purchase in; the status
says how far along those bookings the purchase is, and an event books every step between the
status before it and the status after it. A promotional grant goes from nothing to ``final`` in
one event, so it books all three, in its one transaction group.

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

from creditledger.application.testing.model import PURCHASE_VOIDED, ModelPurchase
from creditledger.application.testing.model_wallet import ModelWallet

CUSTOMER_FBO = "customer_fbo"
RECEIVABLE_OPEN = "customer_receivable_open"
RECEIVABLE_AUTHORIZED = "customer_receivable_authorized"
WASH = "wash"
CUSTOMER_ACCRUED = "customer_accrued"
BREAKAGE = "breakage"
PURCHASE, WALLET = "purchase", "wallet"

_STEPS: tuple[tuple[tuple[str, int], ...], ...] = (
    ((CUSTOMER_FBO, +1), (RECEIVABLE_OPEN, -1)),  # issue: spendable, and owed
    ((RECEIVABLE_AUTHORIZED, -1), (RECEIVABLE_OPEN, +1)),  # authorize: owed, now authorized
    ((WASH, -1), (RECEIVABLE_AUTHORIZED, +1)),  # settle: paid, out through the cash boundary
)
"""Each booking step, as (account, sign of the credit amount) entries that sum to zero."""

_STEPS_DONE: dict[str | None, int] = {
    None: 0,
    "active.payment.pending": 1,
    "active.payment.authorized": 2,
    "final": 3,
}
"""How many booking steps a purchase in each status of the table has been through."""


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


def expected_postings(purchase: ModelPurchase) -> Iterator[ExpectedPosting]:
    """Every entry the purchase's events book, in version order."""
    for event in purchase.events:
        if event.type == PURCHASE_VOIDED:
            forfeited = event.amount or Decimal(0)
            for account, sign in ((CUSTOMER_FBO, -1), (BREAKAGE, +1)):
                yield ExpectedPosting(
                    purchase_id=purchase.id,
                    version=event.version,
                    namespace=purchase.namespace,
                    customer_id=purchase.customer_id,
                    currency=purchase.currency,
                    account=account,
                    amount=sign * forfeited,
                    at=event.at,
                )
            continue
        before = _steps_done(purchase, event.version - 1)
        after = _steps_done(purchase, event.version)
        for step in _STEPS[before:after]:
            for account, sign in step:
                yield ExpectedPosting(
                    purchase_id=purchase.id,
                    version=event.version,
                    namespace=purchase.namespace,
                    customer_id=purchase.customer_id,
                    currency=purchase.currency,
                    account=account,
                    amount=sign * purchase.credit_amount,
                    at=event.at,
                )


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
            continue  # a grant and a void book with their purchase's events
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
