"""``projections verify`` with the ledger model rebuilt by a second process.

``operations.verify`` rebuilds every model into a scratch SQLite file and compares it with the
live views. From ``apart_from`` events, on a store another process can read (PostgreSQL or a
SQLite file), a child rebuilds the ledger model into a scratch file of its own meanwhile, and
each model is compared with the file that holds it: the report is the one a single process
gives, differences included. If the child fails, this process rebuilds the ledger itself.
"""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.source import EventLog
from creditledger.infrastructure.projections import apart
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.operations import VerifyReport, verify
from creditledger.infrastructure.projections.runner import ProjectionRunner
from tests.clock import FixedClock
from tests.infrastructure.test_projection_cli import tamper
from tests.infrastructure.test_projection_rebuild import PURCHASES, fill

ONE_PROCESS = 10**12
"""An ``apart_from`` no log reaches: verify in one process."""


def caught_up(ledger: CreditLedger, database: ViewDatabase, clock: FixedClock) -> EventLog:
    fill(ledger, clock)
    log = EventLog(ledger)
    ProjectionRunner(log, database, batch_size=7).catch_up()
    return log


def tampered(
    ledger: CreditLedger, database: ViewDatabase, clock: FixedClock, backend: str, statement: str
) -> EventLog:
    """The live views caught up, then changed by ``statement`` behind the projector's back."""
    if backend == "memory":
        pytest.skip("the in-memory views are not reached by SQL (and verified in one process)")
    log = caught_up(ledger, database, clock)
    tamper(ledger, statement)
    return log


def without_apart(report: VerifyReport) -> dict[str, object]:
    found = report.as_dict(limit=1_000)
    del found["rebuilt_apart"]
    return found


def test_a_store_other_processes_can_read_is_verified_with_a_second_process(
    ledger: CreditLedger, database: ViewDatabase, clock: FixedClock, backend: str
) -> None:
    log = caught_up(ledger, database, clock)

    report = verify(log, database, apart_from=0)

    # The in-memory store's events are this process's alone.
    assert report.apart == (() if backend == "memory" else ("ledger",))
    assert report.ok, report.as_dict()
    assert report.rows["purchases"] == PURCHASES
    assert without_apart(report) == without_apart(verify(log, database, apart_from=ONE_PROCESS))


def test_a_short_log_is_verified_in_one_process(
    ledger: CreditLedger, database: ViewDatabase, clock: FixedClock
) -> None:
    log = caught_up(ledger, database, clock)

    report = verify(log, database, apart_from=log.head() + 1)

    assert report.apart == ()
    assert report.ok, report.as_dict()


@pytest.mark.parametrize(
    "statement",
    [
        # The ledger model's tables: compared with the second process's file.
        "UPDATE readmodel_ledger_entries SET amount = amount + 1 WHERE line = 0 AND version = 1",
        "DELETE FROM readmodel_ledger_accounts WHERE account = 'customer_fbo'",
        # Another model's: compared with this process's file.
        "DELETE FROM readmodel_purchases WHERE customer_id = 'cust-0'",
    ],
    ids=["entry-changed", "accounts-deleted", "purchases-deleted"],
)
def test_a_tampered_view_shows_the_same_differences_as_with_one_process(
    ledger: CreditLedger,
    database: ViewDatabase,
    clock: FixedClock,
    backend: str,
    statement: str,
) -> None:
    log = tampered(ledger, database, clock, backend, statement)

    report = verify(log, database, apart_from=0)

    assert report.apart == ("ledger",)
    assert not report.ok
    assert without_apart(report) == without_apart(verify(log, database, apart_from=ONE_PROCESS))


@pytest.mark.usefixtures("second_process_fails")
def test_when_the_second_process_fails_this_one_rebuilds_the_ledger(
    ledger: CreditLedger,
    database: ViewDatabase,
    clock: FixedClock,
    backend: str,
) -> None:
    statement = "DELETE FROM readmodel_ledger_accounts WHERE account = 'customer_fbo'"
    log = tampered(ledger, database, clock, backend, statement)

    report = verify(log, database, apart_from=0)

    assert report.apart == ()
    assert without_apart(report) == without_apart(verify(log, database, apart_from=ONE_PROCESS))
    assert {difference.table for difference in report.differences} == {"accounts"}


def _ledger_built(directory: Path) -> int:
    """How far the second process's scratch file holds the ledger model (0: not made yet)."""
    for scratch in directory.glob("creditledger-verify-*/rebuilt-apart.sqlite"):
        try:
            with closing(sqlite3.connect(f"file:{scratch}?mode=ro", uri=True, timeout=5)) as db:
                found = db.execute(
                    "SELECT position FROM readmodel_tracking WHERE name = 'ledger'"
                ).fetchone()
        except sqlite3.OperationalError:  # its tables not made yet
            return 0
        return int(found[0]) if found else 0
    return 0


@pytest.fixture
def scratch_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where verify makes its scratch files for the test (the default temporary directory)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture(params=[None, 600.0], ids=["polled", "not-polled"])
def child_polled(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """How often verify looks at the child while waiting: as shipped, or never before it ends
    (as when the child is done before the first look, on a loaded machine)."""
    if request.param is not None:
        monkeypatch.setattr(apart, "STOP_CHECK_SECONDS", request.param)


@pytest.mark.usefixtures("child_polled")
def test_progress_shows_the_slower_process_and_ends_at_the_head(
    ledger: CreditLedger,
    database: ViewDatabase,
    clock: FixedClock,
    backend: str,
    scratch_directory: Path,
) -> None:
    # The second process builds the ledger model: the bar must not show more than it built
    # (it used to show this process's own rebuild, then stand at its end while the child ran).
    # Not polled while waiting, the bar must still end at the head.
    if backend == "memory":
        pytest.skip("the in-memory store is verified in one process")
    log = caught_up(ledger, database, clock)
    shown: list[tuple[int, int, int]] = []

    def progress(done: int, head: int) -> None:
        shown.append((done, head, _ledger_built(scratch_directory)))

    report = verify(log, database, apart_from=0, progress=progress)

    assert report.apart == ("ledger",)
    assert report.ok, report.as_dict()
    assert all(done <= built for done, _, built in shown), shown
    assert [done for done, _, _ in shown] == sorted(done for done, _, _ in shown)
    assert shown[-1][0] == shown[-1][1] == log.head()
