"""The benchmark measures what it says, on every backend: tiny sizes, no timing asserted."""

from __future__ import annotations

import pytest

from bench.growth import PurchaseCopies, fill
from bench.lifecycles import lifecycle_rows
from bench.rawdriver import raw_inserts
from bench.stores import BACKENDS, Backend, Store, fresh_store
from bench.suite import Scale, append_rows
from bench.timing import check_event_count, split


@pytest.fixture
def bench_backend(backend: str, request: pytest.FixtureRequest) -> Backend:
    """The backend under test; on PostgreSQL, skipped (or failed in CI) like every other test."""
    if backend == "postgres":
        request.getfixturevalue("postgres_session_schema")
    by_name: dict[str, Backend] = {name: name for name in BACKENDS}
    return by_name[backend]


def test_a_lifecycle_row_counts_three_events_per_lifecycle_on_both_sides(
    bench_backend: Backend,
) -> None:
    lifecycles, replay = lifecycle_rows(bench_backend, 4, 1, 1, section="3", replay=True)
    assert lifecycles.measured is not None
    assert lifecycles.baseline is not None
    for rate in (lifecycles.measured, lifecycles.baseline):
        assert [(run.operations, run.events) for run in rate.runs] == [(4, 12)]
    assert lifecycles.ratio is not None
    assert lifecycles.ratio > 0
    assert replay.section == "5"
    assert replay.measured is not None
    assert replay.baseline is not None
    # The replay covers the warm-up lifecycles too: every purchase in the store.
    assert replay.measured.runs[0].operations == replay.baseline.runs[0].operations >= 4


def test_concurrent_callers_complete_every_lifecycle(bench_backend: Backend) -> None:
    if bench_backend == "memory":
        pytest.skip("concurrent callers are measured on SQLite and PostgreSQL only")
    (row,) = lifecycle_rows(bench_backend, 8, 1, 4, section="3", replay=False)
    assert row.measured is not None
    assert row.baseline is not None
    assert row.measured.runs[0].events == row.baseline.runs[0].events == 24


def test_append_rows_put_the_library_next_to_the_raw_driver(bench_backend: Backend) -> None:
    rows = append_rows(bench_backend, 1, Scale(0.01))
    if bench_backend == "memory":
        assert [row.baseline for row in rows] == [None]
        return
    assert [row.title for row in rows] == [
        "appends, 1 event/save, 1 thread",
        "appends, 1 event/save, 32 threads",
        "appends, 10 events/save, 1 thread",
    ]
    for row in rows:
        assert row.measured is not None
        assert row.baseline is not None
        assert row.measured.runs[0].events == row.baseline.runs[0].events


def test_raw_inserts_write_every_row_in_batches(bench_backend: Backend) -> None:
    if bench_backend == "memory":
        pytest.skip("no raw driver for the in-memory store")
    with fresh_store(bench_backend) as store:
        timing = raw_inserts(store, 40, 2, 10, warmup=1)
    assert (timing.operations, timing.events) == (4, 40)


def test_bulk_loaded_purchases_read_back_final_through_the_ledger(bench_backend: Backend) -> None:
    with fresh_store(bench_backend) as store, store.open_ledger() as ledger:
        fill([(ledger, store)], 30)
        assert ledger.recorder.max_notification_id() == 30


def test_bulk_load_copies_are_the_mappers_own_bytes() -> None:
    with Store("memory", "memory://").open_ledger() as ledger:
        copies = PurchaseCopies(ledger.mapper)
        for index in (0, 1, 12345):
            copies.check(index)


def test_a_run_that_lost_events_does_not_count() -> None:
    with pytest.raises(RuntimeError, match="holds 5 events, expected 6"):
        check_event_count(5, 6, "lifecycles")


def test_callers_share_the_work_evenly_and_completely() -> None:
    shares = split(range(10), 3)
    assert sorted(item for share in shares for item in share) == list(range(10))
    assert [len(share) for share in shares] == [4, 3, 3]
