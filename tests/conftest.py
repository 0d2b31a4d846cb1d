"""Fixtures: every backend-sensitive test runs on in-memory, SQLite and PostgreSQL.

PostgreSQL tests use the local server (``CREDITLEDGER_TEST_POSTGRES_URL``, default database
``test``) in a schema made fresh for the test session and emptied before each test. Where the
server is unreachable they skip with the reason, except in CI (``CI`` or
``CREDITLEDGER_REQUIRE_POSTGRES`` set), where they fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.bootstrap import open_ledger
from tests.clock import FixedClock
from tests.stores import (
    BACKENDS,
    postgres_reachable,
    postgres_required,
    postgres_schema,
    postgres_url,
    truncate_schema,
)


@pytest.fixture(scope="session")
def postgres_session_schema() -> Iterator[str]:
    problem = postgres_reachable()
    if problem is not None:
        if postgres_required():
            pytest.fail(f"{problem} (CI requires the PostgreSQL tests to run)")
        pytest.skip(problem)
    with postgres_schema() as schema:
        yield schema


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL of an empty store of the backend under test."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    schema: str = request.getfixturevalue("postgres_session_schema")
    truncate_schema(schema)
    return postgres_url(schema)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def open_store(store_url: str, clock: FixedClock) -> Iterator[Callable[[], CreditLedger]]:
    """Opens ledgers on the test's store; each one opened is closed after the test.

    Opening a second ledger on the same store is how a test restarts the service. (On the
    in-memory backend each ledger has its own store: restarts are only meaningful on the others.)
    """
    opened: list[CreditLedger] = []

    def open_one() -> CreditLedger:
        ledger = open_ledger(store_url, clock=clock)
        opened.append(ledger)
        return ledger

    yield open_one
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(open_store: Callable[[], CreditLedger]) -> CreditLedger:
    return open_store()
