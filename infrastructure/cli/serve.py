"""``creditledger serve``: the HTTP API under uvicorn, with JSON logs and a graceful stop.

On SIGTERM or Ctrl-C uvicorn stops accepting connections, lets every request in flight finish
(for up to ``--graceful-timeout`` seconds), and only then runs the app's shutdown, which drains
the ledger's writer and closes the store: a write that was acknowledged is durable, and one
that was not may be retried with its Idempotency-Key.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated

import typer
from pydantic import ValidationError

from creditledger.infrastructure.cli.invocation import ExitCode, state

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stopped(_signal: int, _frame: FrameType | None) -> None:
    """What a stop signal does once uvicorn has finished with it: nothing more."""


@contextmanager
def _quiet_stop_signals() -> Iterator[None]:
    # uvicorn handles SIGINT/SIGTERM itself, then re-raises the signal through the handler it
    # found installed. With the defaults that would end the process by the signal (or print a
    # KeyboardInterrupt) after a clean shutdown; with these, a graceful stop exits 0.
    previous = {sig: signal.signal(sig, _stopped) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning or error (JSON lines on stderr).")
    ] = "info",
    graceful_timeout: Annotated[
        int,
        typer.Option(min=1, help="Seconds a stop waits for requests in flight to finish."),
    ] = 30,
) -> None:
    """Serve the HTTP API (docs/http.md) until SIGTERM or Ctrl-C; then stop gracefully."""
    try:
        settings = state(ctx).settings()
    except ValidationError as error:
        # Only where and what: the inputs may hold a password or a token.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'settings'}: {item['msg']}"
            for item in error.errors(include_input=False)
        )
        sys.stderr.write(f"invalid configuration: {problems}\n")
        raise typer.Exit(ExitCode.FAILED) from None
    # Imported here, not at the top: FastAPI and uvicorn cost most of a second to import, and
    # every other command of the CLI would pay for them.
    import uvicorn  # noqa: PLC0415

    from creditledger.infrastructure.http.app import create_app  # noqa: PLC0415
    from creditledger.infrastructure.http.logging import configure_logging  # noqa: PLC0415

    configure_logging(log_level)
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        log_level=log_level.lower(),
        access_log=False,  # the app logs one JSON line per request, with its request id
        timeout_graceful_shutdown=graceful_timeout,
        server_header=False,
        proxy_headers=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    try:
        with _quiet_stop_signals():
            server.run()
    except SystemExit as stop:
        # uvicorn exits on its own when startup fails (store unreachable, port taken).
        if stop.code not in (None, 0):
            raise typer.Exit(ExitCode.FAILED) from None
    if not server.started:
        raise typer.Exit(ExitCode.FAILED)
