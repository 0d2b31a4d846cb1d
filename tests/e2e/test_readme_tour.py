"""The README's tour, run as a new user runs it: every block marked ``<!-- tour -->``, in order,
as one bash script, in a fresh directory (so on a fresh default store, ``./var/``), through the
installed command line and a real server.

The blocks are read from README.md each time, so the test fails as soon as the README drifts
from what works. Two things are the test's own: ``.venv`` in that directory links to the venv
running this test (the README's ``.venv/bin/`` paths), and the server's ``PORT=8000`` becomes a
free port.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
TOUR_BLOCK = re.compile(r"<!-- tour -->\n```(python|sh)\n(.*?)```\n", re.DOTALL)
PORT_LINE = "PORT=8000\n"
TIMEOUT = 300
BASH = shutil.which("bash") or "/bin/bash"


def tour_script(readme: str, port: int) -> str:
    """The tour's blocks as one bash script: shell blocks as they are, Python blocks fed to the
    venv's interpreter; it stops at the first command that fails."""
    blocks = TOUR_BLOCK.findall(readme)
    assert [kind for kind, _ in blocks][:2] == ["python", "sh"], "the tour lost its first blocks"
    assert readme.count(PORT_LINE) == 1, f"the tour's HTTP block must set {PORT_LINE.strip()}"
    # A failing step must not leave the tour's server holding the output open.
    lines = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for kind, body in blocks:
        if kind == "python":
            lines.append(f".venv/bin/python - <<'CREDITLEDGER_TOUR'\n{body}CREDITLEDGER_TOUR")
        else:
            lines.append(body.replace(PORT_LINE, f"PORT={port}\n"))
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_readme_tour_runs_in_order_on_one_fresh_store(tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent, target_is_directory=True)
    script = tmp_path / "tour.sh"
    script.write_text(tour_script(README.read_text(), free_port()))
    env = {key: value for key, value in os.environ.items() if not key.startswith("CREDITLEDGER_")}
    process = subprocess.Popen(
        [BASH, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the server goes with it, whatever happens
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    assert process.returncode == 0, f"the tour stopped:\n{output[-6000:]}"
    assert (
        tmp_path / "var" / "creditledger.sqlite"
    ).is_file()  # the default store, used throughout
    assert '"code":"payment_already_authorized"' in output  # the HTTP 409, as the tour says
    assert '"code":"refund_exceeds_remaining"' in output
    assert '"remaining":"30.00"' in output
    assert '"code":"payment_already_failed"' in output  # the HTTP 409 after the failure
    assert '"stage":"failed","owed":"5.00"' in output  # the failed payment, still owed
    assert '"cash_amount":"25.00"' in output  # refunded in two steps: the whole payment back
    assert '"ok": true' in output  # audit verify, piped: JSON
    assert (tmp_path / "checkpoints-kept-elsewhere.txt").read_text().count(":") == 1
