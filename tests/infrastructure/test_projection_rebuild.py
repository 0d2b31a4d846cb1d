"""Rebuild: fresh tables filled from the log, swapped in with no window where a view is empty."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.rows import ReadModelName
from creditledger.application.projections.source import EventLog
from creditledger.domain.ledger import Account
from creditledger.infrastructure.bootstrap import open_read_models
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.operations import rebuild, rebuild_together, verify
from creditledger.infrastructure.projections.runner import Progress
from creditledger.infrastructure.projections.service import ReadModelService
from tests.clock import FixedClock
from tests.readmodels_support import authorize, initiate, read_models, settle

PURCHASES = 30


@pytest.fixture
def views(ledger: CreditLedger) -> Iterator[ReadModelService]:
    with read_models(ledger) as service:
        yield service


def fill(ledger: CreditLedger, clock: FixedClock, count: int = PURCHASES) -> None:
    for index in range(count):
        purchase = initiate(ledger, customer=f"cust-{index % 3}")
        clock.advance(1)
        if index % 2:
            settle(ledger, authorize(ledger, purchase))


def _rebuilt_during_commands(
    ledger: CreditLedger, clock: FixedClock, rebuilding: Callable[[ReadModelService], object]
) -> None:
    """Rebuild with ``rebuilding`` while commands run and the projector follows them; the
    views then equal a rebuild from the log."""
    fill(ledger, clock, 10)
    with open_read_models(ledger, batch_size=5) as service:
        writer = threading.Thread(target=fill, args=(ledger, clock, 20))
        writer.start()
        try:
            rebuilding(service)
        finally:
            writer.join()
        assert service.read_models.wait_until(timeout=30)
        service.stop()
        assert_views_equal_the_log(service.log, service.database)


def assert_views_equal_the_log(log: EventLog, database: ViewDatabase) -> None:
    """``projections verify`` finds no difference, over the 30 purchases of ``fill``."""
    report = verify(log, database)
    assert report.ok, report.as_dict()
    assert report.rows["purchases"] == PURCHASES


def test_readers_see_the_complete_view_before_during_and_after_a_rebuild(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    fill(ledger, clock)
    views.runner.catch_up()
    read = views.read_models
    expected_fbo = read.balances("acme", "cust-0").balance("USD", Account.CUSTOMER_FBO)
    seen_counts: list[int] = []
    seen_fbo: list[object] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen_counts.append(len(read.list_purchases("acme", limit=1000).items))
            seen_fbo.append(read.balances("acme", "cust-0").balance("USD", Account.CUSTOMER_FBO))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for model in ReadModelName:
            rebuild(views.log, views.database, model, batch_size=7)
        rebuild_together(views.log, views.database, list(ReadModelName), batch_size=7)
    finally:
        stop.set()
        thread.join()
    assert seen_counts
    assert set(seen_counts) == {PURCHASES}
    assert set(seen_fbo) == {expected_fbo}
    assert verify(views.log, views.database).ok


def test_a_rebuild_while_the_projector_runs_and_commands_continue_ends_equal_to_the_log(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    def rebuilding(service: ReadModelService) -> None:
        rebuild(service.log, service.database, ReadModelName.LEDGER, batch_size=5)
        rebuild(service.log, service.database, ReadModelName.PURCHASES, batch_size=5)

    _rebuilt_during_commands(ledger, clock, rebuilding)


def test_a_rebuild_clears_what_a_killed_rebuild_left_behind(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    fill(ledger, clock, 5)
    views.runner.catch_up()
    # What a rebuild process killed half-way leaves: its fresh tables and tracking row.
    views.database.create_rebuild_tables(ReadModelName.RECEIVABLES)

    report = rebuild(views.log, views.database, ReadModelName.RECEIVABLES)

    assert report.position == views.log.head()
    assert set(views.database.positions()) == {model.value for model in ReadModelName}
    assert verify(views.log, views.database).ok


def test_a_rebuild_of_every_model_in_one_pass_gives_the_projectors_views(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    fill(ledger, clock)
    views.runner.catch_up()
    before = views.database.snapshot()

    reports = rebuild_together(views.log, views.database, list(ReadModelName), batch_size=11)

    head = views.log.head()
    assert [report.model for report in reports] == [model.value for model in ReadModelName]
    assert {(report.position, report.events) for report in reports} == {(head, head)}
    assert views.database.snapshot() == before
    assert set(views.database.positions()) == {model.value for model in ReadModelName}


def test_a_rebuild_in_one_pass_while_the_projector_runs_and_commands_continue_ends_equal_to_the_log(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    _rebuilt_during_commands(
        ledger,
        clock,
        lambda service: rebuild_together(
            service.log, service.database, list(ReadModelName), batch_size=5
        ),
    )


Rebuilding = Callable[[ReadModelService, Progress], object]

REBUILDS: dict[str, Rebuilding] = {
    "one model": lambda views, progress: rebuild(
        views.log, views.database, ReadModelName.LEDGER, batch_size=3, progress=progress
    ),
    "every model in one pass": lambda views, progress: rebuild_together(
        views.log, views.database, list(ReadModelName), batch_size=3, progress=progress
    ),
}


@pytest.mark.parametrize("rebuilding", REBUILDS.values(), ids=REBUILDS.keys())
def test_an_interrupted_rebuild_leaves_the_live_views_and_nothing_else(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock, rebuilding: Rebuilding
) -> None:
    fill(ledger, clock, 10)
    views.runner.catch_up()
    before = views.database.snapshot()

    def interrupt(position: int, head: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rebuilding(views, interrupt)

    assert views.database.snapshot() == before
    assert set(views.database.positions()) == {model.value for model in ReadModelName}
    # The next rebuild starts clean.
    rebuild_together(views.log, views.database, list(ReadModelName))
    assert views.database.snapshot() == before


@pytest.mark.usefixtures("postgres_only")
def test_on_postgresql_a_second_process_builds_the_ledger_model_meanwhile(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    fill(ledger, clock)
    views.runner.catch_up()
    before = views.database.snapshot()

    reports = rebuild_together(views.log, views.database, list(ReadModelName), apart_from=0)

    assert {report.model: report.apart for report in reports} == {
        "purchases": False,
        "ledger": True,
        "receivables": False,
        "settled_revenue": False,
    }
    head = views.log.head()
    assert {(report.position, report.events) for report in reports} == {(head, head)}
    assert views.database.snapshot() == before
    assert set(views.database.positions()) == {model.value for model in ReadModelName}


@pytest.mark.usefixtures("postgres_only", "second_process_fails")
def test_when_the_second_process_fails_this_one_builds_its_part(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    fill(ledger, clock)
    views.runner.catch_up()
    before = views.database.snapshot()

    reports = rebuild_together(views.log, views.database, list(ReadModelName), apart_from=0)

    assert not any(report.apart for report in reports)
    assert views.database.snapshot() == before


@pytest.mark.usefixtures("postgres_only")
def test_a_rebuild_with_a_second_process_during_commands_and_a_projector_ends_equal_to_the_log(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    built_apart: list[str] = []

    def rebuilding(service: ReadModelService) -> None:
        reports = rebuild_together(
            service.log, service.database, list(ReadModelName), batch_size=5, apart_from=0
        )
        built_apart.extend(report.model for report in reports if report.apart)

    _rebuilt_during_commands(ledger, clock, rebuilding)
    assert built_apart == ["ledger"]
