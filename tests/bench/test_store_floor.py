"""The catch-up's raw-driver floor sends the projector's very writes: replayed into emptied read
models, they give back exactly the read models the projector built."""

from __future__ import annotations

import pytest

from bench.catchup import load_history, synthetic_history
from bench.rebuilds import WAYS, measure_rebuilds
from bench.store_floor import RecordedWrites, recorded_writes, replay_writes
from bench.stores import fresh_store
from creditledger.application.projections.source import EventLog
from creditledger.infrastructure.bootstrap import open_view_database
from creditledger.infrastructure.projections.runner import ProjectionRunner
from creditledger.infrastructure.projections.sql.store import SqlViewDatabase


@pytest.fixture
def sql_backend(backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "memory":
        pytest.skip("the floor is the SQL stores' own writes")
    if backend == "postgres":
        request.getfixturevalue("postgres_session_schema")
    return backend


def test_the_recorded_writes_rebuild_the_projectors_read_models(sql_backend: str) -> None:
    history = synthetic_history(600, seed=3)
    with (
        fresh_store(sql_backend) as store,  # type: ignore[arg-type]
        store.open_ledger() as ledger,
    ):
        load_history(ledger, history)
        with open_view_database(ledger) as database:
            assert isinstance(database, SqlViewDatabase)
            # Small batches: several transactions, rows changed again in later ones.
            runner = ProjectionRunner(EventLog(ledger), database, batch_size=97)
            with recorded_writes(database) as recorded:
                assert runner.catch_up() == len(history)
            built = database.snapshot()
            assert len(recorded.transactions) >= len(history) // 97
            assert recorded.rows > len(history)

            replay_writes(database, RecordedWrites())  # nothing sent: the models are empty
            emptied = database.snapshot()
            assert emptied.purchases == []
            assert emptied.entries == []
            assert emptied.accounts == []

            seconds = replay_writes(database, recorded)

            assert seconds > 0
            assert database.snapshot() == built
            assert built.purchases
            assert built.entries


def test_the_rebuild_benchmark_times_each_way_on_every_sql_store(sql_backend: str) -> None:
    rates = measure_rebuilds(sql_backend, 300, 1)  # type: ignore[arg-type]
    assert list(rates) == list(WAYS)
    assert all(len(runs) == 1 and runs[0] > 0 for runs in rates.values())
