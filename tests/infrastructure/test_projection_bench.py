"""The catch-up benchmark runs end to end on a small scale (its figures are not asserted)."""

from __future__ import annotations

import pytest

from bench.catchup import measure_catchup, measure_lag, synthetic_history


def test_a_synthetic_history_is_made_of_whole_purchases_in_commit_order() -> None:
    events = synthetic_history(500, seed=3)
    seen: dict[object, int] = {}
    for event in events:
        assert event.originator_version == seen.get(event.originator_id, 0) + 1
        seen[event.originator_id] = event.originator_version
    assert len(events) >= 500


def test_the_catch_up_measurement_projects_every_event(
    backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgres":
        request.getfixturevalue("postgres_session_schema")  # skips (or fails in CI) when down
    result = measure_catchup(backend, 300, runs=1, batch_size=50)  # type: ignore[arg-type]
    assert result["events"] >= 300
    assert result["catchup_events_per_second"] > 0
    assert result["replay_events_per_second"] > 0
    if backend == "memory":
        assert result["writes_alone_events_per_second"] is None
    else:
        assert result["writes_alone_events_per_second"] > 0
    # The operator's catch-up is measured on PostgreSQL only, where it has a second process.
    if backend == "postgres":
        assert result["operator_catchup_events_per_second"] > 0
    else:
        assert result["operator_catchup_events_per_second"] is None
    assert result["caught_up_apart"] == []  # 300 events: too few to start one


def test_the_operators_catch_up_on_postgresql_is_measured_with_its_second_process(
    request: pytest.FixtureRequest,
) -> None:
    request.getfixturevalue("postgres_session_schema")
    result = measure_catchup("postgres", 300, runs=1, batch_size=50, apart_from=0)
    assert result["caught_up_apart"] == ["ledger"]
    assert result["operator_catchup_events_per_second"] > 0


def test_the_lag_measurement_ends_caught_up() -> None:
    result = measure_lag("sqlite", seconds=0.5, writers=1)
    assert result["caught_up_after_writes"] is True
    assert result["events_per_second"] > 0
