"""Audit jobs in bounded memory (issue 14).

Offline verify: a log that the all-in-memory fold cannot verify under a memory limit is verified
under it.

The export is verified in a child process whose address space is capped (``RLIMIT_AS``) at what
it uses after importing everything plus ``BUDGET_MIB``. The same child, folding with every purchase
kept in memory (``MemoryClosedPurchases``, which is what verify did before), runs out of memory
on the same file: the limit is low enough to matter.

Export: it remembers the namespaces of recent purchases only and looks older ones up in the store,
with the same result on every backend; it exports a SQLite store of the same log within the same
budget (one SQL query per batch, nothing kept per event), writing the very file an unconstrained
export writes, also when it transcribes its last part in a second process (which inherits the
limit).

Verify's scratch file failing (a directory that cannot be written) is a typed error naming it.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.verify import load
from creditledger.application.audit import transcribe
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.audit.jobs import export_to_file
from creditledger.infrastructure.audit.spill import ScratchFileError, SqliteClosedPurchases
from creditledger.infrastructure.bootstrap import open_ledger
from tests.application.audit_support import export_lines, populate
from tests.capped import run_capped
from tests.clock import FixedClock

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS, /proc")

EVENTS = 90_000
BUDGET_MIB = 48
"""What verify may add to the child's address space; the in-memory fold needs several times it."""

_CHILD = """
import sys
from datetime import datetime
from creditledger.application.audit.closed import MemoryClosedPurchases
from creditledger.infrastructure.audit import export_apart
from creditledger.infrastructure.audit.jobs import export_to_file, verify_file
from creditledger.infrastructure.bootstrap import open_ledger

cap_address_space(int(sys.argv[3]))
try:
    if sys.argv[2] == "export":
        export_apart.SPLIT_FROM_EVENTS = int(sys.argv[6])
        read_apart = []  # the events the second process transcribed, as this one reads them
        read_lines = export_apart._read_lines
        export_apart._read_lines = lambda path: (
            read_apart.append(line) or line for line in read_lines(path)
        )
        with open_ledger("sqlite:///" + sys.argv[1]) as ledger:
            result = export_to_file(
                ledger, sys.argv[4], store="test", exported_at=datetime.fromisoformat(sys.argv[5])
            )
        print("ok", result.trailer.event_count, "apart" if read_apart else "in one")
    else:
        closed = MemoryClosedPurchases() if sys.argv[2] == "memory" else None
        report = verify_file(sys.argv[1], closed=closed)
        print("ok" if report.ok else report.failure, report.events)
except MemoryError:
    print("out of memory")
"""


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit-memory") / "export.jsonl"
    with open_ledger("memory://") as ledger:
        load(ledger, EVENTS)
        export_to_file(ledger, str(path), store="test", exported_at=datetime.now(UTC))
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit-memory-store") / "ledger.sqlite"
    with open_ledger(f"sqlite:///{path}") as ledger:
        load(ledger, EVENTS)
    return path


def _in_child(source: Path, job: str, *arguments: str) -> str:
    return run_capped(_CHILD, str(source), job, str(BUDGET_MIB), *arguments, timeout=600)


def test_verify_keeps_within_a_memory_limit_that_the_all_in_memory_fold_exceeds(
    export: Path,
) -> None:
    on_disk = _in_child(export, "disk")
    assert on_disk == f"ok {EVENTS}", on_disk
    in_memory = _in_child(export, "memory")
    assert in_memory == "out of memory", in_memory


@pytest.mark.parametrize(
    "split",
    [
        pytest.param((10**9, "in one"), id="in one process"),
        pytest.param((1, "apart"), id="its last part in a second process"),
    ],
)
def test_export_keeps_within_the_same_memory_limit(
    store: Path, tmp_path: Path, split: tuple[int, str]
) -> None:
    # The second process inherits the limit; had it failed, this one would export its part.
    split_from, how = split
    exported_at = datetime(2026, 6, 1, tzinfo=UTC)
    limited = tmp_path / "limited.jsonl"
    outcome = _in_child(store, "export", str(limited), exported_at.isoformat(), str(split_from))
    assert outcome == f"ok {EVENTS} {how}", outcome
    unlimited = tmp_path / "unlimited.jsonl"
    with open_ledger(f"sqlite:///{store}") as ledger:
        export_to_file(ledger, str(unlimited), store="test", exported_at=exported_at)
    assert limited.read_bytes() == unlimited.read_bytes()


def test_an_export_that_remembers_one_namespace_equals_one_that_remembers_all(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ten events interleave purchases, so remembering only the latest purchase's namespace
    # makes the exporter look the others up in the store.
    populate(ledger, clock)
    remembered_all = export_lines(ledger, tmp_path / "all.jsonl")
    monkeypatch.setattr(transcribe, "REMEMBERED_NAMESPACES", 1)
    assert export_lines(ledger, tmp_path / "one.jsonl") == remembered_all


def test_a_scratch_directory_that_cannot_be_written_is_named_in_a_typed_error(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-such-directory"
    with pytest.raises(ScratchFileError, match="no-such-directory"):
        SqliteClosedPurchases(str(missing))
