"""A private ``nats-server`` with JetStream, for tests and benchmarks (never for production).

It listens on a free loopback port and stores into its own directory, so a test can kill it and
start it again on the same store (what a broker restart is) without touching a shared server.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from creditledger.infrastructure.http.process import LOOPBACK, free_port

NATS_SERVER_CANDIDATES = ("nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server")
START_TIMEOUT_SECONDS = 10.0


def find_nats_server() -> str | None:
    for candidate in NATS_SERVER_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


class NatsServerProcess:
    """One ``nats-server -js`` on a free loopback port with its own store directory."""

    def __init__(self, store_dir: Path, *, executable: str | None = None) -> None:
        found = executable or find_nats_server()
        if found is None:
            msg = "nats-server is not installed (Debian: apt-get install -y nats-server)"
            raise FileNotFoundError(msg)
        self.executable = found
        self.store_dir = store_dir
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    def start(self) -> NatsServerProcess:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        with (self.store_dir / "nats-server.log").open("ab") as log:
            # The arguments are ours: the installed server binary and the options above.
            self._process = subprocess.Popen(  # noqa: S603
                [
                    self.executable,
                    *("-a", LOOPBACK, "-p", str(self.port), "-js", "-sd", str(self.store_dir)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                msg = f"nats-server exited at start (code {self._process.returncode})"
                raise RuntimeError(msg)
            try:
                socket.create_connection((LOOPBACK, self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.02)
                continue
            return self
        msg = f"nats-server did not listen on port {self.port} within {START_TIMEOUT_SECONDS}s"
        raise RuntimeError(msg)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop it (SIGKILL: a crash, whatever it had not written to disk is lost)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(sig)
            self._process.wait(timeout=30)
        self._process = None

    def restart(self, sig: signal.Signals = signal.SIGKILL) -> None:
        self.stop(sig)
        self.start()

    def __enter__(self) -> NatsServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
