"""``creditledger projections ...``: run the projector, see how far it is, rebuild, verify."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from creditledger.application.projections.rows import ReadModelName
from creditledger.application.projections.source import EventLog
from creditledger.infrastructure.bootstrap import open_view_database
from creditledger.infrastructure.cli.invocation import EXIT_CODES_HELP, ExitCode, ledger_for
from creditledger.infrastructure.cli.output import json_wanted, print_table, table
from creditledger.infrastructure.projections import operations
from creditledger.infrastructure.projections.runner import (
    DEFAULT_BATCH_SIZE,
    OFFLINE_BATCH_SIZE,
    ProjectionRunner,
    ProjectionStuckError,
)
from creditledger.infrastructure.projections.runner import Progress as OnProgress
from creditledger.infrastructure.projections.service import POLL_SECONDS

projections_app = typer.Typer(
    help="Read models (purchases, ledger, receivables, settled revenue): run the projector, "
    f"show its position and lag, rebuild a model, verify against the log. {EXIT_CODES_HELP}",
    no_args_is_help=True,
)

JsonOutput = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
BatchSize = Annotated[
    int, typer.Option("--batch-size", min=1, max=100_000, help="Events per view transaction.")
]
RunBatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        min=1,
        max=100_000,
        help=f"Events per view transaction (default: {OFFLINE_BATCH_SIZE} with "
        f"--until-caught-up, else {DEFAULT_BATCH_SIZE}: a batch holds SQLite's write lock, "
        "which commands wait for).",
        show_default=False,
    ),
]
MODEL_CHOICES = [model.value for model in ReadModelName]

_err = Console(stderr=True)


def _print_json(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


@contextmanager
def _progress_bar(description: str, start: int, head: int) -> Iterator[OnProgress]:
    """A progress bar on stderr while a long catch-up runs (only on a terminal)."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeRemainingColumn(),
        console=_err,
        transient=True,
        disable=not _err.is_terminal,
    )
    task = progress.add_task(description, total=max(0, head - start))

    def advance(position: int, latest_head: int) -> None:
        progress.update(task, completed=position - start, total=max(0, latest_head - start))

    with progress:
        yield advance


def _report_stuck(stuck: ProjectionStuckError) -> None:
    """A problem document on stderr naming the refused event and the way past it."""
    problem = {
        "code": "projection_stuck",
        "title": "Projection stuck",
        "detail": str(stuck),
        "position": stuck.failure.position,
    }
    sys.stderr.write(json.dumps(problem, indent=2) + "\n")


@projections_app.command("run")
def run(
    ctx: typer.Context,
    batch_size: RunBatchSize = None,
    until_caught_up: Annotated[
        bool, typer.Option("--until-caught-up", help="Exit once the views reach the log's head.")
    ] = False,
    poll_interval: Annotated[
        float | None,
        typer.Option(min=0.001, help="Seconds between looks at the log when idle."),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """Run the projector in this process: catch up, then follow the log until stopped."""
    with ledger_for(ctx) as ledger:
        database = open_view_database(ledger)
        try:
            log = EventLog(ledger)
            if batch_size is None:
                # An operator's catch-up ends when the views reach the head; a process that then
                # follows the log shares SQLite's write lock with the commands from the start.
                batch_size = OFFLINE_BATCH_SIZE if until_caught_up else DEFAULT_BATCH_SIZE
            runner = ProjectionRunner(
                log,
                database,
                batch_size=batch_size,
                poll_interval=poll_interval or POLL_SECONDS[database.kind],
                # The process exits once caught up: nothing else of it needs the collector.
                pause_collector=until_caught_up,
            )
            stop = threading.Event()

            def request_stop(signum: int, frame: FrameType | None) -> None:
                del signum, frame
                stop.set()
                database.wake()

            signal.signal(signal.SIGTERM, request_stop)
            signal.signal(signal.SIGINT, request_stop)
            start = min(database.positions().get(name, 0) for name in runner.names)
            try:
                with _progress_bar("catching up", start, log.head()) as advance:
                    caught_up = operations.catch_up(runner, progress=advance, stop=stop)
            except ProjectionStuckError as stuck:
                _report_stuck(stuck)
                if until_caught_up:
                    raise typer.Exit(ExitCode.FAILED) from None
                # Following the log retries it, with back-off, and reports it.
                caught_up = operations.CatchUpReport(0)
            applied = caught_up.applied
            position = min(database.positions().get(name, 0) for name in runner.names)
            apart = ", ".join(caught_up.apart)
            apart = f" ({apart} by a second process)" if apart else ""
            _err.print(f"caught up: {applied} events applied{apart}; position {position}")
            if not until_caught_up and not stop.is_set():
                runner.run_forever(stop)
                position = min(database.positions().get(name, 0) for name in runner.names)
                _err.print(f"stopped at position {position}")
            if as_json:
                _print_json(
                    {
                        "applied_while_catching_up": applied,
                        "caught_up_apart": list(caught_up.apart),
                        "position": position,
                    }
                )
        finally:
            database.close()


@projections_app.command("skip")
def skip(
    ctx: typer.Context,
    position: Annotated[
        int, typer.Argument(min=1, help="The log position the projector is stuck at.")
    ],
    as_json: JsonOutput = False,
) -> None:
    """Move the read models stuck at POSITION past it without applying that event.

    For an event the read-model store keeps refusing (the projector logs its position, /readyz
    shows it): the models then miss it, and 'projections verify' reports the difference.
    """
    with ledger_for(ctx) as ledger:
        database = open_view_database(ledger)
        try:
            moved = ProjectionRunner(EventLog(ledger), database).skip(position)
        finally:
            database.close()
    if as_json:
        _print_json({"position": position, "skipped_in": moved})
    elif moved:
        _err.print(f"skipped position {position} in: {', '.join(moved)}")
    else:
        _err.print(f"no read model waits at position {position}: nothing skipped")
    if not moved:
        raise typer.Exit(ExitCode.CONFLICT)


@projections_app.command("status")
def status(ctx: typer.Context, as_json: JsonOutput = False) -> None:
    """Each read model's position, and how far it is behind the log (events and seconds)."""
    with ledger_for(ctx) as ledger:
        database = open_view_database(ledger)
        try:
            report = operations.status(EventLog(ledger), database)
        finally:
            database.close()
    if json_wanted(as_json):
        _print_json(report.as_dict())
        return
    models = table(
        f"Read models (log head {report.head})",
        "model",
        "position",
        "lag (events)",
        "lag (seconds)",
    )
    for model in report.models:
        seconds = "-" if model.lag_seconds is None else f"{model.lag_seconds:.1f}"
        models.add_row(model.name, str(model.position), str(model.lag), seconds)
    print_table(models)


@projections_app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help=f"The read model: {', '.join(MODEL_CHOICES)}, or 'all'.", show_default=False
        ),
    ],
    batch_size: BatchSize = OFFLINE_BATCH_SIZE,
    as_json: JsonOutput = False,
) -> None:
    """Rebuild a read model (or all, in one pass over the log) from the log into fresh
    tables, then swap them in atomically.

    Readers keep seeing the complete old view until the swap; a projector running elsewhere
    waits for the swap and then carries on from the rebuilt position.
    """
    if name != "all" and name not in MODEL_CHOICES:
        _err.print(f"unknown read model {name!r}; choose from {', '.join(MODEL_CHOICES)}, all")
        raise typer.Exit(ExitCode.USAGE)
    models = list(ReadModelName) if name == "all" else [ReadModelName(name)]
    with ledger_for(ctx) as ledger:
        database = open_view_database(ledger)
        try:
            log = EventLog(ledger)
            # Every model asked for in one pass over the log (the log read and decoded once),
            # swapped in together.
            label = "rebuilding " + ", ".join(model.value for model in models)
            with _progress_bar(label, 0, log.head()) as advance:
                reports = operations.rebuild_together(
                    log, database, models, batch_size=batch_size, progress=advance
                )
        finally:
            database.close()
    if as_json:
        _print_json({"rebuilt": [report.as_dict() for report in reports]})
        return
    for report in reports:
        _err.print(
            f"rebuilt {report.model}: {report.events} events to position {report.position} "
            f"in {report.seconds:.2f}s{' (in a second process)' if report.apart else ''}, "
            "swapped in"
        )


@projections_app.command("verify")
def verify(
    ctx: typer.Context,
    batch_size: BatchSize = OFFLINE_BATCH_SIZE,
    as_json: JsonOutput = False,
) -> None:
    """Rebuild every read model from the log into a temporary SQLite file and compare it row by
    row with the live views (and check every ledger transaction group sums to zero), in memory
    that does not grow with the views. Exit 6 on any difference."""
    with ledger_for(ctx) as ledger:
        database = open_view_database(ledger)
        try:
            log = EventLog(ledger)
            with _progress_bar("rebuilding", 0, log.head()) as advance:
                report = operations.verify(log, database, batch_size=batch_size, progress=advance)
        finally:
            database.close()
    if as_json:
        _print_json(report.as_dict())
    elif report.ok:
        counts = ", ".join(f"{table} {count}" for table, count in report.rows.items())
        apart = ", ".join(report.apart)
        apart = f"; {apart} rebuilt by a second process" if apart else ""
        _err.print(f"views match a rebuild from the log ({counts}{apart})")
    else:
        _err.print(f"{report.count} differences between the views and the log:")
        for difference in report.differences[:20]:
            sys.stderr.write(json.dumps(difference.describe(), default=str) + "\n")
    if not report.ok:
        raise typer.Exit(ExitCode.VERIFY_FAILED)
