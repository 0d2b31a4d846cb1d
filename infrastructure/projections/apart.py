"""The ledger read model built by a second process, on PostgreSQL: in a rebuild and in a catch-up.

Applying a long stretch of the log costs the models' own work per event (applying it, making
and writing its rows) far more than reading the log, and the ledger model (an entry per posting)
costs about as much as the other three together. So while this process applies the log to the
other models, a child process applies it to the ledger's, reading the log itself: a rebuild of
all four 1.4x faster on two cores (docs/benchmarks.md, session 10). Not on SQLite: a batch holds
the file's one write lock while it computes, so two writers only take turns (measured slower
than one).

Three jobs:

- a rebuild (``operations.rebuild_together``): the child fills the ledger's fresh tables, which
  this process created before starting it, up to the head it finds; the swap stays with this
  process, which applies whatever either side has not applied yet in the one transaction that
  swaps every model in;
- an operator's catch-up (``operations.catch_up``, ``projections run``): the child catches the
  live ledger model up, batch by batch, as this process does the others. Each model has its own
  tracking row, locked by each batch that moves it, so the two never apply an event to the same
  model, and each batch is applied exactly once, as with one process;
- the rebuild of ``projections verify`` (``operations.verify``): the child builds the ledger model
  into a scratch SQLite file of its own up to the live views' positions, as this process builds
  the others into its scratch file; this process then compares each model's rows with the file
  that holds them. Two scratch files share no write lock, so this pays on SQLite too.

If the child fails for any reason (a store it cannot reach, an event it cannot apply, killed),
this process applies its part itself, and meets the same error, if any, at the same position.

The child is a fresh interpreter (``python -m`` this module, its job pickled on its stdin:
``creditledger.infrastructure.child_job`` says why).
"""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.projection import PurchaseTerms
from creditledger.application.projections.rows import ReadModelName
from creditledger.application.projections.source import EventLog
from creditledger.infrastructure.bootstrap import open_ledger, open_view_database, settings_of
from creditledger.infrastructure.child_job import read_job, start_child
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.layout import TRACKING_TABLE
from creditledger.infrastructure.projections.runner import catch_up_models, fill_rebuild_tables
from creditledger.infrastructure.projections.sqlite import SqliteViewDatabase
from creditledger.infrastructure.settings import Settings

APART = (ReadModelName.LEDGER,)
"""The models a child builds: the ledger, about half of the work of all four."""
APART_FROM_EVENTS = 50_000
"""Shorter stretches of the log are applied in one process: starting the child (about half a
second of imports) costs about what it saves there."""

STOP_CHECK_SECONDS = 0.1
"""How often waiting for the child looks whether the operator asked to stop."""
SCRATCH_CACHE_MIB = 16
"""SQLite's page cache for a scratch file of verify's rebuild (a constant of its memory, issue
14)."""
VERIFY_CHILD_TERMS_CACHED = 2_500
"""Purchase terms the child of verify's rebuild keeps (the projector keeps ``TERMS_CACHED``):
verify's two processes are one job, and issue 14 bounds a job's memory (300 MB), so the child
keeps a quarter. Measured on ``bench.verify``'s log of 3 x 10^5 events: its peak 102 MiB
against 129, no slower; at 10^6 events the two processes peaked at 151 + 104 MiB. A purchase
whose terms have left the cache when its next event comes costs one read of its ``Initiated``."""


@dataclass(frozen=True)
class _Job:
    settings: Settings
    models: tuple[str, ...]
    batch_size: int
    live: bool
    """Catch the live models up (else: fill a rebuild's fresh tables)."""
    scratch: str | None = None
    """Build the models into this SQLite file instead, up to ``until`` (verify's rebuild)."""
    until: dict[str, int] | None = None


class Apart:
    """The models a child process is building, and whether it built them."""

    def __init__(
        self,
        models: tuple[ReadModelName, ...],
        child: subprocess.Popen[bytes] | None,
        scratch: str | None = None,
    ):
        self.models = models if child is not None else ()
        self._child = child
        self._scratch = scratch
        self._reached = 0

    def built(
        self, stop: threading.Event | None = None, waiting: Callable[[], None] | None = None
    ) -> bool:
        """Wait for the child: True if it applied the log to its models up to the head it
        found; False at once when ``stop`` is set. ``waiting`` is called every
        ``STOP_CHECK_SECONDS`` meanwhile (a progress bar that follows ``reached``)."""
        child = self._child
        if child is None:
            return False
        while True:
            try:
                return child.wait(timeout=STOP_CHECK_SECONDS) == 0
            except subprocess.TimeoutExpired:
                if stop is not None and stop.is_set():
                    return False
                if waiting is not None:
                    waiting()

    def reached(self) -> int:
        """Where the child's models stand in its scratch file (verify's rebuild: the lowest of
        their positions; 0 before it wrote any, or for a job without a scratch file). Read from
        the file itself, so it never goes back: a read that fails (the file not made yet, busy)
        keeps the last answer."""
        if self._scratch is None or not self.models:
            return self._reached
        try:
            with closing(
                sqlite3.connect(f"file:{self._scratch}?mode=ro", uri=True, timeout=0)
            ) as scratch:
                # Our own table's name; no value is spliced in.
                query = f"SELECT name, position FROM {TRACKING_TABLE}"  # noqa: S608
                positions = dict(scratch.execute(query).fetchall())
        except sqlite3.Error:
            return self._reached
        found = min(int(positions.get(model.value, 0)) for model in self.models)
        self._reached = max(self._reached, found)
        return self._reached

    def stop(self) -> None:
        if self._child is not None:
            if self._child.poll() is None:
                self._child.terminate()
            self._child.wait()


@contextmanager
def building_apart(
    ledger: CreditLedger,
    database: ViewDatabase,
    models: Sequence[ReadModelName],
    *,
    batch_size: int,
    events: int,
    apart_from: int = APART_FROM_EVENTS,
    live: bool = False,
) -> Iterator[Apart]:
    """Start a child applying the log to ``APART``'s share of ``models`` when it pays: a
    PostgreSQL store, ``events`` (the stretch of the log to apply) of ``apart_from`` or more
    (and at least one), and models left for this process. ``live``: catch the live models up;
    else fill their fresh tables (which exist). ``models`` of the result is empty when no child
    runs. Leaving stops it."""
    share = tuple(model for model in models if model in APART)
    settings = settings_of(ledger)
    if (
        database.kind != "postgres"
        or settings is None
        or not share
        or len(share) == len(models)
        or events < max(1, apart_from)
    ):
        job = None
    else:
        job = _Job(settings, tuple(model.value for model in share), batch_size, live)
    with _child(share, job) as apart:
        yield apart


@contextmanager
def verifying_apart(
    ledger: CreditLedger,
    models: Sequence[ReadModelName],
    *,
    scratch: str,
    until: dict[str, int],
    batch_size: int,
    apart_from: int = APART_FROM_EVENTS,
) -> Iterator[Apart]:
    """Start a child building ``APART``'s share of ``models`` into the SQLite file ``scratch``
    (made by the child), from position zero up to ``until`` (the live views' positions), when it
    pays: a ledger opened from settings on a store another process can read (PostgreSQL or a
    SQLite file: not memory, whose events only this process holds), a stretch of ``apart_from``
    events or more, and models left for this process. ``models`` of the result is empty when no
    child runs. Leaving stops it."""
    share = tuple(model for model in models if model in APART)
    settings = settings_of(ledger)
    events = max((until.get(model.value, 0) for model in share), default=0)
    if (
        settings is None
        or settings.store.kind == "memory"
        or not share
        or len(share) == len(models)
        or events < max(1, apart_from)
    ):
        job = None
    else:
        job = _Job(
            settings,
            tuple(model.value for model in share),
            batch_size,
            live=False,
            scratch=scratch,
            until=dict(until),
        )
    with _child(share, job) as apart:
        yield apart


@contextmanager
def _child(share: tuple[ReadModelName, ...], job: _Job | None) -> Iterator[Apart]:
    """A child doing ``job`` for ``share`` (no child when ``job`` is None); leaving stops it."""
    if job is None:
        yield Apart((), None)
        return
    apart = Apart(share, _start(job), job.scratch)
    try:
        yield apart
    finally:
        apart.stop()


def _start(job: _Job) -> subprocess.Popen[bytes] | None:
    """The child, given its job; None if it cannot be started here."""
    return start_child(__name__, job)


def _build(job: _Job) -> None:
    """In the child: a ledger and view store of its own; catch its models up, or fill their
    fresh tables."""
    models = tuple(ReadModelName(name) for name in job.models)
    if job.scratch is not None:
        with (
            open_ledger(settings=job.settings) as ledger,
            SqliteViewDatabase(job.scratch, cache_mib=SCRATCH_CACHE_MIB) as scratch,
        ):
            log = EventLog(ledger)
            catch_up_models(
                log,
                scratch,
                models,
                batch_size=job.batch_size,
                until=job.until,
                terms=PurchaseTerms(log.initiated, capacity=VERIFY_CHILD_TERMS_CACHED),
            )
        return
    with open_ledger(settings=job.settings) as ledger, open_view_database(ledger) as database:
        log = EventLog(ledger)
        if job.live:
            catch_up_models(log, database, models, batch_size=job.batch_size)
        else:
            fill_rebuild_tables(log, database, models, batch_size=job.batch_size)


if __name__ == "__main__":
    # Any failure exits non-zero, and the parent builds the part itself.
    _build(read_job())
