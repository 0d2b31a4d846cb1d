"""A job handed to a fresh interpreter running one of our modules (``python -m``).

Why a fresh interpreter, not a fork nor ``multiprocessing``: the parent may hold a connection
pool's threads, and a forked child of a threaded process can deadlock on a lock one of them
held; ``multiprocessing``'s spawn imports the caller's main script again in the child, so a
script that runs a job at its top level would run again there. The job travels pickled on the
child's stdin; its output is of no use to the parent, which meets any failure itself (each
caller says how).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from typing import Any


def start_child(module: str, job: object) -> subprocess.Popen[bytes] | None:
    """``python -m module``, given ``job``; None if no interpreter can be started here
    (embedded, say)."""
    if not sys.executable:
        return None
    try:
        child = subprocess.Popen(  # noqa: S603  # this interpreter, one of our modules
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None
    try:
        with child.stdin as job_input:  # type: ignore[union-attr]  # stdin=PIPE: never None
            job_input.write(pickle.dumps(job))
    except OSError:  # it died before reading its job: its exit status says so
        pass
    return child


def read_job() -> Any:
    """In the child: the job its parent wrote on stdin. Its class is the one of the module's
    import (the parent pickled it so), not ``__main__``'s copy: no ``isinstance`` against the
    latter."""
    return pickle.load(sys.stdin.buffer)  # noqa: S301  # from the parent, trusted
