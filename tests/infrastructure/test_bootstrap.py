"""The composition root: only our settings decide how the ledger stores events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from eventsourcing.postgres import PostgresFactory

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.bootstrap import open_ledger
from tests.application.builders import external_purchase
from tests.clock import FixedClock

AMBIENT_SWITCHES = {
    # What an operator's shell might carry for some other eventsourcing application.
    "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
    "CREDITLEDGER_POSTGRES_ENABLE_DB_FUNCTIONS": "y",
    "PERSISTENCE_MODULE": "eventsourcing.popo",
    "CREDITLEDGER_PERSISTENCE_MODULE": "eventsourcing.popo",
    "MAPPER_TOPIC": "eventsourcing.persistence:Mapper",
}


@pytest.fixture
def ambient_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AMBIENT_SWITCHES.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("ambient_switches")
def test_postgres_database_functions_stay_off_whatever_the_environment_says(
    backend: str, ledger: CreditLedger
) -> None:
    if backend == "postgres":
        assert ledger.env.get("POSTGRES_ENABLE_DB_FUNCTIONS") == "n"
        assert isinstance(ledger.factory, PostgresFactory)
        assert ledger.factory.datastore.enable_db_functions is False
    else:
        assert ledger.env.get("POSTGRES_ENABLE_DB_FUNCTIONS") is None


@pytest.mark.usefixtures("ambient_switches")
def test_ambient_eventsourcing_variables_do_not_change_the_store(
    backend: str, open_store: Callable[[], CreditLedger]
) -> None:
    if backend == "memory":
        pytest.skip("the in-memory store is what the ambient variables ask for")
    before = open_store()
    purchase = before.initiate_purchase(external_purchase())
    before.close()

    after = open_store()

    assert after.get_purchase(purchase.namespace, purchase.id) == purchase


@pytest.mark.usefixtures("ambient_switches")
def test_events_are_stored_through_our_mapper_whatever_the_environment_says(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate_purchase(external_purchase())

    assert ledger.env.get("MAPPER_TOPIC") == (
        "creditledger.infrastructure.persistence.mapper:PurchaseEventMapper"
    )
    assert ledger.get_purchase(purchase.namespace, purchase.id) == purchase


def test_a_ledger_without_our_mapper_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="MAPPER_TOPIC"):
        CreditLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"})


def test_without_arguments_the_ledger_opens_the_store_named_by_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clock: FixedClock
) -> None:
    path = tmp_path / "fresh" / "ledger.sqlite"
    monkeypatch.setenv("CREDITLEDGER_DATABASE_URL", f"sqlite:///{path}")

    with open_ledger(clock=clock) as ledger:
        purchase = ledger.initiate_purchase(external_purchase())
    with open_ledger(clock=clock) as reopened:
        assert reopened.get_purchase(purchase.namespace, purchase.id) == purchase

    assert path.is_file()
