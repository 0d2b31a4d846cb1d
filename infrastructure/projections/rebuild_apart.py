"""Part of a rebuild of several read models built in a second process, on PostgreSQL.

A rebuild's time goes to the models' own work per event (applying it, making and writing its
rows) far more than to reading the log, and the ledger model (an entry per posting) costs about
as much as the other three together. So while this process builds the other models' fresh
tables, a child process builds the ledger's, each reading the log itself: 1.4x faster on two
cores (docs/benchmarks.md, session 10). Not on SQLite: a batch holds the file's one write lock
while it computes, so two builders only take turns (measured slower than one).

The child only fills fresh tables that this process created before starting it, up to the head
it finds; the swap stays with this process, which applies whatever either side has not applied
yet in the one transaction that swaps every model in (``operations.rebuild_together``). If the
child fails for any reason (a store it cannot reach, an event it cannot apply, killed), this
process builds its part itself, and meets the same error, if any, at the same position.

The child is a fresh interpreter (``python -m`` this module, its job pickled on its stdin:
``creditledger.infrastructure.child_job`` says why).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.rows import ReadModelName
from creditledger.application.projections.source import EventLog
from creditledger.infrastructure.bootstrap import open_ledger, open_view_database, settings_of
from creditledger.infrastructure.child_job import read_job, start_child
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.runner import fill_rebuild_tables
from creditledger.infrastructure.settings import Settings

APART = (ReadModelName.LEDGER,)
"""The models a child builds: the ledger, about half of a rebuild of all four."""
APART_FROM_EVENTS = 50_000
"""Shorter logs are rebuilt in one process: starting the child (about half a second of
imports) costs about what it saves there."""


@dataclass(frozen=True)
class _Job:
    settings: Settings
    models: tuple[str, ...]
    batch_size: int


class Apart:
    """The models a child process is building, and whether it built them."""

    def __init__(self, models: tuple[ReadModelName, ...], child: subprocess.Popen[bytes] | None):
        self.models = models if child is not None else ()
        self._child = child

    def built(self) -> bool:
        """Wait for the child: True if it built its models up to the head it found."""
        return self._child is not None and self._child.wait() == 0

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
    head: int,
    apart_from: int = APART_FROM_EVENTS,
) -> Iterator[Apart]:
    """Start a child building ``APART``'s share of ``models`` (whose fresh tables exist), when
    it pays: a PostgreSQL store, a log of ``apart_from`` events or more, and models left for
    this process. ``models`` of the result is empty when no child runs. Leaving stops it."""
    share = tuple(model for model in models if model in APART)
    settings = settings_of(ledger)
    if (
        database.kind != "postgres"
        or settings is None
        or not share
        or len(share) == len(models)
        or head < apart_from
    ):
        yield Apart((), None)
        return
    apart = Apart(share, _start(_Job(settings, tuple(m.value for m in share), batch_size)))
    try:
        yield apart
    finally:
        apart.stop()


def _start(job: _Job) -> subprocess.Popen[bytes] | None:
    """The child, given its job; None if it cannot be started here."""
    return start_child(__name__, job)


def _build(job: _Job) -> None:
    """In the child: a ledger and view store of its own; fill the fresh tables of its models."""
    models = tuple(ReadModelName(name) for name in job.models)
    with open_ledger(settings=job.settings) as ledger, open_view_database(ledger) as database:
        fill_rebuild_tables(EventLog(ledger), database, models, batch_size=job.batch_size)


if __name__ == "__main__":
    # Any failure exits non-zero, and the parent builds the part itself.
    _build(read_job())
