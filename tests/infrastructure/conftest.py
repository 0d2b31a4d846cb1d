"""Shared fixtures: the relay tests' broker (a private nats-server per test session, never the
shared one), the ledger's read-model store, and the PostgreSQL-only mark of the second-process
tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.bootstrap import open_view_database, settings_of
from creditledger.infrastructure.projections import apart
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.relay.broker import NatsServerProcess, find_nats_server
from tests.stores import postgres_required


def nats_server_or_skip() -> None:
    if find_nats_server() is None:
        reason = "nats-server is not installed (apt-get install -y nats-server)"
        if postgres_required():
            pytest.fail(f"{reason}; CI requires the relay tests")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def nats_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServerProcess]:
    nats_server_or_skip()
    with NatsServerProcess(tmp_path_factory.mktemp("nats")) as broker:
        yield broker


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[NatsServerProcess]:
    """A broker for one test that kills and restarts it."""
    nats_server_or_skip()
    with NatsServerProcess(tmp_path / "nats") as broker:
        yield broker


@pytest.fixture
def postgres_only(backend: str) -> None:
    """For the tests of a second process applying the ledger model (``apart``)."""
    if backend != "postgres":
        pytest.skip("the ledger model is applied in a second process on PostgreSQL only")


@pytest.fixture
def database(ledger: CreditLedger) -> Iterator[ViewDatabase]:
    """The read models' store next to the ledger's events (closed after the test)."""
    views = open_view_database(ledger)
    try:
        yield views
    finally:
        views.close()


@pytest.fixture
def second_process_fails(ledger: CreditLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second process (``apart``) is told to open a store it cannot: a SQLite file where
    none can be made. It fails at once, and its parent does its share."""
    settings = settings_of(ledger)
    assert settings is not None
    unopenable = settings.model_copy(
        update={"database_url": "sqlite:////proc/no-such-directory/ledger.sqlite"}
    )
    monkeypatch.setattr(apart, "settings_of", lambda _: unopenable)
