"""The composition root: only our settings decide how the ledger stores events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.postgres import PostgresFactory

from creditledger.application.commands import ConsumeCredits
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.bootstrap import ledger_env, open_ledger, open_read_models
from creditledger.infrastructure.settings import Settings
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
    purchase = before.initiate(external_purchase()).purchase
    before.close()

    after = open_store()

    assert after.get_purchase(purchase.namespace, purchase.id) == purchase


@pytest.mark.usefixtures("ambient_switches")
def test_events_are_stored_through_our_mapper_whatever_the_environment_says(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(external_purchase()).purchase

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
        purchase = ledger.initiate(external_purchase()).purchase
    with open_ledger(clock=clock) as reopened:
        assert reopened.get_purchase(purchase.namespace, purchase.id) == purchase

    assert path.is_file()


def test_read_models_are_opened_only_for_a_ledger_the_composition_root_built() -> None:
    ledger = CreditLedger(ledger_env(Settings(database_url="memory://")))
    try:
        with pytest.raises(ValueError, match="open_ledger"):
            open_read_models(ledger)
    finally:
        ledger.close()


def test_the_read_models_follow_the_store_the_ledger_was_opened_on(
    store_url: str, clock: FixedClock
) -> None:
    with open_ledger(store_url, clock=clock) as ledger:
        purchase = ledger.initiate(external_purchase()).purchase
    # A restarted process: a new ledger on the same store, and its read models.
    with open_ledger(store_url, clock=clock) as ledger, open_read_models(ledger) as service:
        service.read_models.wait_until(ledger.head_position(), timeout=30)
        page = service.read_models.list_purchases(purchase.namespace)
    expected = [] if store_url == "memory://" else [purchase.id]
    assert [row.id for row in page.items] == expected


def test_new_ids_come_from_the_source_the_ledger_was_opened_with() -> None:
    issued = [UUID(int=n) for n in (7, 8)]
    source = iter(issued)
    with open_ledger("memory://", clock=FixedClock(), ids=lambda: next(source)) as ledger:
        keyless = ledger.initiate(external_purchase(customer_id="cust-ids")).purchase
        keyed = ledger.initiate(
            external_purchase(customer_id="cust-ids", idempotency_key="k-1")
        ).purchase
        spent = ledger.consume(
            ConsumeCredits(
                namespace=keyless.namespace, customer_id="cust-ids", currency="USD", amount="1"
            )
        ).consumption
    # A key derives the id (a retry finds its purchase); only keyless writes draw new ones.
    assert keyless.id == issued[0]
    assert keyed.id not in issued
    assert spent.id == issued[1]
