# ruff: noqa: S608
# (S608: statements name only our own tables and columns; every value is a bound parameter.)
"""Creating, dropping and checking the read model tables, and their tracked positions."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from creditledger.application.projections.rows import (
    DEFINITION_VERSIONS,
    ReadModelName,
)
from creditledger.infrastructure.projections.layout import (
    MODEL_TABLES,
    TRACKING_TABLE,
    Layout,
)
from creditledger.infrastructure.projections.sql.dialect import Cursor, Dialect
from creditledger.infrastructure.projections.tables import (
    SPECS,
    TableSpec,
)


def create_table_statements(dialect: Dialect, spec: TableSpec[Any], name: str) -> list[str]:
    columns = ", ".join(
        f"{column.name} {dialect.column_type(column.kind)}"
        + ("" if column.nullable else " NOT NULL")
        for column in spec.columns
    )
    statements = [
        f"CREATE TABLE {dialect.qualify(name)} ({columns}, PRIMARY KEY ({', '.join(spec.key)}))"
    ]
    # Index names must be unique in the schema, and a rebuilt table keeps its indexes when it is
    # renamed over the live one: each generation of a table gets its own token.
    token = secrets.token_hex(4)
    statements += [
        f"CREATE INDEX ix_{spec.table.name}_{token}_{index.purpose} "
        f"ON {dialect.qualify(name)} ({', '.join(index.columns)})"
        for index in spec.indexes
    ]
    return statements


TRACKING_STATEMENT = (
    "CREATE TABLE IF NOT EXISTS {table} (name TEXT NOT NULL PRIMARY KEY, "
    "position BIGINT NOT NULL, updated_at TEXT NOT NULL)"
)


DEFINITIONS_TABLE = "readmodel_definitions"
DEFINITIONS_STATEMENT = (
    "CREATE TABLE IF NOT EXISTS {table} (model TEXT NOT NULL PRIMARY KEY, definition TEXT NOT NULL)"
)


def model_definition(model: ReadModelName) -> str:
    """A digest of what a model's tables hold: each table's columns (name, kind, nullable) and
    the model's rules version. Tables written under another definition are rebuilt from the log
    (an upgraded server never applies new events to rows of another shape or meaning)."""
    parts = [f"rules {DEFINITION_VERSIONS[model]}"]
    for table in MODEL_TABLES[model]:
        columns = ",".join(
            f"{column.name} {column.kind.name}{' null' if column.nullable else ''}"
            for column in SPECS[table].columns
        )
        parts.append(f"{table.name}({columns})")
    return hashlib.sha256("; ".join(parts).encode()).hexdigest()


class SqlSchema:
    """Creates, drops and checks the read model tables of one layout."""

    def __init__(self, dialect: Dialect, cursor: Cursor) -> None:
        self.dialect = dialect
        self.cursor = cursor

    def ensure(self, layout: Layout) -> None:
        """Create what is missing; a model with any table missing, or written under another
        definition (an older release's columns or rules), starts again from zero."""
        dialect, cursor = self.dialect, self.cursor
        # Looked up first: a complete schema then needs no DDL, nor the right to run any.
        if not dialect.table_exists(cursor, TRACKING_TABLE):
            cursor.execute(TRACKING_STATEMENT.format(table=dialect.qualify(TRACKING_TABLE)))
        if not dialect.table_exists(cursor, DEFINITIONS_TABLE):
            cursor.execute(DEFINITIONS_STATEMENT.format(table=dialect.qualify(DEFINITIONS_TABLE)))
        for model in layout.models:
            tables = MODEL_TABLES[model]
            present = [dialect.table_exists(cursor, layout.table(table)) for table in tables]
            if all(present) and self._definition(layout, model) == model_definition(model):
                self._track(layout.tracking[model], reset=False)
                continue
            self.create(layout, model)

    def create(self, layout: Layout, model: ReadModelName) -> None:
        """(Re)create the model's tables empty, tracked from position zero."""
        self.drop(layout, model)
        for table in MODEL_TABLES[model]:
            for statement in create_table_statements(
                self.dialect, SPECS[table], layout.table(table)
            ):
                self.cursor.execute(statement)
        self._track(layout.tracking[model], reset=True)
        self._define(layout, model)

    def drop(self, layout: Layout, model: ReadModelName) -> None:
        for table in MODEL_TABLES[model]:
            self.cursor.execute(f"DROP TABLE IF EXISTS {self.dialect.qualify(layout.table(table))}")

    def _definition(self, layout: Layout, model: ReadModelName) -> str | None:
        self.cursor.execute(
            f"SELECT definition FROM {self.dialect.qualify(DEFINITIONS_TABLE)} WHERE model = ?",
            (layout.tracking[model],),
        )
        found = self.cursor.fetchone()
        return str(found[0]) if found else None

    def _define(self, layout: Layout, model: ReadModelName) -> None:
        self.cursor.execute(
            f"INSERT INTO {self.dialect.qualify(DEFINITIONS_TABLE)} (model, definition) "
            "VALUES (?, ?) ON CONFLICT (model) DO UPDATE SET definition = excluded.definition",
            (layout.tracking[model], model_definition(model)),
        )

    def forget(self, tracking_name: str) -> None:
        self.cursor.execute(
            f"DELETE FROM {self.dialect.qualify(TRACKING_TABLE)} WHERE name = ?", (tracking_name,)
        )

    def _track(self, name: str, *, reset: bool) -> None:
        table = self.dialect.qualify(TRACKING_TABLE)
        now = now_text()
        if reset:
            self.forget(name)
        self.cursor.execute(
            f"INSERT INTO {table} (name, position, updated_at) VALUES (?, 0, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (name, now),
        )


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
