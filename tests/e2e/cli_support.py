"""Running the installed ``creditledger`` as a person does: on a terminal (a pseudo-terminal),
where the command prints tables instead of JSON."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ENTRY_POINT = Path(sys.executable).with_name("creditledger")
TIMEOUT = 60
NARROW = "60"
"""Columns of the test's terminal: narrower than any table with an id in it."""

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(*args: str, env: Mapping[str, str]) -> tuple[int, str]:
    """Run ``creditledger ARGS`` with stdout on a narrow terminal; its exit code and what it
    printed there (without colours)."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [str(ENTRY_POINT), *args],
        stdout=secondary,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env={**env, "COLUMNS": NARROW, "TERM": "xterm"},
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    code = process.wait(timeout=TIMEOUT)
    return code, _ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")
