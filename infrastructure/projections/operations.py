"""Operating the read models: status, rebuild (build fresh, then swap) and verify."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from creditledger.application.projections.compare import Difference, compare, unbalanced_groups
from creditledger.application.projections.rows import TABLES, ReadModelName
from creditledger.application.projections.source import EventLog
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.memory import MemoryViewDatabase
from creditledger.infrastructure.projections.runner import (
    BLOCKED_RETRY_SECONDS,
    DEFAULT_BATCH_SIZE,
    Progress,
    ProjectionRunner,
)


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
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return vars(self)


def rebuild(
    log: EventLog,
    database: ViewDatabase,
    model: ReadModelName,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> RebuildReport:
    """Rebuild ``model`` from position zero into fresh tables, then swap them in.

    Readers keep using the live tables, complete, while the new ones fill; the swap happens in
    one transaction that holds the live model's tracking lock, applies the events recorded in
    the meantime, and renames the new tables over the old: no reader ever sees an empty or
    partial view, and the live projector resumes from the swapped-in position.
    """
    started = time.perf_counter()
    layout = database.create_rebuild_tables(model)
    runner = ProjectionRunner(log, database, layout=layout, batch_size=batch_size)
    try:
        events = runner.catch_up(progress=progress)
        names = [layout.tracking[model], database.live.tracking[model]]
        with database.transaction(layout, names) as transaction:
            while True:
                result = runner.apply_next(transaction)
                if result.blocked:
                    time.sleep(BLOCKED_RETRY_SECONDS)
                    continue
                if result.applied == 0:
                    break
                events += result.applied
            position = transaction.positions()[layout.tracking[model]]
            transaction.flush()
            transaction.access.swap_in(model, layout, database.live)
    except BaseException:
        database.drop_rebuild_tables(model)
        raise
    runner.signal.committed()
    return RebuildReport(model.value, position, events, time.perf_counter() - started)


@dataclass(frozen=True)
class VerifyReport:
    positions: dict[str, int]
    rows: dict[str, int]
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def as_dict(self, *, limit: int = 50) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "positions": self.positions,
            "rows": self.rows,
            "differences": len(self.differences),
            "first_differences": [d.describe() for d in self.differences[:limit]],
        }


def verify(
    log: EventLog,
    database: ViewDatabase,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> VerifyReport:
    """Rebuild every model in memory up to where the live views stand; compare row by row.

    Also checks that every transaction group of the live ledger sums to zero.
    """
    live = database.snapshot()
    rebuilt_database = MemoryViewDatabase()
    runner = ProjectionRunner(log, rebuilt_database, batch_size=batch_size)
    runner.catch_up(until=live.positions, progress=progress)
    rebuilt = rebuilt_database.snapshot()
    differences = compare(live, rebuilt) + unbalanced_groups(live.entries)
    rows = {table.name: len(live.rows(table)) for table in TABLES}
    return VerifyReport(live.positions, rows, differences)
