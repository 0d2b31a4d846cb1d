"""``verify --against-live`` merges both sides in purchase-id order (issue 14: bounded memory).

The export's purchases (open ones and closed ones from the scratch store) and each live source's
come in ascending id order, so one purchase of each side is in hand at a time; the event store is
read a page of first events at a time, the views' ledger entries only after the cut. On every
backend, paging changes nothing in what is found.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from creditledger.application.audit.against_live import LiveLedger
from creditledger.application.audit.closed import ClosedPurchases, MemoryClosedPurchases
from creditledger.application.audit.state import AuditScope
from creditledger.application.audit.verify import ExportVerifier
from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.rows import Tables
from creditledger.infrastructure.audit.jobs import compare_with_live
from creditledger.infrastructure.audit.live import StoreLiveLedger
from creditledger.infrastructure.audit.readmodels import ReadModelLiveLedger
from creditledger.infrastructure.audit.spill import SqliteClosedPurchases
from tests.application.audit_support import (
    EVENT_COUNT,
    export_lines,
    populate,
    regrant,
    rehash,
    verify_lines,
)
from tests.application.builders import authorize, external_purchase
from tests.clock import FixedClock
from tests.readmodels_support import read_models


def _more_purchases(ledger: CreditLedger, clock: FixedClock, count: int) -> None:
    """``count`` more purchases (ids random, so their order is not their log order)."""
    for index in range(count):
        clock.advance(1)
        ledger.initiate(external_purchase(customer_id=f"cust-{index % 3}", credit_amount="3"))


def _live_ids(live: LiveLedger, scope: AuditScope) -> list[UUID]:
    with live.reading(scope) as reading:
        return [purchase.purchase_id for purchase in reading.purchases()]


def test_each_live_source_reads_its_purchases_in_ascending_id_order_a_page_at_a_time(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    populate(ledger, clock)
    _more_purchases(ledger, clock, 7)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    report = verify_lines(lines)
    assert report.ok, report.failure
    exported = sorted(UUID(purchase_id) for purchase_id, _, _ in report.ledger.histories_in_order())
    assert len(exported) == 12
    # Written after the cut: neither source lists it.
    ledger.initiate(external_purchase(customer_id="cust-later"))
    scope = report.scope()
    assert scope is not None
    with read_models(ledger) as service:
        service.runner.catch_up()
        assert _live_ids(ReadModelLiveLedger(service), scope) == exported
    for page in (1, 2, 5, 5000):
        assert _live_ids(StoreLiveLedger(ledger, batch_size=page), scope) == exported


@pytest.mark.parametrize("closed", ["memory", "scratch file"])
def test_the_exports_purchases_come_in_ascending_id_order_open_and_closed_merged(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path, closed: str
) -> None:
    purchases = populate(ledger, clock)
    _more_purchases(ledger, clock, 7)
    store: ClosedPurchases = (
        MemoryClosedPurchases() if closed == "memory" else SqliteClosedPurchases(str(tmp_path))
    )
    verifier = ExportVerifier([], closed=store)
    for line in export_lines(ledger, tmp_path / "export.jsonl"):
        verifier.feed(line)
    report = verifier.finish()
    assert report.ok, report.failure
    ordered = list(report.ledger.histories_in_order())
    ids = [purchase_id for purchase_id, _, _ in ordered]
    assert ids == sorted(ids)
    # Settled A and D and promotional C are closed; B, E and the seven pending ones are open.
    assert len(store) == 3
    assert len(ids) == 12
    statuses = {purchase_id: purchase.status for purchase_id, purchase, _ in ordered}
    assert statuses == {
        str(purchase_id): state.status
        for purchase_id, state in report.ledger.snapshot(None).purchases.items()
    }
    a = next(history for purchase_id, _, history in ordered if purchase_id == str(purchases.a.id))
    assert [recorded.position for recorded in a] == [1, 5, 8]
    if isinstance(store, SqliteClosedPurchases):
        store.close()  # here, not in whichever thread happens to collect it


def test_a_store_read_a_page_at_a_time_finds_the_same_differences_as_one_read_whole(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    purchases = populate(ledger, clock)
    _more_purchases(ledger, clock, 4)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    forged = rehash(regrant(lines, 9, 12, "80.00"))
    report = verify_lines(forged)
    assert report.ok, report.failure
    whole = compare_with_live(report, StoreLiveLedger(ledger))
    paged = compare_with_live(report, StoreLiveLedger(ledger, batch_size=1))
    assert paged == whole
    first = whole.differences[0]
    assert (first.kind, first.key, first.position) == ("purchase", str(purchases.d.id), 9)
    assert whole.purchases == 9


def test_views_past_the_cut_are_compared_reading_only_the_entries_after_it(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    purchases = populate(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    ledger.authorize(authorize(purchases.b.id, namespace="globex"))
    _more_purchases(ledger, clock, 3)
    with read_models(ledger) as service:
        service.runner.catch_up()
        with service.database.reading() as views:
            entries = list(views.rows(Tables.ENTRIES))
            after = list(views.rows_above(Tables.ENTRIES, EVENT_COUNT))
        assert after == [entry for entry in entries if entry.position > EVENT_COUNT]
        assert after
        assert len(after) < len(entries)
        comparison = compare_with_live(verify_lines(lines), ReadModelLiveLedger(service))
    assert comparison.differences == []
    assert comparison.purchases == 5
    assert comparison.balances == 16
