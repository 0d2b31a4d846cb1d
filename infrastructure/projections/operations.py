"""Operating the read models: status, rebuild (build fresh, then swap) and verify."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from creditledger.application.projections.compare import (
    Difference,
    GroupBalances,
    StoredRows,
    compare_positions,
    compare_stored_table,
    compare_table,
)
from creditledger.application.projections.rows import (
    TABLES,
    LedgerEntry,
    ReadModelName,
    Tables,
    ViewTable,
)
from creditledger.application.projections.source import EventLog
from creditledger.application.projections.store import ReadModelTransaction
from creditledger.infrastructure.projections.apart import (
    APART_FROM_EVENTS,
    SCRATCH_CACHE_MIB,
    Apart,
    building_apart,
    verifying_apart,
)
from creditledger.infrastructure.projections.database import ViewDatabase, ViewSnapshot
from creditledger.infrastructure.projections.layout import Layout, live_layout, rebuild_layout
from creditledger.infrastructure.projections.runner import (
    BLOCKED_RETRY_SECONDS,
    OFFLINE_BATCH_SIZE,
    Progress,
    ProjectionRunner,
    catch_up_models,
    fill_rebuild_tables,
)
from creditledger.infrastructure.projections.sqlite import SqliteViewDatabase

RowT = TypeVar("RowT")


@dataclass(frozen=True)
class ModelStatus:
    name: str
    position: int
    lag: int
    """Notification ids between the head and the position (an upper bound of events behind)."""
    lag_seconds: float | None
    """How long ago the oldest event not yet applied was recorded (None when caught up)."""


@dataclass(frozen=True)
class StatusReport:
    head: int
    models: list[ModelStatus]

    def as_dict(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "models": [vars(model) for model in self.models],
            "caught_up": all(model.lag == 0 for model in self.models),
        }


def status(log: EventLog, database: ViewDatabase, *, now: datetime | None = None) -> StatusReport:
    positions = database.positions()
    head = log.head()
    moment = now or datetime.now(UTC)
    models = []
    for model in ReadModelName:
        position = positions.get(model.value, 0)
        lag_seconds = None
        if head > position:
            following = log.read(position, 1)
            if following:
                recorded = log.decode(following[0])
                lag_seconds = max(0.0, (moment - recorded.event.timestamp).total_seconds())
        models.append(ModelStatus(model.value, position, max(0, head - position), lag_seconds))
    return StatusReport(head, models)


@dataclass(frozen=True)
class RebuildReport:
    model: str
    position: int
    events: int
    """Events applied to the model (every event of the log up to ``position``)."""
    seconds: float
    apart: bool = False
    """Built by a second process (``apart``)."""

    def as_dict(self) -> dict[str, Any]:
        return vars(self)


def rebuild(
    log: EventLog,
    database: ViewDatabase,
    model: ReadModelName,
    *,
    batch_size: int = OFFLINE_BATCH_SIZE,
    progress: Progress | None = None,
) -> RebuildReport:
    """Rebuild ``model`` from position zero into fresh tables, then swap them in.

    Readers keep using the live tables, complete, while the new ones fill; the swap happens in
    one transaction that holds the live model's tracking lock, applies the events recorded in
    the meantime, and renames the new tables over the old: no reader ever sees an empty or
    partial view, and the live projector resumes from the swapped-in position.
    """
    (report,) = rebuild_together(log, database, (model,), batch_size=batch_size, progress=progress)
    return report


def rebuild_together(
    log: EventLog,
    database: ViewDatabase,
    models: Sequence[ReadModelName],
    *,
    batch_size: int = OFFLINE_BATCH_SIZE,
    progress: Progress | None = None,
    apart_from: int = APART_FROM_EVENTS,
) -> list[RebuildReport]:
    """Rebuild ``models`` as ``rebuild`` does each, in one pass over the log, swapped in
    together in one transaction.

    Every model's rebuild reads and decodes the whole log; ``projections rebuild all`` used to
    do that four times, one model after another. One pass applies each event to every model
    being rebuilt, as the projector's catch-up does: the log is read and decoded once. On
    PostgreSQL, from ``apart_from`` events, the ledger model is built by a second process
    meanwhile (``apart``).
    """
    chosen = tuple(dict.fromkeys(models))
    if not chosen:
        return []
    started = time.perf_counter()
    for model in chosen:
        database.create_rebuild_tables(model)
    layout = rebuild_layout(*chosen)
    try:
        with building_apart(
            log.ledger,
            database,
            chosen,
            batch_size=batch_size,
            events=log.head(),
            apart_from=apart_from,
        ) as apart:
            own = tuple(model for model in chosen if model not in apart.models)
            events = fill_rebuild_tables(
                log, database, own, batch_size=batch_size, progress=progress
            )
            built_apart = apart.built()
            if apart.models and not built_apart:
                fill_rebuild_tables(
                    log, database, apart.models, batch_size=batch_size, progress=progress
                )
        # One transaction: this process's models up to the head, the others (built apart, at
        # their own position) up to the same position, and the swap.
        names = [layout.tracking[model] for model in chosen]
        names += [database.live.tracking[model] for model in chosen]
        with database.transaction(layout, names) as transaction:
            own_runner = ProjectionRunner(log, database, layout=rebuild_layout(*own))
            events += _drain(own_runner, transaction)
            if apart.models:
                reached = transaction.positions()
                target = max(reached[layout.tracking[model]] for model in chosen)
                apart_runner = ProjectionRunner(log, database, layout=rebuild_layout(*apart.models))
                _drain(apart_runner, transaction, until=_up_to(layout, apart.models, target))
                events += _drain(own_runner, transaction, until=_up_to(layout, own, target))
            positions = transaction.positions()
            transaction.flush()
            for model in chosen:
                transaction.access.swap_in(model, rebuild_layout(model), database.live)
    except BaseException:
        for model in chosen:
            database.drop_rebuild_tables(model)
        raise
    seconds = time.perf_counter() - started
    return [
        RebuildReport(
            model.value,
            positions[layout.tracking[model]],
            events,
            seconds,
            apart=built_apart and model in apart.models,
        )
        for model in chosen
    ]


@dataclass(frozen=True)
class CatchUpReport:
    applied: int
    """Events this process applied to at least one model, counted once per pass: with a second
    process, the pass over the other models and then the one bringing every model to the head
    (which applies the ledger's whole share again if the second process failed)."""
    apart: tuple[str, ...] = ()
    """The models a second process caught up (``apart``)."""


def catch_up(
    runner: ProjectionRunner,
    *,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    apart_from: int | None = None,
) -> CatchUpReport:
    """``runner.catch_up()`` of an operator's job (``projections run``): on PostgreSQL, when the
    models are ``apart_from`` (default ``APART_FROM_EVENTS``) events or more behind, a second
    process catches the ledger model up meanwhile (``apart``), and this process the others;
    then this runner applies whatever is left to every model (all of the ledger's share if the
    child failed)."""
    log, database, layout = runner.log, runner.database, runner.layout
    positions = database.positions()
    least_behind = log.head() - max(positions.get(layout.tracking[m], 0) for m in layout.models)
    with building_apart(
        log.ledger,
        database,
        layout.models,
        batch_size=runner.batch_size,
        events=least_behind,
        apart_from=APART_FROM_EVENTS if apart_from is None else apart_from,
        live=True,
    ) as apart:
        applied = 0
        built_apart = False
        if apart.models:
            own = tuple(model for model in layout.models if model not in apart.models)
            own_runner = ProjectionRunner(
                log,
                database,
                layout=live_layout(own),
                batch_size=runner.batch_size,
                signal=runner.signal,
                pause_collector=runner.pause_collector,
            )
            applied = own_runner.catch_up(progress=progress, stop=stop)
            built_apart = apart.built(stop)
    if stop is None or not stop.is_set():
        applied += runner.catch_up(progress=progress, stop=stop)
    done_apart = tuple(model.value for model in apart.models) if built_apart else ()
    return CatchUpReport(applied, done_apart)


def _drain(
    runner: ProjectionRunner,
    transaction: ReadModelTransaction,
    *,
    until: dict[str, int] | None = None,
) -> int:
    """Apply batches inside ``transaction`` until nothing is left (or ``until``); the count."""
    events = 0
    while True:
        result = runner.apply_next(transaction, until=until)
        if result.blocked:
            time.sleep(BLOCKED_RETRY_SECONDS)
            continue
        if result.applied == 0:
            return events
        events += result.applied


def _up_to(layout: Layout, models: Sequence[ReadModelName], position: int) -> dict[str, int]:
    return {layout.tracking[model]: position for model in models}


KEPT_DIFFERENCES = 1_000
"""Differences a verify report keeps (in table and key order); the rest are only counted."""


@dataclass(frozen=True)
class VerifyReport:
    positions: dict[str, int]
    rows: dict[str, int]
    differences: list[Difference] = field(default_factory=list)
    """The first ``KEPT_DIFFERENCES`` differences."""
    difference_count: int | None = None
    """Every difference found (default: as many as are listed)."""
    apart: tuple[str, ...] = ()
    """The models a second process rebuilt (``verifying_apart``)."""

    @property
    def count(self) -> int:
        return len(self.differences) if self.difference_count is None else self.difference_count

    @property
    def ok(self) -> bool:
        return self.count == 0

    def as_dict(self, *, limit: int = 50) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "positions": self.positions,
            "rows": self.rows,
            "differences": self.count,
            "first_differences": [d.describe() for d in self.differences[:limit]],
            "rebuilt_apart": list(self.apart),
        }


def verify(
    log: EventLog,
    database: ViewDatabase,
    *,
    batch_size: int = OFFLINE_BATCH_SIZE,
    progress: Progress | None = None,
    scratch: ViewDatabase | None = None,
    apart_from: int = APART_FROM_EVENTS,
) -> VerifyReport:
    """Rebuild every model from the log up to where the live views stand; compare row by row.

    The rebuild goes into ``scratch`` (by default a temporary SQLite file, removed afterwards),
    and both sides are then read in key order, a table at a time, and merged: memory does not
    grow with the views (see docs/read-models.md, "Verify"). Also checks that every transaction
    group of the live ledger sums to zero.

    With the default scratch file, from ``apart_from`` events, a second process builds the
    ledger model into a scratch file of its own meanwhile (``verifying_apart``); if it fails,
    this process builds it. Each model is compared with the file that holds it.
    """
    with _scratch(scratch) as (rebuilt_database, directory):
        until = _live(database.positions())
        apart_file = None if directory is None else os.path.join(directory, "rebuilt-apart.sqlite")
        building: AbstractContextManager[Apart] = (
            nullcontext(Apart((), None))
            if apart_file is None
            else verifying_apart(
                log.ledger,
                tuple(ReadModelName),
                scratch=apart_file,
                until=until,
                batch_size=batch_size,
                apart_from=apart_from,
            )
        )
        with building as apart:
            own = tuple(model for model in ReadModelName if model not in apart.models)
            shown = _Slower(progress, apart) if progress is not None and apart.models else None
            # Most of the rebuild runs outside the live snapshot (a long read transaction would
            # hold back PostgreSQL's vacuum and SQLite's checkpoints); the rest runs inside it.
            catch_up_models(
                log,
                rebuilt_database,
                own,
                batch_size=batch_size,
                until=until,
                progress=shown or progress,
            )
            built_apart = apart.built(waiting=None if shown is None else shown.waiting)
            if shown is not None:
                shown.waiting()  # where the child ended, however soon
        after_child = progress if shown is None else shown.alone
        with _apart_database(apart_file if built_apart else None) as apart_database:
            holders: dict[ReadModelName, ViewDatabase] = dict.fromkeys(
                ReadModelName, rebuilt_database
            )
            if apart.models:
                if apart_database is None:  # the second process failed: build its part here
                    catch_up_models(
                        log,
                        rebuilt_database,
                        apart.models,
                        batch_size=batch_size,
                        until=until,
                        progress=after_child,
                    )
                else:
                    holders.update(dict.fromkeys(apart.models, apart_database))
            report = _verify_in_snapshot(log, database, holders, batch_size, after_child)
            if report is not None:
                built = tuple(model.value for model in apart.models) if built_apart else ()
                return replace(report, apart=built)
    # A live model went back (recreated from zero) after the rebuild passed it: start again.
    return verify(log, database, batch_size=batch_size, progress=progress, apart_from=apart_from)


def _verify_in_snapshot(
    log: EventLog,
    database: ViewDatabase,
    holders: dict[ReadModelName, ViewDatabase],
    batch_size: int,
    progress: Progress | None,
) -> VerifyReport | None:
    """In one snapshot of the live views: each rebuilt model (in the database holding it) up to
    the live position, then the comparison; None if a live model went back meanwhile."""
    groups: dict[int, tuple[ViewDatabase, list[ReadModelName]]] = {}
    for model, holder in holders.items():
        groups.setdefault(id(holder), (holder, []))[1].append(model)
    with database.reading() as live:
        positions = live.positions()
        for holder, models in groups.values():
            reached = holder.positions()
            if any(reached.get(model.value, 0) > positions.get(model.value, 0) for model in models):
                return None
        for holder, models in groups.values():
            catch_up_models(
                log, holder, models, batch_size=batch_size, until=positions, progress=progress
            )
        with ExitStack() as stack:
            snapshots = {
                id(holder): stack.enter_context(holder.reading()) for holder, _ in groups.values()
            }
            rebuilt = _Joined({model: snapshots[id(holder)] for model, holder in holders.items()})
            return _compare(positions, live, rebuilt)


class _Slower:
    """Verify's progress while two processes rebuild: the slower of this one and the second
    (``Apart.reached``), so the bar neither runs ahead of the second process nor stops while
    this one waits for it; and never back (``alone``: this process's catch-ups after the child
    ended, which restart from zero where the child failed)."""

    def __init__(self, progress: Progress, apart: Apart) -> None:
        self._progress = progress
        self._apart = apart
        self._own = 0
        self._head = 0
        self._shown = 0

    def __call__(self, position: int, head: int) -> None:
        self._own, self._head = position, head
        self.waiting()

    def waiting(self) -> None:
        self._show(min(self._own, self._apart.reached()), self._head)

    def alone(self, position: int, head: int) -> None:
        self._show(position, head)

    def _show(self, position: int, head: int) -> None:
        self._shown = max(self._shown, position)
        self._progress(self._shown, head)


class _Joined:
    """One rebuilt snapshot made of several, each read for the models it holds."""

    def __init__(self, snapshots: dict[ReadModelName, ViewSnapshot]) -> None:
        self._snapshots = snapshots

    def positions(self) -> dict[str, int]:
        return {
            model.value: snapshot.positions().get(model.value, 0)
            for model, snapshot in self._snapshots.items()
        }

    def rows(self, table: ViewTable[RowT, Any]) -> Iterator[RowT]:
        return self._snapshots[table.model].rows(table)

    def rows_above(self, table: ViewTable[RowT, Any], first: Any) -> Iterator[RowT]:
        return self._snapshots[table.model].rows_above(table, first)

    def stored(self, table: ViewTable[RowT, Any]) -> StoredRows[RowT] | None:
        return self._snapshots[table.model].stored(table)


def _live(positions: dict[str, int]) -> dict[str, int]:
    return {model.value: positions.get(model.value, 0) for model in ReadModelName}


@contextmanager
def _scratch(scratch: ViewDatabase | None) -> Iterator[tuple[ViewDatabase, str | None]]:
    """The rebuild's database, and the temporary directory it lives in (None: the caller's)."""
    if scratch is not None:
        yield scratch, None
        return
    with tempfile.TemporaryDirectory(prefix="creditledger-verify-") as directory:
        database = SqliteViewDatabase(
            os.path.join(directory, "rebuilt.sqlite"), cache_mib=SCRATCH_CACHE_MIB
        )
        try:
            yield database, directory
        finally:
            database.close()


@contextmanager
def _apart_database(path: str | None) -> Iterator[ViewDatabase | None]:
    """The scratch file a second process built, opened (None: no such file)."""
    if path is None:
        yield None
        return
    database = SqliteViewDatabase(path, cache_mib=SCRATCH_CACHE_MIB)
    try:
        yield database
    finally:
        database.close()


def _compare(positions: dict[str, int], live: ViewSnapshot, rebuilt: ViewSnapshot) -> VerifyReport:
    kept: list[Difference] = []
    count = 0

    def note(found: Iterable[Difference]) -> None:
        nonlocal count
        for difference in found:
            count += 1
            if len(kept) < KEPT_DIFFERENCES:
                kept.append(difference)

    note(compare_positions(positions, rebuilt.positions()))
    rows: dict[str, int] = {}
    balances = GroupBalances()
    for table in TABLES:
        live_stored, rebuilt_stored = live.stored(table), rebuilt.stored(table)
        if (
            live_stored is not None
            and rebuilt_stored is not None
            and live_stored.form == rebuilt_stored.form
        ):
            # Both sides hold rows alike (a SQLite store, a SQLite rebuild): compare what they
            # hold, reading rows back only where it differs.
            live_values = _counted(live_stored.values, rows, table.name)
            if table is Tables.ENTRIES:
                live_values = _fed(live_values, _stored_entry_feed(live_stored, balances))
            note(
                compare_stored_table(
                    table, replace(live_stored, values=live_values), rebuilt_stored
                )
            )
            continue
        live_rows = _counted(live.rows(table), rows, table.name)
        if table is Tables.ENTRIES:
            live_rows = _fed(live_rows, balances.add)
        note(compare_table(table, live_rows, rebuilt.rows(table)))
    note(balances.differences())
    return VerifyReport(positions, rows, kept, count)


def _stored_entry_feed(
    entries: StoredRows[LedgerEntry], balances: GroupBalances
) -> Callable[[tuple[Any, ...]], None]:
    """``balances.add`` of each stored ledger entry, reading back its group and amount only (a
    group's entries come together: its id is read once per run)."""
    group_at = entries.names.index("transaction_group_id")
    amount_at = entries.names.index("amount")
    read_group = entries.column("transaction_group_id")
    read_amount = entries.column("amount")
    stored: Any = object()  # the run's group as stored, and as read back
    group: Any = None

    def feed(values: tuple[Any, ...]) -> None:
        nonlocal stored, group
        if values[group_at] != stored or type(values[group_at]) is not type(stored):
            stored = values[group_at]
            group = read_group(stored)
        balances.add_amount(group, read_amount(values[amount_at]))

    return feed


def _counted(found: Iterator[RowT], counts: dict[str, int], name: str) -> Iterator[RowT]:
    counts[name] = 0
    for row in found:
        counts[name] += 1
        yield row


def _fed(found: Iterator[RowT], feed: Callable[[RowT], None]) -> Iterator[RowT]:
    for row in found:
        feed(row)
        yield row
