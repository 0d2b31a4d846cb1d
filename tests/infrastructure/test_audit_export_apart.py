"""A long export transcribes its last part in a second process (issue 14): the same bytes.

``SPLIT_FROM_EVENTS`` is lowered to one event so that the small logs here are split; the export
is compared with the same export made in one process. On the in-memory store nothing is split
(a second process cannot open it), and the export is the same as ever. A script that exports at
its top level is not run again by the second process (as ``multiprocessing``'s spawn would).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from creditledger.application.audit.transcribe import UnreadableEventError
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.audit import export_apart
from creditledger.infrastructure.audit.export_apart import second_part_apart
from creditledger.infrastructure.bootstrap import open_ledger
from tests.application.audit_support import (
    export_lines,
    populate,
    populate_wallet,
    tamper_stored_event,
)
from tests.clock import FixedClock


def _split_from(monkeypatch: pytest.MonkeyPatch, events: int) -> None:
    monkeypatch.setattr(export_apart, "SPLIT_FROM_EVENTS", events)


def _populated(ledger: CreditLedger, clock: FixedClock) -> int:
    populate(ledger, clock)
    populate_wallet(ledger, clock)
    return ledger.recorder.max_notification_id() or 0


def _in_one_and_in_two(
    ledger: CreditLedger,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    before_two: Callable[[], object] = lambda: None,
    namespace: str | None = None,
) -> tuple[list[str], list[str]]:
    """The export's lines made in one process, then split (after ``before_two``)."""
    _split_from(monkeypatch, 10**9)
    in_one = export_lines(ledger, tmp_path / "one.jsonl", namespace=namespace)
    _split_from(monkeypatch, 1)
    before_two()
    return in_one, export_lines(ledger, tmp_path / "two.jsonl", namespace=namespace)


@pytest.mark.parametrize("namespace", [None, "acme", "globex"])
def test_an_export_in_two_processes_is_byte_for_byte_the_export_in_one(
    ledger: CreditLedger,
    clock: FixedClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    namespace: str | None,
) -> None:
    _populated(ledger, clock)
    in_one, in_two = _in_one_and_in_two(ledger, tmp_path, monkeypatch, namespace=namespace)
    assert in_two == in_one
    assert len(in_one) > 2  # header and trailer, and events between them


def test_the_last_part_is_transcribed_by_another_process_unless_the_store_is_in_memory(
    ledger: CreditLedger, clock: FixedClock, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut = _populated(ledger, clock)
    _split_from(monkeypatch, 1)
    with second_part_apart(
        ledger, cut=cut, from_position=1, namespace=None, batch_size=4
    ) as second:
        if backend == "memory":
            assert second is None
            return
        assert second is not None
        assert 1 < second.after < cut
        lines = second.lines()
        assert lines is not None
        positions = [position for position, _ in lines]
    assert positions == list(range(second.after + 1, cut + 1))


def test_an_export_from_a_later_position_stays_in_one_process(
    ledger: CreditLedger, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its chain continues from a checkpoint: only the whole log is split.
    cut = _populated(ledger, clock)
    _split_from(monkeypatch, 1)
    with second_part_apart(
        ledger, cut=cut, from_position=2, namespace=None, batch_size=4
    ) as second:
        assert second is None


@pytest.mark.parametrize(
    "obstacle",
    [
        pytest.param(("sys.executable", ""), id="no interpreter to start"),
        pytest.param(("sys.executable", "/no/such/python"), id="an interpreter that is not there"),
        pytest.param(("tempfile.tempdir", "/no/such/directory"), id="no scratch directory"),
    ],
)
def test_an_export_that_cannot_start_a_second_process_is_made_in_one(
    ledger: CreditLedger,
    clock: FixedClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    obstacle: tuple[str, str],
) -> None:
    _populated(ledger, clock)
    in_one, in_two = _in_one_and_in_two(
        ledger, tmp_path, monkeypatch, lambda: monkeypatch.setattr(*obstacle)
    )
    assert in_two == in_one


def test_an_unreadable_event_in_the_last_part_fails_the_export_where_one_process_fails_it(
    ledger: CreditLedger,
    clock: FixedClock,
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cut = _populated(ledger, clock)
    tamper_stored_event(ledger, store_url, cut - 1, {"amount": 1.5})  # a binary float
    failures = []
    for split_from in (10**9, 1):
        _split_from(monkeypatch, split_from)
        with pytest.raises(UnreadableEventError) as raised:
            export_lines(ledger, tmp_path / f"{split_from}.jsonl")
        failures.append((raised.value.position, str(raised.value)))
    assert failures[0] == failures[1]
    assert failures[0][0] == cut - 1


def test_a_changed_event_in_the_last_part_is_exported_as_one_process_exports_it(
    ledger: CreditLedger,
    clock: FixedClock,
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The export writes the log as stored, tampered or not; verify is what refuses it.
    cut = _populated(ledger, clock)
    tamper_stored_event(ledger, store_url, cut - 2, {"customer_id": "cust-x"})
    tamper_stored_event(ledger, store_url, cut, None)
    in_one, in_two = _in_one_and_in_two(ledger, tmp_path, monkeypatch)
    assert in_two == in_one


_SCRIPT = """
import sys
from datetime import datetime
from pathlib import Path
from creditledger.infrastructure.audit import export_apart
from creditledger.infrastructure.audit.jobs import export_to_file
from creditledger.infrastructure.bootstrap import open_ledger

# At the top level, no main guard: the second process must not run this script again.
with Path(sys.argv[3]).open("a") as runs:
    runs.write("ran\\n")
export_apart.SPLIT_FROM_EVENTS = 1
read_lines = export_apart._read_lines
export_apart._read_lines = lambda path: (print("apart") or read_lines(path))
with open_ledger(sys.argv[1]) as ledger:
    export_to_file(ledger, sys.argv[2], store="test", exported_at=datetime(2026, 6, 1))
"""


def test_a_script_that_exports_at_its_top_level_runs_once(
    tmp_path: Path, clock: FixedClock
) -> None:
    store_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with open_ledger(store_url, clock=clock) as ledger:
        _populated(ledger, clock)
    script = tmp_path / "export_at_top_level.py"
    script.write_text(_SCRIPT)
    runs = tmp_path / "runs.txt"
    done = subprocess.run(
        [sys.executable, str(script), store_url, str(tmp_path / "export.jsonl"), str(runs)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["apart"]
    assert runs.read_text().split() == ["ran"]
