"""How a command prints its result: JSON for scripts, a table for people, nothing ever cut.

Stdout that is not a terminal (a pipe, a file, a CI log) gets JSON, whatever the command, so a
script never has to parse a table; ``--json`` asks for JSON on a terminal too. Tables wrap long
values (hashes, ids, statuses) onto more lines instead of cutting them with an ellipsis.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

_NO_LIMIT = 100_000
"""Wider than any table: measured against it, a table shows its natural width."""


def json_wanted(asked: bool) -> bool:
    """JSON if the user asked for it, or if no person is reading stdout."""
    return asked or not sys.stdout.isatty()


def table(title: str, *columns: str, show_header: bool = True) -> Table:
    """A table whose every column folds a long value rather than truncating it."""
    new = Table(title=title, show_header=show_header)
    for index, column in enumerate(columns):
        new.add_column(
            column, overflow="fold", style="bold" if not show_header and index == 0 else None
        )
    return new


def field_table(title: str, rows: list[tuple[str, str]]) -> Table:
    """Two columns, field and value, one row per field."""
    found = table(title, "field", "value", show_header=False)
    for field, value in rows:
        found.add_row(field, value)
    return found


def print_table(found: Table) -> None:
    """Print at the table's natural width even past the terminal's: the terminal wraps a long
    line on screen, but every value stays whole (to read, copy or search)."""
    console = Console()
    unbounded = console.options.update_width(_NO_LIMIT)
    natural = Measurement.get(console, unbounded, found).maximum
    Console(width=max(console.width, natural)).print(found)
