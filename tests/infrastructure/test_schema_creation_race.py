"""Several servers starting at once on an empty PostgreSQL schema all start (issue 16, point 9).

Each round makes a fresh schema; four processes, released together by a barrier, open a ledger
and its read models on it. Without the schema lock one of them failed with ``relation
"creditledger_events" already exists`` or a duplicate ``pg_type_typname_nsp_index`` key.
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from tests.application.racers import open_each, race_processes
from tests.stores import postgres_schema, postgres_url

RACERS = 4
ROUNDS = 10


@pytest.mark.slow
@pytest.mark.usefixtures("postgres_session_schema")  # skips or fails as every PostgreSQL test
def test_servers_starting_together_on_an_empty_schema_all_start() -> None:
    with ExitStack() as schemas:
        urls = [postgres_url(schemas.enter_context(postgres_schema())) for _ in range(ROUNDS)]

        outcomes = race_processes(RACERS, open_each, (urls,), expected_results=RACERS * ROUNDS)

    failures = [(url, outcome) for url, outcome in outcomes if outcome != "ok"]
    assert failures == []
    assert len(outcomes) == RACERS * ROUNDS
