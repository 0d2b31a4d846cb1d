"""Comparing an export's replayed state with the live state, purchase by purchase, balance by
balance (``verify --against-live``), on every backend."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from creditledger.application.audit.state import BalanceKey
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.audit.jobs import LiveComparison, compare_with_live
from creditledger.infrastructure.audit.live import StoreLiveLedger
from tests.application.audit_support import (
    edit_event,
    export_lines,
    populate,
    rehash,
    tamper_stored_event,
    verify_lines,
)
from tests.application.builders import authorize, external_purchase
from tests.clock import FixedClock


def _compare(ledger: CreditLedger, lines: list[str]) -> LiveComparison:
    report = verify_lines(lines)
    assert report.ok, report.failure
    return compare_with_live(report, StoreLiveLedger(ledger))


def test_an_untouched_export_matches_the_live_state_row_by_row(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    populate(ledger, clock)
    comparison = _compare(ledger, export_lines(ledger, tmp_path / "export.jsonl"))
    assert comparison.differences == []
    assert comparison.purchases == 5
    assert comparison.balances_compared
    assert comparison.balances == 13  # A and D: 4 accounts, B: 2, C: 4, E: 3


def test_writes_after_the_export_do_not_count_as_differences(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    purchases = populate(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    ledger.authorize(authorize(purchases.b.id, namespace="globex"))
    ledger.initiate(external_purchase(customer_id="cust-later"))
    assert _compare(ledger, lines).differences == []


def test_a_forged_export_differs_from_the_live_state_where_it_was_forged(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    purchases = populate(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    forged = rehash(edit_event(lines, 6, data={"credit_amount": "80.00"}))
    comparison = _compare(ledger, forged)
    first = comparison.differences[0]
    assert (first.kind, first.key, first.position) == ("purchase", str(purchases.d.id), 6)
    assert first.export == {"credit_amount": Decimal("80.00")}
    assert first.live == {"credit_amount": Decimal("30.00")}
    balance_keys = {item.key for item in comparison.differences if item.kind == "balance"}
    assert "/".join(BalanceKey("acme", "cust-a", "USD", "customer_fbo")) in balance_keys


def test_a_store_changed_after_the_export_differs_from_it(
    ledger: CreditLedger, clock: FixedClock, store_url: str, tmp_path: Path
) -> None:
    purchases = populate(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    tamper_stored_event(ledger, store_url, 9, {"customer_id": "cust-x"})
    comparison = _compare(ledger, lines)
    first = comparison.differences[0]
    assert (first.kind, first.key, first.position) == ("purchase", str(purchases.e.id), 9)


def test_a_namespace_export_is_compared_with_that_namespace_only(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    populate(ledger, clock)
    comparison = _compare(ledger, export_lines(ledger, tmp_path / "g.jsonl", namespace="globex"))
    assert comparison.differences == []
    assert comparison.purchases == 2


def test_an_export_from_a_position_compares_whole_purchases_and_no_balances(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    populate(ledger, clock)
    comparison = _compare(ledger, export_lines(ledger, tmp_path / "t.jsonl", from_position=5))
    assert comparison.differences == []
    assert comparison.purchases == 2
    assert not comparison.balances_compared
    assert comparison.notes
