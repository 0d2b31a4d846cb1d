"""A query "now" (a purchase, a customer's credits) brings the wallet this process holds up to
date with what the store has after it, rather than folding the wallet's whole history each time:
it must answer exactly what a fold of the history answers, whoever wrote the store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest

from creditledger.application.ledger import CreditLedger
from tests.application.builders import (
    NAMESPACE,
    consume,
    external_purchase,
    promotional_purchase,
    void,
)
from tests.clock import FixedClock


def _same_answers(reader: CreditLedger, *purchases: object) -> None:
    """``reader``'s answers now equal its answers as of now, which fold the whole history."""
    now = reader.clock.now()
    credits = reader.customer_credits(NAMESPACE, "cust-1", "USD")
    assert credits == reader.customer_credits(NAMESPACE, "cust-1", "USD", as_of=now)
    for purchase in purchases:
        purchase_id = purchase.id  # type: ignore[attr-defined]
        shown = reader.get_purchase(NAMESPACE, purchase_id)
        assert shown == reader.get_purchase(NAMESPACE, purchase_id, as_of=now)


def test_a_query_now_sees_what_another_ledger_wrote_after_this_one_read_the_wallet(
    backend: str, open_store: Callable[[], CreditLedger], clock: FixedClock
) -> None:
    if backend == "memory":
        pytest.skip("an in-memory store belongs to one ledger")
    reader, writer = open_store(), open_store()
    first = reader.initiate(external_purchase(credit_amount="100")).purchase
    reader.consume(consume("10", feature_key=None))
    _same_answers(reader, first)  # the reader now holds the wallet
    clock.advance(1)

    second = writer.initiate(promotional_purchase(credit_amount="5")).purchase
    writer.consume(consume("30", feature_key=None))
    writer.void(void(first.id))
    clock.advance(1)

    shown = reader.get_purchase(NAMESPACE, first.id)
    assert (shown.consumed, shown.voided, shown.remaining) == (
        Decimal("40.00"),
        Decimal("60.00"),
        Decimal("0.00"),
    )
    assert reader.customer_credits(NAMESPACE, "cust-1", "USD").balance == Decimal("5")
    _same_answers(reader, first, second)
    _same_answers(writer, first, second)

    # A grant whose expiry falls due with nothing recorded, and one spent whole.
    expiring = writer.initiate(
        external_purchase(credit_amount="7", expires_at=clock.now() + timedelta(seconds=10))
    ).purchase
    spent = writer.initiate(promotional_purchase(credit_amount="2", priority=1)).purchase
    writer.consume(consume("2", feature_key=None))
    assert reader.get_purchase(NAMESPACE, spent.id).remaining == Decimal("0.00")
    _same_answers(reader, first, second, expiring, spent)
    clock.advance(20)
    credits = reader.customer_credits(NAMESPACE, "cust-1", "USD")
    assert expiring.id not in {grant.purchase_id for grant in credits.grants}
    assert reader.get_purchase(NAMESPACE, expiring.id).expired == Decimal("7.00")
    _same_answers(reader, first, second, expiring, spent)


def test_a_query_now_on_a_clock_behind_the_wallets_last_event_leaves_that_event_out(
    backend: str, open_store: Callable[[], CreditLedger], clock: FixedClock
) -> None:
    ledger = open_store()
    purchase = ledger.initiate(external_purchase(credit_amount="100")).purchase
    ledger.customer_credits(NAMESPACE, "cust-1", "USD")  # the wallet is held
    clock.advance(60)
    ledger.consume(consume("40", feature_key=None))
    clock.set(clock.now() - timedelta(seconds=30))  # a clock set back, or another server's

    assert ledger.get_purchase(NAMESPACE, purchase.id).consumed == Decimal("0.00")
    assert ledger.customer_credits(NAMESPACE, "cust-1", "USD").balance == Decimal("100")
    _same_answers(ledger, purchase)
    clock.advance(30)
    assert ledger.get_purchase(NAMESPACE, purchase.id).consumed == Decimal("40.00")
    _same_answers(ledger, purchase)
