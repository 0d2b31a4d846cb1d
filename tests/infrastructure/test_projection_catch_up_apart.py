"""An operator's catch-up with the ledger model caught up by a second process (PostgreSQL).

``operations.catch_up`` is what ``projections run`` calls: on every store it ends with the views
equal to the log; on PostgreSQL, far enough behind, a child process catches the live ledger model
up while this one does the other models, and this one does it all if the child fails.
"""

from __future__ import annotations

import threading
import time

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.rows import ReadModelName
from creditledger.application.projections.source import EventLog
from creditledger.infrastructure.bootstrap import open_view_database
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.layout import live_layout
from creditledger.infrastructure.projections.operations import CatchUpReport, catch_up
from creditledger.infrastructure.projections.runner import ProjectionRunner
from tests.clock import FixedClock
from tests.infrastructure.test_projection_rebuild import assert_views_equal_the_log, fill

MODELS = {model.value for model in ReadModelName}


def runner_of(
    ledger: CreditLedger, database: ViewDatabase, batch_size: int = 7
) -> ProjectionRunner:
    return ProjectionRunner(EventLog(ledger), database, batch_size=batch_size, pause_collector=True)


def assert_equal_to_the_log(ledger: CreditLedger, database: ViewDatabase) -> None:
    log = EventLog(ledger)
    assert database.positions() == dict.fromkeys(MODELS, log.head())
    assert_views_equal_the_log(log, database)


def test_a_catch_up_too_short_for_a_second_process_is_the_runners_own(
    ledger: CreditLedger, database: ViewDatabase, clock: FixedClock
) -> None:
    fill(ledger, clock)

    report = catch_up(runner_of(ledger, database))

    assert report.apart == ()
    assert report.applied == EventLog(ledger).head()
    assert_equal_to_the_log(ledger, database)


def test_only_postgresql_catches_up_apart(
    ledger: CreditLedger, database: ViewDatabase, clock: FixedClock, backend: str
) -> None:
    fill(ledger, clock)

    report = catch_up(runner_of(ledger, database), apart_from=0)

    assert report.apart == (("ledger",) if backend == "postgres" else ())
    assert_equal_to_the_log(ledger, database)


@pytest.mark.usefixtures("postgres_only")
def test_the_second_process_catches_the_live_ledger_model_up(
    ledger: CreditLedger, database: ViewDatabase, clock: FixedClock
) -> None:
    fill(ledger, clock)
    head = EventLog(ledger).head()

    report = catch_up(runner_of(ledger, database), apart_from=0)

    assert report.apart == ("ledger",)
    # This process applied every event to the three other models, and none was left after.
    assert report.applied == head
    assert_equal_to_the_log(ledger, database)
    # Caught up, nothing is started again.
    assert catch_up(runner_of(ledger, database), apart_from=0) == CatchUpReport(0)


@pytest.mark.usefixtures("postgres_only")
def test_a_model_already_caught_up_is_left_to_this_process(
    ledger: CreditLedger, database: ViewDatabase, clock: FixedClock
) -> None:
    fill(ledger, clock, 10)
    ProjectionRunner(
        EventLog(ledger), database, layout=live_layout((ReadModelName.LEDGER,))
    ).catch_up()
    fill(ledger, clock, 20)
    # The ledger model is ahead: the stretch every model must apply is what decides.
    least_behind = EventLog(ledger).head() - database.positions()["ledger"]

    report = catch_up(runner_of(ledger, database), apart_from=least_behind + 1)

    assert report.apart == ()
    assert_equal_to_the_log(ledger, database)


@pytest.mark.usefixtures("postgres_only", "second_process_fails")
def test_when_the_second_process_fails_this_one_catches_the_ledger_up(
    ledger: CreditLedger, database: ViewDatabase, clock: FixedClock
) -> None:
    fill(ledger, clock)

    report = catch_up(runner_of(ledger, database), apart_from=0)

    assert report.apart == ()
    assert_equal_to_the_log(ledger, database)


@pytest.mark.usefixtures("postgres_only")
def test_a_catch_up_apart_during_commands_and_another_projector_ends_equal_to_the_log(
    ledger: CreditLedger, database: ViewDatabase, clock: FixedClock
) -> None:
    fill(ledger, clock, 10)
    other = open_view_database(ledger)
    stop = threading.Event()
    # Another projector on the same views (the service's), one event at a time.
    following = runner_of(ledger, other, batch_size=1)
    follower = threading.Thread(target=following.run_forever, args=(stop,))
    writer = threading.Thread(target=fill, args=(ledger, clock, 20))
    follower.start()
    writer.start()
    try:
        report = catch_up(runner_of(ledger, database, batch_size=3), apart_from=0)
    finally:
        writer.join()
        stop.set()
        other.wake()
        follower.join()
        other.close()
    catch_up(runner_of(ledger, database))
    assert report.apart == ("ledger",)
    assert_equal_to_the_log(ledger, database)


@pytest.mark.usefixtures("postgres_only")
def test_stopping_the_catch_up_stops_the_second_process(
    ledger: CreditLedger, database: ViewDatabase, clock: FixedClock
) -> None:
    fill(ledger, clock)
    stop = threading.Event()

    # Asked to stop once its first batch is in (as Ctrl-C or SIGTERM ask `projections run`).
    report = catch_up(
        runner_of(ledger, database, batch_size=1),
        progress=lambda position, head: stop.set(),
        stop=stop,
        apart_from=0,
    )

    assert report == CatchUpReport(1)
    # The second process is gone: the ledger model no longer moves.
    stopped_at = database.positions()["ledger"]
    time.sleep(1.0)
    assert database.positions()["ledger"] == stopped_at < EventLog(ledger).head()
    # What it had applied is committed once: the next catch-up ends equal to the log.
    catch_up(runner_of(ledger, database))
    assert_equal_to_the_log(ledger, database)
