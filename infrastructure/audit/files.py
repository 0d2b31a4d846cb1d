"""Export files: written whole or not at all, read back line by line."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

STDIO = "-"
"""The file name that means standard output (export) or standard input (verify)."""


@contextmanager
def export_file(path: str) -> Iterator[TextIO]:
    """A text file to write an export into; it appears at ``path`` only once complete.

    The export is written next to its destination under a temporary name and renamed at the end,
    so an interrupted export never leaves a file that looks finished.
    """
    if path == STDIO:
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="\n") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def export_lines(path: str) -> Iterator[Iterator[str]]:
    """The lines of an export file (or of standard input), newlines removed."""
    if path == STDIO:
        yield (line.rstrip("\n") for line in sys.stdin)
        return
    with Path(path).open(encoding="utf-8", newline="\n") as handle:
        yield (line.rstrip("\n") for line in handle)
