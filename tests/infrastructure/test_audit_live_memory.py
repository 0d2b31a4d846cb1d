"""``verify --against-live`` in bounded memory (issue 14).

A SQLite store of ``EVENTS`` events (``bench.verify``'s lifecycles), its read models caught up and
its export are compared with both live sources (the read models and the event store) in a child
process whose address space is capped (``RLIMIT_AS``) at what it uses after importing everything
plus ``BUDGET_MIB``: every purchase is compared and nothing differs.

The limit is low enough to matter: the same child holding what the comparison held before it
was merged in purchase-id order (the export's purchases and positions as whole snapshots, and one
whole snapshot of the views) runs out of memory on the same store. (The code before, commit
8460552, also ran out of memory under this limit: it needed 64 to 96 MiB more at 20,000 events,
and its need grows with the log.)
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.verify import EVENTS_PER_LIFECYCLE, load
from creditledger.infrastructure.audit.jobs import export_to_file
from creditledger.infrastructure.bootstrap import open_ledger, open_read_models
from tests.capped import run_capped

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS, /proc")

EVENTS = 30_000
BUDGET_MIB = 56
"""What the comparison may add to the child's address space (it needed 24 to 32 MiB at 20,000
events and at 40,000 alike); whole snapshots need several times it."""

_CHILD = """
import sys
from creditledger.infrastructure.audit.jobs import compare_with_sources, verify_file
from creditledger.infrastructure.audit.live import StoreLiveLedger
from creditledger.infrastructure.audit.readmodels import ReadModelLiveLedger
from creditledger.infrastructure.bootstrap import open_ledger, open_read_models

cap_address_space(int(sys.argv[3]))
held = []
try:
    with open_ledger("sqlite:///" + sys.argv[1]) as ledger:
        report = verify_file(sys.argv[2])
        with open_read_models(ledger, run_projector=False) as views:
            if sys.argv[4] == "snapshots":
                held += [
                    report.ledger.snapshot(report.header.last_position),
                    report.ledger.positions(),
                    views.database.snapshot(),
                ]
            comparisons = compare_with_sources(
                report,
                {"read_models": ReadModelLiveLedger(views), "event_store": StoreLiveLedger(ledger)},
            )
    print(
        "ok" if report.ok else report.failure,
        *(f"{c.source}:{c.purchases}:{len(c.differences)}" for c in comparisons),
    )
except MemoryError:
    print("out of memory")
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A SQLite store with its views caught up, and its export."""
    directory = tmp_path_factory.mktemp("audit-live-memory")
    path, export = directory / "ledger.sqlite", directory / "export.jsonl"
    with open_ledger(f"sqlite:///{path}") as ledger:
        load(ledger, EVENTS)
        with open_read_models(ledger, run_projector=False) as views:
            assert views.runner.catch_up() == EVENTS
        export_to_file(ledger, str(export), store="test", exported_at=datetime.now(UTC))
    return path, export


def _in_child(store: tuple[Path, Path], holding: str) -> str:
    path, export = store
    return run_capped(_CHILD, str(path), str(export), str(BUDGET_MIB), holding)


def test_verify_against_live_keeps_within_a_memory_limit_that_whole_snapshots_exceed(
    store: tuple[Path, Path],
) -> None:
    purchases = EVENTS // EVENTS_PER_LIFECYCLE
    merged = _in_child(store, "nothing more")
    assert merged == f"ok read_models:{purchases}:0 event_store:{purchases}:0", merged
    assert _in_child(store, "snapshots") == "out of memory"
