"""``verify --against-live`` with the read models: an export compared with the live views row by
row, on every backend, whether the views stand behind the export's cut or past it."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from creditledger.application.audit.state import BalanceKey
from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.rows import PurchaseRow, evolve
from creditledger.domain.status import PurchaseStatus
from creditledger.infrastructure.audit.jobs import (
    LiveComparison,
    compare_with_live,
    compare_with_sources,
)
from creditledger.infrastructure.audit.live import StoreLiveLedger
from creditledger.infrastructure.audit.readmodels import ReadModelLiveLedger
from creditledger.infrastructure.projections.memory import MemoryViewDatabase
from creditledger.infrastructure.projections.service import ReadModelService
from tests.application.audit_support import (
    EVENT_COUNT,
    WALLET_CUSTOMER,
    export_lines,
    fail_payment,
    populate,
    populate_credit_changes,
    populate_wallet,
    refund,
    verify_lines,
)
from tests.application.builders import authorize, external_purchase, settle
from tests.clock import FixedClock
from tests.readmodels_support import read_models
from tests.stores import POSTGRES_URL


def _compare(service: ReadModelService, lines: list[str]) -> LiveComparison:
    report = verify_lines(lines)
    assert report.ok, report.failure
    return compare_with_live(report, ReadModelLiveLedger(service), source="read_models")


def _tamper_view(service: ReadModelService, statement: str, params: tuple[object, ...]) -> None:
    """Change a live view's table behind the projector's back, as a hand edit or a bug would."""
    env = service.ledger.env
    if env.get("PERSISTENCE_MODULE", "").endswith("sqlite"):
        with sqlite3.connect(env["SQLITE_DBNAME"]) as connection:
            connection.execute(statement, params)
        return
    with psycopg.connect(POSTGRES_URL) as connection:
        connection.execute(f'SET search_path TO "{env["POSTGRES_SCHEMA"]}"')
        connection.execute(statement.replace("?", "%s"), params)


_ROW_EDITS = {
    "status": "UPDATE readmodel_purchases SET status = ? WHERE created_position = ?",
    "credit_amount": "UPDATE readmodel_purchases SET credit_amount = ? WHERE created_position = ?",
    "refunded_cash": "UPDATE readmodel_purchases SET refunded_cash = ? WHERE created_position = ?",
    "owed": "UPDATE readmodel_purchases SET owed = ? WHERE created_position = ?",
    "failure_reason": (
        "UPDATE readmodel_purchases SET failure_reason = ? WHERE created_position = ?"
    ),
    "line_id": "UPDATE readmodel_purchases SET line_id = ? WHERE created_position = ?",
}
_TEXT_COLUMNS = {"failure_reason", "line_id"}


def _tamper_purchase_row(
    service: ReadModelService, purchase_id: UUID, column: str, value: str
) -> None:
    database = service.database
    if isinstance(database, MemoryViewDatabase):
        # The memory store's tables are dictionaries: edit the row in place.
        rows: dict[UUID, PurchaseRow] = database._tables.purchases["readmodel_purchases"]
        typed: object = value
        if column == "status":
            typed = PurchaseStatus(value)
        elif column not in _TEXT_COLUMNS:
            typed = Decimal(value)
        rows[purchase_id] = evolve(rows[purchase_id], **{column: typed})
        return
    _tamper_view(service, _ROW_EDITS[column], (value, _created_position(service, purchase_id)))


def _created_position(service: ReadModelService, purchase_id: UUID) -> int:
    # Rows are matched on a plain integer column: the id's storage differs between stores.
    for row in service.database.snapshot().purchases:
        if row.purchase_id == purchase_id:
            return row.created_position
    msg = f"no row for {purchase_id}"
    raise LookupError(msg)


def _tamper_balance(service: ReadModelService, customer: str, account: str, balance: str) -> None:
    database = service.database
    if isinstance(database, MemoryViewDatabase):
        accounts = database._tables.accounts["readmodel_ledger_accounts"]
        for key, row in list(accounts.items()):
            if row.customer_id == customer and row.account.value == account:
                accounts[key] = evolve(row, balance=Decimal(balance))
        return
    _tamper_view(
        service,
        "UPDATE readmodel_ledger_accounts SET balance = ? WHERE customer_id = ? AND account = ?",
        (balance, customer, account),
    )


def test_views_behind_the_cut_are_caught_up_to_it_and_match_the_export_row_by_row(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    populate(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    with read_models(ledger) as service:
        live = ReadModelLiveLedger(service)
        report = verify_lines(lines)
        comparison = compare_with_live(report, live)
        assert live.caught_up == EVENT_COUNT
        assert service.read_models.position() == EVENT_COUNT
    assert comparison.differences == []
    assert comparison.purchases == 5
    assert comparison.balances == 16  # as in test_audit_live: units add brokerage accounts


def test_views_past_the_cut_are_compared_exactly_at_the_cut_even_with_a_clock_gone_back(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    purchases = populate(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    # After the cut, stamped *before* the cut's events: a balance "as of the cut's time" would
    # count these, and the purchase rows of B and E no longer hold their state at the cut.
    clock.advance(-60)
    ledger.authorize(authorize(purchases.b.id, namespace="globex"))
    ledger.settle(settle(purchases.e.id, namespace="globex"))
    ledger.initiate(external_purchase(customer_id="cust-a", credit_amount="7"))
    with read_models(ledger) as service:
        service.runner.catch_up()
        assert service.read_models.position() == EVENT_COUNT + 4  # the initiate writes 2
        comparison = _compare(service, lines)
    assert comparison.differences == []
    assert comparison.purchases == 5
    assert any("rolling the export's state forward" in note for note in comparison.notes)


def test_a_tampered_purchase_row_fails_naming_the_purchase_and_its_position(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    purchases = populate(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    with read_models(ledger) as service:
        service.runner.catch_up()
        _tamper_purchase_row(service, purchases.d.id, "credit_amount", "80.00")
        comparison = _compare(service, lines)
    first = comparison.differences[0]
    # D was initiated at position 9; the credit amount is fixed by its initiation.
    assert (first.kind, first.key, first.position) == ("purchase", str(purchases.d.id), 9)
    assert first.export == {"credit_amount": Decimal("30.00")}
    assert first.live == {"credit_amount": Decimal("80.00")}


def test_a_tampered_status_fails_at_the_purchases_latest_event(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    purchases = populate(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    with read_models(ledger) as service:
        service.runner.catch_up()
        _tamper_purchase_row(service, purchases.a.id, "status", "active.payment.authorized")
        comparison = _compare(service, lines)
    assert [(d.kind, d.key, d.position) for d in comparison.differences] == [
        ("purchase", str(purchases.a.id), 8)
    ]
    assert comparison.differences[0].detail == "differs in status"


def test_a_tampered_balance_row_fails_at_the_last_event_that_moved_it(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    populate(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    with read_models(ledger) as service:
        service.runner.catch_up()
        _tamper_balance(service, "cust-c", "customer_fbo", "11")
        comparison = _compare(service, lines)
    assert [(d.kind, d.key, d.position) for d in comparison.differences] == [
        ("balance", "/".join(BalanceKey("acme", "cust-c", "USD", "customer_fbo")), 6)
    ]
    assert (comparison.differences[0].export, comparison.differences[0].live) == (
        Decimal("25.00"),
        Decimal("11"),
    )


def test_a_tampered_view_diverges_from_the_export_while_the_event_store_does_not(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    purchases = populate(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    report = verify_lines(lines)
    with read_models(ledger) as service:
        service.runner.catch_up()
        _tamper_purchase_row(service, purchases.b.id, "status", "active.payment.authorized")
        comparisons = compare_with_sources(
            report,
            {"read_models": ReadModelLiveLedger(service), "event_store": StoreLiveLedger(ledger)},
        )
    assert {c.source: len(c.differences) for c in comparisons} == {
        "read_models": 1,
        "event_store": 0,
    }


def test_the_read_models_are_compared_on_what_they_book_of_a_wallet(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    populate_wallet(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    report = verify_lines(lines)
    with read_models(ledger) as service:
        service.runner.catch_up()
        comparisons = compare_with_sources(
            report,
            {"read_models": ReadModelLiveLedger(service), "event_store": StoreLiveLedger(ledger)},
        )
    views, store = comparisons
    assert views.differences == store.differences == []
    customer = ("acme", WALLET_CUSTOMER, "USD")
    # Both the event store's and the views' balances hold the consumptions and the expiry.
    export = report.ledger.snapshot(None, wallet_postings=True).balances
    assert BalanceKey(*customer, "customer_accrued") in report.ledger.balances
    assert BalanceKey(*customer, "customer_accrued") in export
    booked = "does not book credit-wallet events"
    assert not any(booked in note for note in views.notes)
    assert not any(booked in note for note in store.notes)


# -- invoices, failed payments and refunds (export format 3) --------------------------------------


def test_invoices_failures_and_refunds_agree_with_the_views_row_by_row(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    populate_credit_changes(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    report = verify_lines(lines)
    with read_models(ledger) as service:
        comparisons = compare_with_sources(
            report,
            {"read_models": ReadModelLiveLedger(service), "event_store": StoreLiveLedger(ledger)},
        )
    views, store = comparisons
    assert views.differences == store.differences == []
    assert views.purchases == store.purchases == 5
    assert views.balances == store.balances == len(report.ledger.balances)


@pytest.mark.parametrize(
    "edit",
    [
        # (purchase, column, value, the purchase's latest event: where the difference shows)
        # R's refunds are at 14 and 16; I's invoice at 2 and its failure at 5; F1 failed at 27.
        pytest.param(("r", "refunded_cash", "40.06", 16), id="refunded cash"),
        pytest.param(("f1", "owed", "0", 27), id="owed after a failure"),
        pytest.param(("i", "failure_reason", "paid after all", 5), id="failure reason"),
        pytest.param(("i", "line_id", "line-2", 5), id="invoice line"),
    ],
)
def test_a_tampered_invoice_failure_or_refund_field_of_a_row_is_named(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path, edit: tuple[str, str, str, int]
) -> None:
    purchase, column, value, position = edit
    changes = populate_credit_changes(ledger, clock)
    purchase_id = getattr(changes, purchase).id
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    with read_models(ledger) as service:
        service.runner.catch_up()
        _tamper_purchase_row(service, purchase_id, column, value)
        comparison = _compare(service, lines)
    assert [(d.kind, d.key, d.position, d.detail) for d in comparison.differences] == [
        ("purchase", str(purchase_id), position, f"differs in {column}")
    ]


def test_views_past_the_cut_roll_the_export_forward_through_failures_and_refunds(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    purchases = populate(ledger, clock)
    lines = export_lines(ledger, tmp_path / "export.jsonl")
    # After the cut: B's payment fails (its credit revoked), D (settled) is refunded in part.
    ledger.fail_payment(fail_payment(purchases.b.id, namespace="globex"))
    clock.advance(1)
    ledger.refund(refund(purchases.d.id, "10"))
    with read_models(ledger) as service:
        service.runner.catch_up()
        assert service.read_models.position() == EVENT_COUNT + 4  # each with its revocation
        comparison = _compare(service, lines)
    assert comparison.differences == []
    assert comparison.purchases == 5
    assert any("rolling the export's state forward" in note for note in comparison.notes)
