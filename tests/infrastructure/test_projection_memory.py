"""``projections verify`` and ``rebuild`` in bounded memory (issue 14).

Each job runs in a child process whose address space is capped (``RLIMIT_AS``) at what it uses
after opening the ledger and its views plus ``BUDGET_MIB``, on a log of ``EVENTS`` events. Verify
(rebuilding into a temporary SQLite file and merging both sides in key order) and a rebuild of
every model keep within it, and so does verify with its second process (the ledger model
rebuilt in another process, which inherits the cap). The same child verifying as verify did
before (the live views and a rebuild of them both held in memory, then compared) runs out of
memory on the same log: the limit is low enough to matter.
"""

from __future__ import annotations

import sys

import pytest

from bench.verify import load
from creditledger.application.projections.source import EventLog
from creditledger.infrastructure.bootstrap import open_ledger, open_view_database
from creditledger.infrastructure.projections.runner import ProjectionRunner
from tests.capped import run_capped

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS, /proc"),
    pytest.mark.slow,
]

EVENTS = 40_000
BUDGET_MIB = 128
"""What a job may add to the child's address space; verifying all in memory needs about twice."""

_CHILD = """
import sys
from creditledger.application.projections.compare import compare, unbalanced_groups
from creditledger.application.projections.rows import ReadModelName
from creditledger.application.projections.source import EventLog
from creditledger.infrastructure.bootstrap import open_ledger, open_view_database
from creditledger.infrastructure.projections import operations
from creditledger.infrastructure.projections.memory import MemoryViewDatabase
from creditledger.infrastructure.projections.runner import ProjectionRunner

job, url, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open_ledger(url) as ledger:
    database = open_view_database(ledger)
    log = EventLog(ledger)
    cap_address_space(budget)
    try:
        if job in ("verify", "verify-apart"):
            # verify-apart: the ledger model rebuilt by a second process, which inherits the cap.
            apart_from = 0 if job == "verify-apart" else 10**12
            report = operations.verify(log, database, apart_from=apart_from)
            print(
                "ok" if report.ok else f"{report.count} differences",
                sum(report.rows.values()),
                ",".join(report.apart) or "-",
            )
        elif job == "verify-in-memory":
            live = database.snapshot()
            rebuilt = MemoryViewDatabase()
            ProjectionRunner(log, rebuilt).catch_up(until=live.positions)
            found = compare(live, rebuilt.snapshot()) + unbalanced_groups(live.entries)
            print("ok" if not found else f"{len(found)} differences")
        else:
            events = [operations.rebuild(log, database, model).events for model in ReadModelName]
            print("rebuilt", *events)
    except MemoryError:
        print("out of memory")
    database.close()
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('projection-memory') / 'ledger.sqlite'}"
    with open_ledger(url) as ledger:
        load(ledger, EVENTS)
        with open_view_database(ledger) as database:
            ProjectionRunner(EventLog(ledger), database).catch_up()
    return url


def _in_child(job: str, url: str) -> str:
    return run_capped(_CHILD, job, url, str(BUDGET_MIB))


def test_verify_keeps_within_a_memory_limit_that_verifying_in_memory_exceeds(store: str) -> None:
    verified = _in_child("verify", store)
    assert verified.startswith("ok "), verified
    assert int(verified.split()[1]) > EVENTS  # every row of every table was compared
    assert _in_child("verify-in-memory", store) == "out of memory"


def test_verify_with_its_second_process_keeps_within_the_same_limit(store: str) -> None:
    # The second process starts under the same cap (a limit is inherited), so each of the two
    # keeps within it; had the second process failed, "-" would say so.
    verified = _in_child("verify-apart", store)
    assert verified.startswith("ok "), verified
    assert int(verified.split()[1]) > EVENTS
    assert verified.split()[2] == "ledger", verified


def test_rebuilding_every_model_keeps_within_the_same_limit(store: str) -> None:
    assert _in_child("rebuild", store) == "rebuilt " + " ".join([str(EVENTS)] * 4)
