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
    WALLET_CUSTOMER,
    export_lines,
    populate,
    populate_wallet,
    regrant,
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
    # Per customer: A and D (cust-a, settled): fbo, receivable open and authorized, wash and
    # both brokerage accounts, 6; B (pending): fbo and receivable open, 2; C (promotional): fbo,
    # receivable open and brokerage credits (no cash moves), 3; E (authorized): 5, no wash.
    assert comparison.balances == 16


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
    forged = rehash(regrant(lines, 9, 12, "80.00"))
    comparison = _compare(ledger, forged)
    first = comparison.differences[0]
    assert (first.kind, first.key, first.position) == ("purchase", str(purchases.d.id), 9)
    # The forger re-priced the authorization too, or the purchase would not replay.
    assert first.export == {
        "credit_amount": Decimal("80.00"),
        "authorized_amount": Decimal("40.00"),
    }
    assert first.live == {"credit_amount": Decimal("30.00"), "authorized_amount": Decimal("15.00")}
    balance_keys = {item.key for item in comparison.differences if item.kind == "balance"}
    assert "/".join(BalanceKey("acme", "cust-a", "USD", "customer_fbo")) in balance_keys


def test_a_store_changed_after_the_export_differs_from_it(
    ledger: CreditLedger, clock: FixedClock, store_url: str, tmp_path: Path
) -> None:
    purchases = populate(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    tamper_stored_event(ledger, store_url, 13, {"customer_id": "cust-x"})
    comparison = _compare(ledger, lines)
    first = comparison.differences[0]
    assert (first.kind, first.key, first.position) == ("purchase", str(purchases.e.id), 13)


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
    comparison = _compare(ledger, export_lines(ledger, tmp_path / "t.jsonl", from_position=8))
    assert comparison.differences == []
    assert comparison.purchases == 2
    assert not comparison.balances_compared
    assert comparison.notes


def test_a_wallets_consumptions_expiry_and_void_agree_with_the_event_store(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    populate_wallet(ledger, clock)
    comparison = _compare(ledger, export_lines(ledger, tmp_path / "export.jsonl"))
    assert comparison.differences == []
    assert comparison.purchases == 2
    assert comparison.notes == []  # balances with every posting, wallet postings included
    # P: fbo, receivable open; Q (promotional): the same and brokerage credits (no cash moves);
    # both: accrued, breakage.
    assert comparison.balances == 5


def test_a_consumption_changed_in_the_store_after_the_export_makes_the_live_path_refuse_it(
    ledger: CreditLedger, clock: FixedClock, store_url: str, tmp_path: Path
) -> None:
    wallet = populate_wallet(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    # The consumption at 6 drew 50 from P; in the store it now draws 40, so the expiry at 7
    # (20.12) no longer forfeits what remained: the live wallet does not replay any more.
    allocation = {"purchase_id": str(wallet.p.id), "amount": "40.00"}
    tamper_stored_event(ledger, store_url, 6, {"amount": "40.00", "allocations": [allocation]})
    live = StoreLiveLedger(ledger)
    report = verify_lines(lines)
    assert report.ok, report.failure
    comparison = compare_with_live(report, live)
    first = comparison.differences[0]
    assert (first.kind, first.key, first.position) == ("purchase", str(wallet.p.id), 1)
    assert first.detail == "missing from the live state"
    assert "forfeits 20.12, not the 30.12 that remained" in live.unreadable[wallet.p.id]
    customer = "/".join(("acme", WALLET_CUSTOMER, "USD"))
    assert ("balance", f"{customer}/customer_accrued", 8) in [
        (d.kind, d.key, d.position) for d in comparison.differences
    ]
