# ruff: noqa: S608
# (S608: statements name only our own tables and columns; every value is a bound parameter.)
"""A view transaction's reads and writes in SQL: ``TableAccess`` over one open cursor."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from enum import Enum
from typing import Any, TypeVar

from creditledger.application.projections.rows import Index, ReadModelName, ViewTable
from creditledger.infrastructure.projections.layout import MODEL_TABLES, TRACKING_TABLE, Layout
from creditledger.infrastructure.projections.sql.dialect import Cursor, Dialect
from creditledger.infrastructure.projections.sql.schema import now_text
from creditledger.infrastructure.projections.tables import spec_of

RowT = TypeVar("RowT")
KeyT = TypeVar("KeyT")
_CHUNK = 500


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


class SqlAccess:
    """``TableAccess`` over one open SQL transaction (see ``buffer.TableAccess``)."""

    def __init__(self, dialect: Dialect, cursor: Cursor, layout: Layout) -> None:
        self.dialect = dialect
        self.cursor = cursor
        self.layout = layout
        self._tracking: dict[str, tuple[int, str]] = {}
        """The tracking rows as read and written in this transaction (``tracking_stamp``)."""

    def _t(self, table: ViewTable[Any, Any]) -> str:
        return self.dialect.qualify(self.layout.table(table))

    # -- tracking -------------------------------------------------------------------------

    def read_positions(self, names: Sequence[str]) -> dict[str, int]:
        self.cursor.execute(
            f"SELECT name, position, updated_at FROM {self.dialect.qualify(TRACKING_TABLE)} "
            f"WHERE {self.dialect.any_of('name', len(names))} ORDER BY name"
            f"{self.dialect.lock_suffix}",
            self.dialect.any_params(list(names)),
        )
        rows = self.cursor.fetchall()
        self._tracking = {str(name): (int(position), str(at)) for name, position, at in rows}
        found = {name: position for name, (position, _) in self._tracking.items()}
        missing = [name for name in names if name not in found]
        if missing:
            msg = f"read model tracking rows missing: {missing} (tables not created?)"
            raise LookupError(msg)
        return found

    def write_positions(self, positions: Mapping[str, int]) -> None:
        now = now_text()
        self.cursor.executemany(
            f"UPDATE {self.dialect.qualify(TRACKING_TABLE)} "
            "SET position = ?, updated_at = ? WHERE name = ?",
            [(position, now, name) for name, position in sorted(positions.items())],
        )
        for name, position in positions.items():
            self._tracking[name] = (position, now)

    def tracking_stamp(self) -> Hashable | None:
        # Every write of a tracking row sets its updated_at (a projector's batch, a rebuild's
        # swap, a skip, a model recreated): equal stamps mean nobody else committed since.
        return tuple(sorted(self._tracking.items()))

    # -- rows -----------------------------------------------------------------------------

    def fetch(self, table: ViewTable[RowT, KeyT], keys: Sequence[KeyT]) -> list[RowT]:
        """The rows with these keys (a key is a value, or a tuple for composite keys)."""
        spec = spec_of(table)
        rows: list[RowT] = []
        kinds = [spec.kind(name) for name in spec.key]
        for start in range(0, len(keys), _CHUNK):
            chunk: Sequence[Any] = keys[start : start + _CHUNK]
            if len(spec.key) == 1:
                chunk = [(key,) for key in chunk]
            encoded = [
                [
                    self.dialect.encode(kind, _plain(part))
                    for kind, part in zip(kinds, key, strict=True)
                ]
                for key in chunk
            ]
            condition, params = self.dialect.keys_in(spec.key, kinds, encoded)
            self.cursor.execute(
                f"SELECT {', '.join(spec.names)} FROM {self._t(table)} WHERE {condition}",
                params,
            )
            rows += [self.dialect.row_of(spec, values) for values in self.cursor.fetchall()]
        return rows

    def insert(self, table: ViewTable[RowT, Any], rows: Sequence[RowT]) -> None:
        spec = spec_of(table)
        self.cursor.insert_rows(
            self._t(table),
            spec.names,
            self.dialect.column_types(spec),
            [self.dialect.row_params(spec, row) for row in rows],
        )

    def upsert(self, table: ViewTable[RowT, Any], rows: Sequence[RowT]) -> None:
        # The buffer holds one change per key, so no statement touches a row twice.
        spec = spec_of(table)
        self.dialect.upsert(
            self.cursor, self._t(table), spec, [self.dialect.row_params(spec, row) for row in rows]
        )

    def scan(
        self,
        table: ViewTable[RowT, Any],
        index: Index,
        prefix: tuple[Any, ...],
        *,
        above: tuple[Any, ...] | None = None,
        below: tuple[Any, ...] | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[RowT]:
        spec = spec_of(table)
        encode = self.dialect.encode
        equal, rest = index.columns[: len(prefix)], index.columns[len(prefix) :]
        conditions = [f"{name} = ?" for name in equal]
        params = [
            encode(spec.kind(name), _plain(value))
            for name, value in zip(equal, prefix, strict=True)
        ]
        for bound, sign in ((above, ">"), (below, "<")):
            if bound is not None:
                names = rest[: len(bound)]
                conditions.append(f"({', '.join(names)}) {sign} ({', '.join('?' * len(bound))})")
                params += [
                    encode(spec.kind(name), _plain(value))
                    for name, value in zip(names, bound, strict=True)
                ]
        sort = " DESC" if descending else " ASC"
        statement = (
            f"SELECT {', '.join(spec.names)} FROM {self._t(table)} "
            f"WHERE {' AND '.join(conditions)} "
            f"ORDER BY {', '.join(name + sort for name in rest)}"
        )
        if limit is not None:
            statement += f" LIMIT {int(limit)}"
        self.cursor.execute(statement, params)
        return [self.dialect.row_of(spec, values) for values in self.cursor.fetchall()]

    # -- rebuild --------------------------------------------------------------------------

    def swap_in(self, model: ReadModelName, rebuilt: Layout, live: Layout) -> None:
        dialect, cursor = self.dialect, self.cursor
        for table in MODEL_TABLES[model]:
            cursor.execute(f"DROP TABLE IF EXISTS {dialect.qualify(live.table(table))}")
            cursor.execute(
                f"ALTER TABLE {dialect.qualify(rebuilt.table(table))} RENAME TO {live.table(table)}"
            )
        tracking = dialect.qualify(TRACKING_TABLE)
        cursor.execute(
            f"UPDATE {tracking} SET position = "
            f"(SELECT position FROM {tracking} WHERE name = ?), updated_at = ? WHERE name = ?",
            (rebuilt.tracking[model], now_text(), live.tracking[model]),
        )
        cursor.execute(f"DELETE FROM {tracking} WHERE name = ?", (rebuilt.tracking[model],))
