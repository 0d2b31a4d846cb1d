"""The read model tables as every SQL store keeps them: columns, keys and indexes.

Each table is declared once, with its row (``ViewTable`` in ``rows.py``); its columns are worked
out here from the row's fields: same names and order, a kind of value from each field's type,
nullable when the type admits ``None``. So a row is written and read back without a mapping.
Each store says how a kind of value is kept (``sql.Dialect``): amounts are exact, never floats.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, auto
from functools import cache
from typing import Any, Generic, TypeVar, Union, get_args, get_origin, get_type_hints
from uuid import UUID

from creditledger.application.projections.rows import TABLES, Index, ViewTable

RowT = TypeVar("RowT")


class Kind(Enum):
    UUID = auto()
    TEXT = auto()
    NUMERIC = auto()
    INTEGER = auto()
    BOOLEAN = auto()
    TIMESTAMP = auto()
    DATE = auto()
    JSON = auto()


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = False
    shape: Callable[[Any], Any] | None = None
    """Turns the stored value back into the row's type (an enum, a tuple)."""


@dataclass(frozen=True)
class TableSpec(Generic[RowT]):
    table: ViewTable[RowT, Any]
    row_type: Callable[..., RowT]
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    indexes: tuple[Index, ...] = ()

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def kind(self, name: str) -> Kind:
        return next(column.kind for column in self.columns if column.name == name)


_KINDS: tuple[tuple[type, Kind], ...] = (
    (UUID, Kind.UUID),
    (bool, Kind.BOOLEAN),  # before int: a bool is an int
    (int, Kind.INTEGER),
    (Decimal, Kind.NUMERIC),
    (datetime, Kind.TIMESTAMP),  # before date: a datetime is a date
    (date, Kind.DATE),
    (str, Kind.TEXT),  # after the enums' check below: a StrEnum is a str
)


def column_of(name: str, hint: Any) -> Column:
    """The column that keeps a field of this type."""
    nullable = False
    if get_origin(hint) in (Union, types.UnionType):
        parts = [part for part in get_args(hint) if part is not type(None)]
        nullable = len(parts) < len(get_args(hint))
        if len(parts) != 1:
            msg = f"field {name}: one type (or it and None) per column, not {hint}"
            raise TypeError(msg)
        hint = parts[0]
    origin = get_origin(hint)
    if origin in (tuple, dict):
        return Column(name, Kind.JSON, nullable, origin)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return Column(name, Kind.TEXT, nullable, hint)
    for kind_type, kind in _KINDS:
        if isinstance(hint, type) and issubclass(hint, kind_type):
            return Column(name, kind, nullable)
    msg = f"field {name}: no column kind for {hint}"
    raise TypeError(msg)


@cache
def spec_of(table: ViewTable[RowT, Any]) -> TableSpec[RowT]:
    hints = get_type_hints(table.row)
    columns = tuple(
        column_of(field.name, hints[field.name])
        for field in fields(table.row)  # type: ignore[arg-type]
    )
    return TableSpec(table, table.row, columns, table.key, table.indexes)


SPECS: dict[ViewTable[Any, Any], TableSpec[Any]] = {table: spec_of(table) for table in TABLES}
