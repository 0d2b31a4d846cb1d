"""``creditledger serve`` as a child process on a free loopback port: for end-to-end tests, the
HTTP load benchmark, and anyone who wants a real server for a while.

The child gets its own environment (no ambient ``CREDITLEDGER_*`` leaks in), writes its JSON log
to a file, and is stopped with SIGTERM: the same graceful stop an orchestrator sends.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def _command() -> list[str]:
    installed = Path(sys.executable).with_name("creditledger")
    if installed.exists():
        return [str(installed)]
    return [sys.executable, "-c", "from creditledger.infrastructure.cli import main; main()"]


class ServerProcess:
    """One server on one store; ``start`` waits until ``/readyz`` answers 200."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        graceful_timeout: int = 30,
    ) -> None:
        self.database_url = database_url
        self.log_path = log_path
        self.extra_env = dict(env or {})
        self.graceful_timeout = graceful_timeout
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, attempts: int = 3) -> ServerProcess:
        for _ in range(attempts):
            self.port = free_port()
            self._spawn()
            if self._wait_ready():
                return self
            # Most likely another process took the port between the probe and the bind.
            self._reap()
        msg = f"the server did not become ready; its log:\n{self.log_tail()}"
        raise RuntimeError(msg)

    def _spawn(self) -> None:
        env = {
            key: value for key, value in os.environ.items() if not key.startswith("CREDITLEDGER_")
        }
        env.update(self.extra_env)
        args = [
            *_command(),
            "--database-url",
            self.database_url,
            "serve",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--graceful-timeout",
            str(self.graceful_timeout),
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # The arguments are ours: the installed entry point and the options above.
            self._process = subprocess.Popen(  # noqa: S603
                args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            if self._answers_ready():
                return True
            time.sleep(0.05)
        return False

    def _answers_ready(self) -> bool:
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=2.0)
        try:
            connection.request("GET", "/readyz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send the signal, wait for the process to end, and return its exit code."""
        process = self._process
        if process is None:
            msg = "the server is not running"
            raise RuntimeError(msg)
        if process.poll() is None:
            process.send_signal(sig)
        try:
            code = process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        self._process = None
        return code

    def _reap(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self.stop()
