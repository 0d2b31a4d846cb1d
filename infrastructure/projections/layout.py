"""Where each read model lives: its tables' names, live or being rebuilt, and its tracking name.

A rebuild writes a model's rows into fresh tables named with ``__rebuild`` and tracks them under
``<model>__rebuild``; the swap renames them over the live ones in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from creditledger.application.projections.rows import TABLES, ReadModelName, Tables, ViewTable

TABLE_PREFIX = "readmodel_"
TRACKING_TABLE = f"{TABLE_PREFIX}tracking"
REBUILD_SUFFIX = "__rebuild"

Table = Tables
"""The tables by name (``Table.ENTRIES``): their declarations, in ``rows.py``."""

MODEL_TABLES: dict[ReadModelName, tuple[ViewTable[Any, Any], ...]] = {
    model: tuple(table for table in TABLES if table.model is model) for model in ReadModelName
}


@dataclass(frozen=True)
class Layout:
    """Physical table names and tracking names for a set of read models."""

    models: tuple[ReadModelName, ...]
    tables: dict[ViewTable[Any, Any], str]
    tracking: dict[ReadModelName, str]

    def table(self, table: ViewTable[Any, Any]) -> str:
        return self.tables[table]

    @property
    def tracking_names(self) -> list[str]:
        return [self.tracking[model] for model in self.models]


def live_layout(models: tuple[ReadModelName, ...] = tuple(ReadModelName)) -> Layout:
    return Layout(
        models=models,
        tables={table: f"{TABLE_PREFIX}{table.name}" for table in TABLES},
        tracking={model: model.value for model in ReadModelName},
    )


def rebuild_layout(*models: ReadModelName) -> Layout:
    """The fresh tables a rebuild of ``models`` (in one pass over the log) writes into; other
    models keep live names."""
    live = live_layout()
    tables = dict(live.tables)
    tracking = dict(live.tracking)
    for model in models:
        for table in MODEL_TABLES[model]:
            tables[table] = f"{live.tables[table]}{REBUILD_SUFFIX}"
        tracking[model] = f"{model.value}{REBUILD_SUFFIX}"
    return Layout(models=models, tables=tables, tracking=tracking)
