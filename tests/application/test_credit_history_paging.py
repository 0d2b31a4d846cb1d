"""A customer's credit history read a page at a time: whatever the pages (their size, where they
start, whether this process served the page before, the chunks the store is read in, writes
between pages), they are exactly the whole history's entries, with its running balances, on
every store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from creditledger.application import credit_history
from creditledger.application.credit_views import CreditEntry, credit_entries
from creditledger.application.ledger import CreditLedger
from creditledger.domain.events import WalletEvent
from creditledger.domain.identity import wallet_id_for
from tests.application.builders import (
    NAMESPACE,
    consume,
    external_purchase,
    promotional_purchase,
    refund,
    settle,
    void,
)
from tests.clock import FixedClock


def _history(ledger: CreditLedger, as_of: datetime | None = None) -> list[CreditEntry]:
    """The reference: every stored event of the wallet, made into entries in one pass."""
    wallet_id = wallet_id_for(NAMESPACE, "cust-1", "USD")
    events: list[WalletEvent] = list(ledger.events.get(wallet_id))  # type: ignore[arg-type]
    if as_of is not None:
        events = [event for event in events if event.timestamp <= as_of]
    return credit_entries(events)


def _paged(ledger: CreditLedger, limit: int, as_of: datetime | None = None) -> list[CreditEntry]:
    """Every page in turn, each after the last sequence of the one before (as HTTP pages)."""
    entries: list[CreditEntry] = []
    after = 0
    while page := ledger.credit_history(
        NAMESPACE, "cust-1", "USD", after=after, limit=limit, as_of=as_of
    ):
        entries += page
        after = page[-1].sequence
    return entries


def _paged_as_the_api_asks(ledger: CreditLedger, limit: int) -> list[CreditEntry]:
    """Pages as HTTP and the CLI ask them: one entry more than shown, to know whether a page
    follows; the next page after the last entry shown."""
    entries: list[CreditEntry] = []
    after: int | None = 0
    while after is not None:
        found = ledger.credit_history(NAMESPACE, "cust-1", "USD", after=after, limit=limit + 1)
        entries += found[:limit]
        after = found[limit - 1].sequence if len(found) > limit else None
    return entries


def _write_history(ledger: CreditLedger, clock: FixedClock) -> datetime:
    """Grants, consumptions over several grants, a void and a refund; returns a moment in the
    middle of it."""
    first = ledger.initiate(external_purchase(credit_amount="100")).purchase
    clock.advance(1)
    ledger.initiate(promotional_purchase(credit_amount="7.5"))
    for amount in ("12.25", "3", "0.01"):
        clock.advance(1)
        ledger.consume(consume(amount, feature_key=None))
    middle = clock.now()
    clock.advance(1)
    second = ledger.initiate(external_purchase(credit_amount="40")).purchase
    ledger.settle(settle(second.id))
    clock.advance(1)
    ledger.consume(consume("30", feature_key=None))
    clock.advance(1)
    ledger.refund(refund(second.id, amount="10"))
    clock.advance(1)
    ledger.void(void(first.id))
    clock.advance(1)
    ledger.initiate(promotional_purchase(credit_amount="1"))
    ledger.consume(consume("0.5", feature_key=None))
    return middle


@pytest.mark.parametrize("chunk", [1_000, 2, 1])
def test_pages_of_every_size_are_the_whole_history(
    ledger: CreditLedger, clock: FixedClock, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(credit_history, "CHUNK", chunk)  # reads that end inside a page
    middle = _write_history(ledger, clock)
    whole = _history(ledger)
    assert len(whole) >= 10
    assert whole[-1].balance_after > 0

    assert ledger.credit_history(NAMESPACE, "cust-1", "USD") == whole
    for limit in (1, 2, 3, 5, len(whole), len(whole) + 1):
        assert _paged(ledger, limit) == whole
        assert _paged_as_the_api_asks(ledger, limit) == whole
        assert _paged(ledger, limit, as_of=middle) == _history(ledger, as_of=middle)


def test_a_page_that_follows_no_page_served_before_starts_from_the_right_balance(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    middle = _write_history(ledger, clock)
    whole = _history(ledger)
    until_middle = _history(ledger, as_of=middle)

    # Backwards, so that no page starts where an earlier one ended.
    for after in reversed(range(len(whole) + 2)):
        for limit in (1, 4):
            page = ledger.credit_history(NAMESPACE, "cust-1", "USD", after=after, limit=limit)
            assert page == whole[after : after + limit]
            page = ledger.credit_history(
                NAMESPACE, "cust-1", "USD", after=after, limit=limit, as_of=middle
            )
            assert page == [entry for entry in until_middle if entry.sequence > after][:limit]


def test_pages_read_by_another_ledger_and_across_its_writes_are_the_whole_history(
    backend: str, open_store: Callable[[], CreditLedger], clock: FixedClock
) -> None:
    if backend == "memory":
        pytest.skip("an in-memory store belongs to one ledger")
    writer, reader = open_store(), open_store()
    _write_history(writer, clock)
    first = reader.credit_history(NAMESPACE, "cust-1", "USD", after=0, limit=4)

    clock.advance(1)
    writer.consume(consume("0.25", feature_key=None))
    writer.initiate(promotional_purchase(credit_amount="3"))
    rest = reader.credit_history(NAMESPACE, "cust-1", "USD", after=first[-1].sequence)

    assert first + rest == _history(writer)
    # A third ledger, which served no page, starts in the middle.
    assert open_store().credit_history(NAMESPACE, "cust-1", "USD", after=6) == _history(writer)[6:]
