"""How the read models are stored: exact amounts, and an index behind every "as of" lookup."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import fields

import psycopg
import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.projections.layout import Table
from creditledger.infrastructure.projections.service import ReadModelService
from creditledger.infrastructure.projections.tables import SPECS
from tests.readmodels_support import initiate, read_models
from tests.stores import POSTGRES_URL


@pytest.fixture
def views(ledger: CreditLedger) -> Iterator[ReadModelService]:
    with read_models(ledger) as service:
        yield service


def test_every_table_has_exactly_its_rows_fields_as_columns() -> None:
    for spec in SPECS.values():
        assert spec.names == [field.name for field in fields(spec.row_type)]  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_keeps_amounts_as_exact_decimal_text(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    initiate(ledger, amount="100.123", cost_basis="0.1234")
    views.runner.catch_up()
    with sqlite3.connect(ledger.env["SQLITE_DBNAME"]) as connection:
        row = connection.execute(
            "SELECT typeof(credit_amount), credit_amount, cost_basis, payment_amount "
            "FROM readmodel_purchases"
        ).fetchone()
        balances = connection.execute(
            "SELECT DISTINCT typeof(balance_after) FROM readmodel_ledger_entries"
        ).fetchall()
    assert row == ("text", "100.12", "0.1234", "12.35")
    assert balances == [("text",)]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_answers_a_balance_as_of_with_an_index_search(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    with sqlite3.connect(ledger.env["SQLITE_DBNAME"]) as connection:
        plan = connection.execute(
            "EXPLAIN QUERY PLAN SELECT balance_after FROM readmodel_ledger_entries "
            "WHERE namespace = ? AND customer_id = ? AND currency = ? AND account = ? "
            "AND at <= ? ORDER BY at DESC, position DESC, line DESC LIMIT 1",
            ("acme", "cust-1", "USD", "wash", "2026-01-01T00:00:00.000000+00:00"),
        ).fetchall()
    details = " ".join(str(step[-1]) for step in plan)
    assert "SEARCH readmodel_ledger_entries USING INDEX" in details
    assert "by_account_time" in details
    assert "TEMP B-TREE" not in details


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_keeps_amounts_as_numeric_and_can_answer_as_of_from_the_index(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    schema = ledger.env["POSTGRES_SCHEMA"]
    with psycopg.connect(POSTGRES_URL) as connection:
        types: dict[str, str] = dict(
            connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                (schema, f"readmodel_{Table.ENTRIES.value}"),
            ).fetchall()
        )
        connection.execute("SET enable_seqscan = off")
        plan = connection.execute(
            f'EXPLAIN SELECT balance_after FROM "{schema}".readmodel_ledger_entries '  # noqa: S608
            "WHERE namespace = 'acme' AND customer_id = 'c' AND currency = 'USD' "
            "AND account = 'wash' AND at <= now() "
            "ORDER BY at DESC, position DESC, line DESC LIMIT 1"
        ).fetchall()
    assert types["amount"] == types["balance_after"] == "numeric"
    assert types["at"] == "timestamp with time zone"
    text = " ".join(str(line[0]) for line in plan)
    assert "Index Scan Backward using ix_ledger_entries_" in text
    assert "Sort" not in text
