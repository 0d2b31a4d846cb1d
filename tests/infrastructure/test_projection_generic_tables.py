"""Every read model table through one generic access: declared once, kept alike by every store.

A table's declaration (``ViewTable`` in ``rows.py``) is all a store needs: its columns come from
the row's fields, the models' tables from the declarations, and the buffered transaction, the
SQL writer and the memory store read, write and scan any table the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from creditledger.application.projections.compare import compare
from creditledger.application.projections.rows import (
    TABLES,
    AccountBalance,
    LedgerEntry,
    PurchaseRow,
    ReadModelName,
    ReadModelSnapshot,
    ReceivableRow,
    RevenueRow,
    Tables,
    ViewTable,
    evolve,
)
from creditledger.domain.ledger import Account
from creditledger.infrastructure.projections.buffer import in_range
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.layout import MODEL_TABLES
from creditledger.infrastructure.projections.memory import MemoryViewDatabase
from creditledger.infrastructure.projections.sqlite import SqliteViewDatabase
from creditledger.infrastructure.projections.tables import Kind, column_of, spec_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = ("acme", "cust-1", "USD", Account.CUSTOMER_FBO)
BY_TIME = Tables.ENTRIES.index("by_account_time")


@pytest.fixture(params=["memory", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ViewDatabase]:
    found: ViewDatabase = (
        MemoryViewDatabase()
        if request.param == "memory"
        else SqliteViewDatabase(str(tmp_path / "views.sqlite"))
    )
    with found:
        yield found


def entry(position: int, minutes: int, *, line: int = 0, balance: str = "1") -> LedgerEntry:
    return LedgerEntry(
        purchase_id=uuid4(),
        version=1,
        line=line,
        position=position,
        transaction_group_id=uuid4(),
        namespace=KEY[0],
        customer_id=KEY[1],
        currency=KEY[2],
        account=KEY[3],
        cost_basis=None,
        amount=Decimal(1),
        at=T0 + timedelta(minutes=minutes),
        balance_after=Decimal(balance),
    )


def test_every_model_has_its_tables_and_every_table_one_model() -> None:
    assert set(MODEL_TABLES) == set(ReadModelName)
    assert all(MODEL_TABLES[model] for model in ReadModelName)
    assert [table for tables in MODEL_TABLES.values() for table in tables] == list(TABLES)
    assert len({table.name for table in TABLES}) == len(TABLES)
    snapshot_fields = set(vars(ReadModelSnapshot(positions={})))
    assert {table.snapshot for table in TABLES} <= snapshot_fields


def test_a_rows_key_is_its_key_columns_values() -> None:
    first = entry(7, 0, line=2)
    assert Tables.ENTRIES.key_of(first) == (7, 2)
    revenue = RevenueRow("acme", "USD", T0.date(), Decimal(1), Decimal(2), 1, Decimal(0), 0)
    assert Tables.REVENUE.key_of(revenue) == ("acme", T0.date(), "USD")


def test_columns_follow_the_field_types() -> None:
    assert column_of("a", UUID | None).kind is Kind.UUID
    assert column_of("a", UUID | None).nullable
    assert column_of("a", Account).shape is Account
    assert column_of("a", tuple[str, ...]).kind is Kind.JSON
    assert column_of("a", datetime).kind is Kind.TIMESTAMP
    with pytest.raises(TypeError):
        column_of("a", list[int] | set[int])
    with pytest.raises(TypeError):
        column_of("a", float)
    for table in TABLES:
        spec = spec_of(table)
        assert spec.key == table.key
        assert set(spec.key) <= set(spec.names)
        assert all(set(index.columns) <= set(spec.names) for index in table.indexes)


def test_bounds_compare_as_many_columns_as_they_have() -> None:
    values = ("a", T0, 5, 0)
    assert in_range(values, ("a",), (T0 - timedelta(1),), None)
    assert not in_range(values, ("a",), (T0,), None)
    assert in_range(values, ("a",), (T0, 4, 9), (T0, 5, 1))
    assert not in_range(values, ("b",), None, None)


def _scans(database: ViewDatabase) -> dict[str, list[int]]:
    with database.transaction(database.live, ["ledger"]) as transaction:
        before = transaction.scan(
            Tables.ENTRIES, BY_TIME, KEY, below=(T0 + timedelta(minutes=3), 0, 0), descending=True
        )
        after = transaction.scan(Tables.ENTRIES, BY_TIME, KEY, above=(T0 + timedelta(minutes=1),))
        last = transaction.scan(Tables.ENTRIES, BY_TIME, KEY, descending=True, limit=1)
        other = transaction.scan(Tables.ENTRIES, BY_TIME, ("acme", "cust-2", "USD", KEY[3]))
    return {
        "before": [row.position for row in before],
        "after": [row.position for row in after],
        "last": [row.position for row in last],
        "other": [row.position for row in other],
    }


def test_scans_merge_stored_and_buffered_rows_in_index_order(database: ViewDatabase) -> None:
    # Stored: positions 1..4 at minutes 4, 0, 2, 1; then, in one transaction, a new row and a
    # changed one are scanned before they are written.
    with database.transaction(database.live, ["ledger"]) as transaction:
        for position, minutes in ((1, 4), (2, 0), (3, 2), (4, 1)):
            transaction.insert(Tables.ENTRIES, entry(position, minutes))
    assert _scans(database) == {
        "before": [3, 4, 2],
        "after": [3, 1],
        "last": [1],
        "other": [],
    }
    with database.transaction(database.live, ["ledger"]) as transaction:
        transaction.insert(Tables.ENTRIES, entry(5, 3))
        [stored] = transaction.scan(Tables.ENTRIES, BY_TIME, KEY, above=(T0, 2, 0), limit=1)
        assert stored.position == 4
        transaction.put(Tables.ENTRIES, evolve(stored, balance_after=Decimal(9)))
        found = transaction.scan(Tables.ENTRIES, BY_TIME, KEY, above=(T0,))
        assert [(row.position, row.balance_after) for row in found] == [
            (4, Decimal(9)),
            (3, Decimal(1)),
            (5, Decimal(1)),
            (1, Decimal(1)),
        ]
    assert _scans(database)["after"] == [3, 5, 1]
    assert {row.position: row.balance_after for row in database.snapshot().entries}[4] == 9


def test_get_put_and_load_work_alike_for_every_table(database: ViewDatabase) -> None:
    purchase = uuid4()
    rows: dict[ViewTable[Any, Any], Any] = {
        Tables.ACCOUNTS: AccountBalance(*KEY, Decimal(3), 2, T0, 4, 0),
        Tables.RECEIVABLES: ReceivableRow(
            purchase,
            "acme",
            "cust-1",
            "USD",
            Decimal(10),
            Decimal(1),
            T0,
            None,
            None,
            1,
            T0,
            Decimal(1),
        ),
        Tables.REVENUE: RevenueRow(
            "acme", "USD", T0.date(), Decimal(1), Decimal(10), 1, Decimal("0.5"), 1
        ),
    }
    with database.transaction(database.live, list(ReadModelName)) as transaction:
        for table, row in rows.items():
            assert transaction.get(table, table.key_of(row)) is None
            transaction.put(table, row)
            assert transaction.get(table, table.key_of(row)) == row
    with database.transaction(database.live, list(ReadModelName)) as transaction:
        for table, row in rows.items():
            transaction.load(table, [table.key_of(row), table.key_of(row)])
            assert transaction.get(table, table.key_of(row)) == row
            transaction.put(table, row)  # an unchanged row written again stays one row
    snapshot = database.snapshot()
    for table, row in rows.items():
        assert snapshot.rows(table) == [row]
    assert snapshot.rows(Tables.PURCHASES) == []
    assert isinstance(snapshot.purchases, list)


def test_compare_names_every_tables_differences_as_before() -> None:
    purchase = uuid4()
    row = PurchaseRow.__new__(PurchaseRow)
    row.__dict__.update(purchase_id=purchase)
    first = entry(3, 0)
    revenue = RevenueRow("acme", "USD", T0.date(), Decimal(1), Decimal(10), 1, Decimal("0.5"), 1)
    live = ReadModelSnapshot(positions={}, purchases=[row], entries=[first], revenue=[revenue])
    rebuilt = ReadModelSnapshot(positions={})
    found = [(d.model, d.table, d.key) for d in compare(live, rebuilt)]
    assert found == [
        ("purchases", "purchases", str(purchase)),
        ("ledger", "entries", f"{first.purchase_id}/1/0"),
        ("settled_revenue", "settled_revenue", f"acme/USD/{T0.date()}"),
    ]
