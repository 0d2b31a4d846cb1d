"""Verify's comparison in bounded memory (issue 14): a merge of two tables in key order, and a
transaction-group balance check fed one entry at a time.

The merge is checked against the meaning of a comparison (every key on either side, compared
row by row) on random tables; the merge of stored values (``compare_stored_table``) against
the merge of the rows they read back as; the balance check against ``unbalanced_groups``,
which sums every group at once, on random entries in key order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditledger.application.projections.compare import (
    GroupBalances,
    OutOfOrderError,
    StoredRows,
    compare_stored_table,
    compare_table,
    unbalanced_groups,
)
from creditledger.application.projections.rows import LedgerEntry, RevenueRow, Tables
from creditledger.domain.ledger import Account

DAY = datetime(2026, 1, 1, tzinfo=UTC).date()
GROUPS = [UUID(int=number) for number in range(1, 5)]


def revenue(namespace: str, amount: int) -> RevenueRow:
    return RevenueRow(namespace, "USD", DAY, Decimal(amount), Decimal(amount), 1, Decimal(0), 0)


def entry(position: int, line: int, group: UUID, amount: int) -> LedgerEntry:
    return LedgerEntry(
        purchase_id=UUID(int=position),
        version=1,
        line=line,
        position=position,
        transaction_group_id=group,
        namespace="acme",
        customer_id="cust-1",
        currency="USD",
        account=Account.CUSTOMER_FBO,
        cost_basis=None,
        amount=Decimal(amount),
        at=datetime(2026, 1, 1, tzinfo=UTC),
        balance_after=Decimal(0),
    )


tables = st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 2), max_size=8)


@given(tables, tables)
def test_the_merge_finds_exactly_the_keys_whose_rows_differ(
    live: dict[str, int], rebuilt: dict[str, int]
) -> None:
    def rows(table: dict[str, int]) -> list[RevenueRow]:
        return [revenue(namespace, amount) for namespace, amount in sorted(table.items())]

    found = list(compare_table(Tables.REVENUE, rows(live), rows(rebuilt)))
    expected = sorted(
        namespace
        for namespace in set(live) | set(rebuilt)
        if live.get(namespace) != rebuilt.get(namespace)
    )
    assert [difference.key.split("/")[0] for difference in found] == expected
    for difference in found:
        namespace = difference.key.split("/")[0]
        assert (difference.live is None) == (namespace not in live)
        assert (difference.rebuilt is None) == (namespace not in rebuilt)


def test_a_key_twice_on_one_side_is_a_difference_of_that_side() -> None:
    row = revenue("acme", 1)
    found = [d.key for d in compare_table(Tables.REVENUE, [row, row], [row])]
    assert found == ["duplicate keys (live)"]


def test_a_side_out_of_key_order_is_refused_rather_than_reported_as_missing_rows() -> None:
    first, second = revenue("acme", 1), revenue("globex", 1)
    with pytest.raises(OutOfOrderError, match="rebuilt"):
        list(compare_table(Tables.REVENUE, [first, second], [second, first]))


Stored = tuple[str, Any]


def stored_revenue(values: Stored) -> RevenueRow:
    """A row read back from (namespace, amount) as a store holds them: the amount as text, an
    integer or a float. The reader tells an integer from the float of its value (equal in
    Python), as a store's reader may."""
    namespace, amount = values
    return RevenueRow(
        namespace,
        "USD",
        DAY,
        Decimal(str(amount)),
        Decimal(0),
        2 if type(amount) is float else 1,
        Decimal(0),
        0,
    )


def stored(values: list[Stored], form: str = "test") -> StoredRows[RevenueRow]:
    read: dict[str, Callable[[Any], Any]] = {"namespace": str, "amount": lambda value: value}
    return StoredRows(
        form=form,
        values=iter(values),
        names=("namespace", "amount"),
        row=stored_revenue,
        key=lambda each: Tables.REVENUE.key_of(stored_revenue(each)),
        column=read.__getitem__,
    )


amounts = st.sampled_from(["1", "1.0", "2", 1, 2, 1.0, 2.0])
stored_tables = st.dictionaries(st.sampled_from("abcdef"), amounts, max_size=6)


@given(stored_tables, stored_tables)
def test_the_merge_of_stored_values_reports_what_the_merge_of_their_rows_reports(
    live: dict[str, Any], rebuilt: dict[str, Any]
) -> None:
    # "1" and "1.0" differ as stored text, not as rows; 1 and 1.0 are equal in Python, not as
    # rows (the reader tells them apart): only the rows' differences may show.
    live_values, rebuilt_values = sorted(live.items()), sorted(rebuilt.items())

    found = list(compare_stored_table(Tables.REVENUE, stored(live_values), stored(rebuilt_values)))

    expected = compare_table(
        Tables.REVENUE,
        [stored_revenue(each) for each in live_values],
        [stored_revenue(each) for each in rebuilt_values],
    )
    assert found == list(expected)


def test_stored_values_equal_in_python_but_read_back_apart_are_a_difference() -> None:
    found = list(
        compare_stored_table(Tables.REVENUE, stored([("acme", 1)]), stored([("acme", 1.0)]))
    )
    assert [(d.key, d.live, d.rebuilt) for d in found] == [
        (d.key, d.live, d.rebuilt)
        for d in compare_table(
            Tables.REVENUE, [stored_revenue(("acme", 1))], [stored_revenue(("acme", 1.0))]
        )
    ]
    assert [
        (d.live["settlements"], d.rebuilt["settlements"]) for d in found if d.live and d.rebuilt
    ] == [(1, 2)]


def test_stored_keys_twice_or_out_of_order_are_found_as_in_rows() -> None:
    twice = [
        d.key
        for d in compare_stored_table(
            Tables.REVENUE, stored([("acme", "1"), ("acme", "2")]), stored([("acme", "1")])
        )
    ]
    assert twice == ["duplicate keys (live)"]
    with pytest.raises(OutOfOrderError, match="rebuilt"):
        list(
            compare_stored_table(
                Tables.REVENUE,
                stored([("acme", "1"), ("globex", "1")]),
                stored([("globex", "1"), ("acme", "1")]),
            )
        )


def test_stored_values_of_two_forms_are_not_compared() -> None:
    with pytest.raises(ValueError, match="two forms"):
        compare_stored_table(Tables.REVENUE, stored([], "one"), stored([], "other"))


runs = st.lists(
    st.tuples(st.sampled_from(GROUPS), st.lists(st.integers(-3, 3), min_size=1, max_size=3)),
    max_size=12,
)


@given(runs)
def test_group_balances_fed_in_key_order_find_what_summing_every_group_finds(
    booked: list[tuple[UUID, list[int]]],
) -> None:
    # Each event books its group's lines at one position; a group may come back later (a
    # corrupt ledger), its runs then balancing only together, or not at all.
    entries = [
        entry(position, line, group, amount)
        for position, (group, amounts) in enumerate(booked, start=1)
        for line, amount in enumerate(amounts)
    ]
    balances = GroupBalances()
    for each in entries:
        balances.add(each)
    assert balances.differences() == unbalanced_groups(entries)
