"""Python run in a child process whose address space is capped: the memory tests' harness.

A child measures its own size once its imports are done and caps itself at that plus a budget
(``cap_address_space``), so the budget is what the job under test may add, whatever the
interpreter and libraries take on this machine. ``run_capped`` runs such a child and returns the
last line it printed (or, if it printed nothing, what it wrote to stderr or its exit status).
"""

from __future__ import annotations

import subprocess
import sys

CAP = '''
import resource


def cap_address_space(budget_mib):
    """Cap this process's address space at its size now plus ``budget_mib`` MiB."""
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    limit = size + budget_mib * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
'''


def run_capped(child: str, *arguments: str, timeout: float = 900) -> str:
    """Run ``child`` (after ``CAP``'s definitions) with ``arguments``; its last line of output."""
    done = subprocess.run(
        [sys.executable, "-c", CAP + child, *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout.strip() or done.stderr.strip()
    return output.splitlines()[-1] if output else f"no output, exit status {done.returncode}"
