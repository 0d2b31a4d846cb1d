"""``creditledger expiry run``: the expiry sweep on its own (the server runs one by default)."""

from __future__ import annotations

import json
import signal
import threading
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from creditledger.application.projections.source import EventLog
from creditledger.infrastructure.bootstrap import open_view_database
from creditledger.infrastructure.cli.invocation import ExitCode, ledger_for
from creditledger.infrastructure.expiry.sweeper import DEFAULT_SWEEP_INTERVAL, SweepThread
from creditledger.infrastructure.projections.runner import ProjectionRunner, ProjectionStuckError

expiry_app = typer.Typer(
    help="Record credit expiries that are due (each takes effect at expires_at either way).",
    no_args_is_help=True,
)
_err = Console(stderr=True)


@expiry_app.command("run")
def run(
    ctx: typer.Context,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep sweeping every --interval seconds until stopped.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.01, help="Seconds between two passes with --watch.")
    ] = DEFAULT_SWEEP_INTERVAL,
) -> None:
    """Catch the read models up, then record every due expiry (once, or until stopped).

    Idempotent: running it twice, or two at once, records each expiry once. Prints one JSON
    line per pass: wallets visited, expiries recorded, and the lag when the pass began.
    """
    with ledger_for(ctx) as ledger:
        database = open_view_database(ledger)
        try:
            runner = ProjectionRunner(EventLog(ledger), database)
            sweeper = SweepThread(ledger, database, interval=interval)
            stop = threading.Event()

            def request_stop(signum: int, frame: FrameType | None) -> None:
                del signum, frame
                stop.set()

            signal.signal(signal.SIGTERM, request_stop)
            signal.signal(signal.SIGINT, request_stop)
            while True:
                try:
                    # The sweep asks the read models which grants are due: bring them up to
                    # the log first (exactly once, even beside a running projector).
                    runner.catch_up(stop=stop)
                except ProjectionStuckError as stuck:
                    _err.print(f"[red]the read models are stuck:[/] {stuck}")
                    raise typer.Exit(ExitCode.FAILED) from None
                report = sweeper.run_pass()
                if report is None:
                    _err.print(f"[red]expiry sweep failed:[/] {sweeper.last_error}")
                    if not watch:
                        raise typer.Exit(ExitCode.STORE_UNAVAILABLE)
                else:
                    typer.echo(
                        json.dumps(
                            {
                                "wallets": report.wallets,
                                "expiries_recorded": report.expiries,
                                "lag_seconds": report.lag_seconds,
                            }
                        )
                    )
                # A full batch means more is due: the next pass at once.
                full = report is not None and report.wallets >= sweeper.sweep.batch
                if not full and (not watch or stop.wait(interval)):
                    return
        finally:
            database.close()
