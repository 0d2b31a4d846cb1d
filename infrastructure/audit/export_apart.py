"""The last part of a long export, transcribed in a second process.

An export's time goes to turning each stored event into its canonical bytes (parse, the float
check, the event object, the dump: about three quarters of it, by profile); only the chain, the
hash of each line in turn, must run in order. So a child process transcribes the last
``SECOND_PART`` of the positions into a scratch file of ``position<TAB>canonical bytes`` lines
while this process exports the first part; this process then chains and writes the child's lines.

The child is a fresh interpreter (``python -m`` this module, the job pickled on its stdin), not a
fork: the exporting process may hold a connection pool's threads, and a forked child of a threaded
process can deadlock on a lock one of them held. Nor is it ``multiprocessing``'s spawn, which
imports the caller's main script again in the child: a script that exports at its top level
would run again there. Starting the child costs it half a second of imports, paid while this
process exports its own part, which is why short exports stay in one process.

The export is the same bytes either way (a test compares them): the child transcribes with the
same code and looks up the namespaces of purchases initiated before its part in the store, as the
exporter does for any purchase it no longer remembers.

If the child fails for any reason (an unreadable event, a store it cannot reach, killed), this
process exports that part itself, and meets the same error, if any, at the same position; if it
cannot be started (no interpreter to run, no scratch directory), this process exports it all.

The scratch file goes to the temporary directory (``TMPDIR``) and needs about as much space as
the part of the export it holds; it is removed when the export ends.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from creditledger.application.audit.export import canonical_events
from creditledger.application.audit.transcribe import Transcriber
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.audit.log import namespace_lookup, read_log
from creditledger.infrastructure.bootstrap import open_ledger, settings_of
from creditledger.infrastructure.child_job import read_job, start_child
from creditledger.infrastructure.settings import Settings

SPLIT_FROM_EVENTS = 200_000
"""Exports of fewer positions run in one process: starting a second (about half a second of
imports) costs about what it saves at 100,000."""

SECOND_PART = 0.45
"""The share of the positions the child transcribes. Less than half: this process still chains
and writes the child's lines after its own part (a quarter of the cost of exporting them)."""


@dataclass(frozen=True)
class SecondPart:
    """The positions after ``after`` are being transcribed apart; ``lines()`` waits for them."""

    after: int
    lines: Callable[[], Iterator[tuple[int, bytes]] | None]
    """The child's (position, canonical bytes), in position order; None if it failed."""


@dataclass(frozen=True)
class _Job:
    """What the child transcribes: the positions after ``after`` up to ``cut``, into ``path``."""

    settings: Settings
    after: int
    cut: int
    namespace: str | None
    batch_size: int
    path: Path


@contextmanager
def second_part_apart(
    ledger: CreditLedger, *, cut: int, from_position: int, namespace: str | None, batch_size: int
) -> Iterator[SecondPart | None]:
    """Start transcribing the last part of the log up to ``cut`` in a child process, if the
    export is long enough and the store can be opened again there; None otherwise. Leaving
    stops the child and removes its scratch file."""
    settings = settings_of(ledger)
    if (
        settings is None
        or settings.store.kind == "memory"
        or from_position != 1
        or cut < SPLIT_FROM_EVENTS
    ):
        yield None
        return
    after = cut - int(cut * SECOND_PART)
    try:
        scratch = tempfile.TemporaryDirectory(prefix="creditledger-export-")
    except OSError:  # no room or no right to write in TMPDIR: one process does it all
        yield None
        return
    with scratch:
        path = Path(scratch.name) / "second-part"
        child = _start(_Job(settings, after, cut, namespace, batch_size, path))
        if child is None:
            yield None
            return

        def lines() -> Iterator[tuple[int, bytes]] | None:
            return _read_lines(path) if child.wait() == 0 else None

        try:
            yield SecondPart(after, lines)
        finally:
            if child.poll() is None:
                child.terminate()
            child.wait()


def _start(job: _Job) -> subprocess.Popen[bytes] | None:
    """The child, given its job; None if it cannot be started here."""
    return start_child(__name__, job)


def _read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as lines:
        for line in lines:
            # Canonical JSON holds no raw newline or tab (both are escaped in strings).
            position, _, canonical = line[:-1].partition(b"\t")
            yield int(position), canonical


def _transcribe_apart(job: _Job) -> None:
    """In the child: a ledger of its own on the same store."""
    with open_ledger(settings=job.settings) as ledger, job.path.open("wb") as out:
        transcriber = Transcriber(namespace_lookup(ledger))
        batches = read_log(ledger, after=job.after, up_to=job.cut, batch_size=job.batch_size)
        for batch in batches:
            for position, canonical in canonical_events(batch, transcriber, job.namespace):
                out.write(b"%d\t%s\n" % (position, canonical))


if __name__ == "__main__":
    # Any failure exits non-zero, and the parent exports the part itself.
    _transcribe_apart(read_job())
