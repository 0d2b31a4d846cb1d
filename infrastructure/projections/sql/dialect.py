# ruff: noqa: S608
# (S608: statements name only our own tables and columns; every value is a bound parameter.)
"""How one SQL store spells placeholders, column types and values; rows to parameters and back.

The statements are written once with ``?`` placeholders; a dialect spells placeholders, column
types and values its own way (PostgreSQL: ``NUMERIC``, ``timestamptz``, ``uuid``, ``jsonb``;
SQLite: exact decimal ``TEXT``, fixed-width UTC ISO timestamps that sort as they compare).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from typing import Any, Protocol, TypeVar
from uuid import UUID

from creditledger.application.projections.rows import ViewTable
from creditledger.infrastructure.projections.tables import (
    Kind,
    TableSpec,
)

RowT = TypeVar("RowT")
Params = Sequence[Any]


class Cursor(Protocol):
    """The little of a DB-API cursor the views use (adapted per driver)."""

    def execute(self, sql: str, params: Params = ()) -> None: ...

    def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def insert_rows(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: Sequence[Params]
    ) -> None:
        """Insert many new rows, of ``row_params``, into ``columns`` of the dialect's
        ``column_type``s ``types`` (PostgreSQL: a binary ``COPY``, which needs them)."""
        ...

    def stream(self, sql: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of a query, fetched a chunk at a time (not all held at once)."""
        ...


Convert = Callable[[Any], Any]

ID_TEXTS_KEPT = 1 << 14


def id_text_memo() -> Convert:
    """``str`` of an id, with the latest answers remembered (at most ``ID_TEXTS_KEPT``).

    A batch writes the same ids many times over (a purchase's row carries its ids each time it
    changes; a ledger entry repeats its purchase's), and ``str(UUID)`` (like psycopg's dumping
    of a ``UUID``) is Python code of a microsecond. Looked up by the id's integer:
    ``UUID.__hash__`` and ``__eq__`` are Python code too, the integer's are not (issue 14,
    session 6: the lookup 2.5 times faster). Equal integers are equal ids, so the text is the
    same; PostgreSQL reads the text into a ``uuid`` column as it reads the ``UUID``.
    """
    remembered: dict[int, str] = {}

    def memoized(value: UUID) -> str:
        number = value.int
        found = remembered.get(number)
        if found is None:
            if len(remembered) >= ID_TEXTS_KEPT:
                remembered.clear()
            found = remembered[number] = str(value)
        return found

    return memoized


class Dialect(ABC):
    """How one SQL store spells names, types and values."""

    lock_suffix = ""
    """Appended to the tracking read: PostgreSQL locks the rows, SQLite's BEGIN IMMEDIATE has."""
    stored_form: str | None = None
    """Set where the driver gives stored values (text, integers, floats, blobs, NULL) that every
    column reads back by a pure function of the value: two stores of this form hold equal rows
    as equal values of equal types, so ``verify`` compares what they hold
    (``compare_stored_table``). None: rows are compared."""

    def __init__(self) -> None:
        self._plans: dict[ViewTable[Any, Any], Callable[[Any], Any]] = {}
        self._readers: dict[ViewTable[Any, Any], Callable[[Any], Any]] = {}

    @abstractmethod
    def qualify(self, table: str) -> str:
        """The table's name as statements refer to it."""

    @abstractmethod
    def column_type(self, kind: Kind) -> str: ...

    @abstractmethod
    def encoder(self, kind: Kind) -> Convert | None:
        """How a value of this kind is written (None: as it is)."""

    def row_encoder(self, kind: Kind) -> Convert | None:
        """How a value of this kind is written in a row of ``row_params`` (default: as
        ``encoder`` writes a parameter)."""
        return self.encoder(kind)

    def column_types(self, spec: TableSpec[Any]) -> list[str]:
        """The table's column types, in column order (``Cursor.insert_rows``'s ``types``)."""
        return [self.column_type(column.kind) for column in spec.columns]

    @abstractmethod
    def decoder(self, kind: Kind) -> Convert | None:
        """How a stored value of this kind is read back (None: as it is)."""

    @abstractmethod
    def table_exists(self, cursor: Cursor, table: str) -> bool: ...

    def encode(self, kind: Kind, value: Any) -> Any:
        convert = self.encoder(kind)
        return value if convert is None or value is None else convert(value)

    def decode(self, kind: Kind, value: Any) -> Any:
        convert = self.decoder(kind)
        return value if convert is None or value is None else convert(value)

    def sort_column(self, column: str, kind: Kind) -> str:
        """``column`` as ORDER BY must name it to sort as Python sorts its values.

        SQLite compares text by its UTF-8 bytes, which is Python's order of ``str``; ids are
        lower-case hexadecimal text, sorting as ``UUID`` values compare.
        """
        del kind
        return column

    def any_of(self, column: str, count: int) -> str:
        return f"{column} IN ({', '.join('?' * count)})"

    def keys_in(
        self, columns: Sequence[str], kinds: Sequence[Kind], keys: Sequence[Sequence[Any]]
    ) -> tuple[str, list[Any]]:
        """A condition matching rows whose key columns equal one of ``keys`` (encoded).

        Spelled as ORed equalities, which SQLite answers with one primary-key probe each (a
        row-value ``IN (VALUES ...)`` would scan the table).
        """
        del kinds
        one = "(" + " AND ".join(f"{column} = ?" for column in columns) + ")"
        return " OR ".join([one] * len(keys)), [part for key in keys for part in key]

    def any_params(self, values: Sequence[Any]) -> list[Any]:
        return list(values)

    def upsert(
        self, cursor: Cursor, table: str, spec: TableSpec[Any], rows: Sequence[Params]
    ) -> None:
        """Insert the rows, or update the ones whose key exists (one statement per row)."""
        names = spec.names
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT ({', '.join(spec.key)}) DO UPDATE SET {updates_of(spec)}",
            rows,
        )

    # -- rows: a converter compiled once per table, applied per row ----------------------

    def row_params(self, spec: TableSpec[Any], row: object) -> Sequence[Any]:
        params = self._plans.get(spec.table)
        if params is None:
            conversions: list[Convert | None] = []
            for column in spec.columns:
                convert = self.row_encoder(column.kind)
                if (
                    column.shape is not None
                    and isinstance(column.shape, type)
                    and issubclass(column.shape, Enum)
                ):
                    convert = _enum_value
                conversions.append(convert)
            params = self._plans[spec.table] = _compiled(
                "params", "row.__dict__", spec.names, conversions
            )
        return params(row)  # type: ignore[no-any-return]

    def row_of(self, spec: TableSpec[RowT], stored: Sequence[Any]) -> RowT:
        read = self._readers.get(spec.table)
        if read is None:
            read = self._readers[spec.table] = _compiled(
                "row_of",
                "row",
                list(range(len(spec.columns))),
                self._read_conversions(spec),
                spec.row_type,
            )
        return read(stored)  # type: ignore[no-any-return]

    def key_reader(self, spec: TableSpec[Any]) -> Callable[[Sequence[Any]], Any]:
        """A stored row's key, as ``table.key_of`` of its ``row_of``: its key columns read back
        alone (the value itself for a one-column key, as ``key_of`` gives it)."""
        names = spec.names
        indexes = [names.index(column) for column in spec.key]
        every = self._read_conversions(spec)
        read = _compiled("key_of", "row", indexes, [every[index] for index in indexes])
        if len(indexes) > 1:
            return read
        return lambda stored: read(stored)[0]

    def column_reader(self, spec: TableSpec[Any], name: str) -> Convert:
        """How ``row_of`` reads one column's stored value back (None stays None)."""
        convert = self._read_conversions(spec)[spec.names.index(name)]
        if convert is None:
            return lambda value: value
        return lambda value: None if value is None else convert(value)

    def _read_conversions(self, spec: TableSpec[Any]) -> list[Convert | None]:
        conversions: list[Convert | None] = []
        for column in spec.columns:
            convert = self.decoder(column.kind)
            shape = None if column.shape is None else _shaping(column.shape)
            if convert is not None and shape is not None:
                convert = _then(convert, shape)
            elif shape is not None:
                convert = shape
            conversions.append(convert)
        return conversions


def _compiled(
    name: str,
    source: str,
    fields: Sequence[str] | Sequence[int],
    conversions: Sequence[Convert | None],
    make: Callable[..., Any] | None = None,
) -> Callable[[Any], Any]:
    """One function turning a row (by field name) or a stored tuple (by index) into the other.

    The catch-up converts every row it writes (issue 14: a fifth of its time was this loop, value
    by value); a function written out for the table does it in one expression. Each value with
    a conversion is converted unless it is None; the others are passed as they are.
    """
    namespace: dict[str, Any] = {}
    parts = []
    for index, (field, convert) in enumerate(zip(fields, conversions, strict=True)):
        value = f"values[{field!r}]"
        if convert is None:
            parts.append(value)
        else:
            namespace[f"convert{index}"] = convert
            parts.append(f"(None if (v{index} := {value}) is None else convert{index}(v{index}))")
    result = f"({', '.join(parts)},)"
    if make is not None:
        namespace["make"] = make
        result = f"make(*{result})"
    text = f"def {name}(row):\n    values = {source}\n    return {result}\n"
    exec(text, namespace)  # noqa: S102 - our own column names and indexes only
    function: Callable[[Any], Any] = namespace[name]
    return function


def updates_of(spec: TableSpec[Any]) -> str:
    return ", ".join(f"{name} = excluded.{name}" for name in spec.names if name not in spec.key)


def _enum_value(value: Enum) -> Any:
    # Every enum stored is a StrEnum: str() of it is its value, without the descriptor lookup.
    return str(value)


def _shaping(shape: Convert) -> Convert:
    """``shape`` as a row's reader applies it: an enum's member looked up by its value in a
    dictionary (calling the class costs a microsecond, ``verify`` reads several per row)."""
    if not (isinstance(shape, type) and issubclass(shape, Enum)):
        return shape
    members: dict[Any, Enum] = {member.value: member for member in shape}

    def member(value: Any) -> Any:
        # Calling the class looks the value up the same way; anything else (an unknown value,
        # which raises) goes to the class.
        found = members.get(value)
        return shape(value) if found is None else found

    return member


def _then(first: Convert, second: Convert) -> Convert:
    return lambda value: second(first(value))
