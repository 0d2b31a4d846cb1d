"""``creditledger relay`` and ``creditledger consume``: the log to NATS JetStream, and back out.

``relay`` publishes every event of the ledger's log once to its stream and follows the log until
stopped. ``consume`` is the consumer kit's example: the settled-revenue report, kept from the
stream in a database of its own (it needs the broker, not the ledger's database).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from creditledger.infrastructure.cli.invocation import ExitCode, ledger_for, problem_of, state
from creditledger.infrastructure.settings import Settings

if TYPE_CHECKING:
    from nats.aio.client import Client

    from creditledger.application.projections.source import EventLog
    from creditledger.infrastructure.projections.database import CommitOrderGuard
    from creditledger.infrastructure.relay.stream import StreamSpec

# nats (with aiohttp) and the relay machinery are imported inside the two commands below, not
# here: every other command of the CLI would pay for them (~0.16 s at each start) and none uses
# them.

DEFAULT_BATCH_SIZE = 1000
"""The relay's own default (``relay.relay.DEFAULT_BATCH_SIZE``), written out for the options'
defaults: reading it from there would import nats. tests/e2e/test_cli_startup.py holds the two
equal."""

NatsUrl = Annotated[
    str | None,
    typer.Option(
        "--nats-url",
        envvar="CREDITLEDGER_NATS_URL",
        help="NATS server with JetStream (default nats://127.0.0.1:4222).",
        show_default=False,
    ),
]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, max=10_000, help="Events a round.")]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def _settings(ctx: typer.Context, nats_url: str | None) -> Settings:
    try:
        return state(ctx).settings(**({"nats_url": nats_url} if nats_url else {}))
    except ValidationError as error:
        sys.stderr.write(f"invalid configuration: {error}\n")
        raise typer.Exit(ExitCode.FAILED) from None


def _print_json(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def relay(
    ctx: typer.Context,
    *,
    nats_url: NatsUrl = None,
    batch_size: BatchSize = DEFAULT_BATCH_SIZE,
    one_at_a_time: Annotated[
        bool,
        typer.Option(
            "--one-at-a-time", help="Wait for each message's ack before the next (slower)."
        ),
    ] = False,
    until_caught_up: Annotated[
        bool, typer.Option("--until-caught-up", help="Exit once the stream holds the whole log.")
    ] = False,
    as_json: JsonOutput = False,
) -> None:
    """Publish every event of the log once to the ledger's NATS JetStream stream, in log order,
    and keep following the log until stopped (SIGTERM or Ctrl-C). Safe to kill at any point and
    to run twice: it resumes from the stream's last message."""
    # Imported here: only the relay commands need nats and the relay (see the top of the module).
    from creditledger.application.projections.source import EventLog  # noqa: PLC0415
    from creditledger.infrastructure.bootstrap import open_view_database  # noqa: PLC0415
    from creditledger.infrastructure.relay.relay import run_relay  # noqa: PLC0415
    from creditledger.infrastructure.relay.stream import stream_spec  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    settings = _settings(ctx, nats_url)
    spec = stream_spec(settings)
    with ledger_for(ctx) as ledger:
        database = open_view_database(ledger)
        try:
            log = EventLog(ledger)
            if until_caught_up:
                result = asyncio.run(
                    _catch_up(
                        log,
                        guard=database.guard(),
                        url=settings.nats_url,
                        spec=spec,
                        batch_size=batch_size,
                        one_at_a_time=one_at_a_time,
                    )
                )
                if as_json:
                    _print_json(result)
                else:
                    sys.stderr.write(
                        f"relayed {result['published']} events; stream {spec.name} holds the "
                        f"log to position {result['position']}\n"
                    )
                return
            asyncio.run(
                run_relay(
                    log,
                    database.guard(),
                    settings.nats_url,
                    spec,
                    _stop_on_signals(),
                    batch_size=batch_size,
                )
            )
        finally:
            database.close()


async def _catch_up(
    log: EventLog,
    *,
    guard: CommitOrderGuard,
    url: str,
    spec: StreamSpec,
    batch_size: int,
    one_at_a_time: bool,
) -> dict[str, Any]:
    from creditledger.infrastructure.relay.relay import Relay  # noqa: PLC0415 - see relay()

    async with _connected_or_exit(url) as client:
        relay = Relay(
            log, guard, client.jetstream(), spec, batch_size=batch_size, pipelined=not one_at_a_time
        )
        published = await relay.catch_up()
        tail = relay.confirmed or await relay.resync()
        return {"published": published, "position": tail.position, "sequence": tail.sequence}


@asynccontextmanager
async def _connected_or_exit(url: str) -> AsyncIterator[Client]:
    import nats.errors  # noqa: PLC0415 - see relay()

    from creditledger.infrastructure.relay.relay import connect  # noqa: PLC0415

    try:
        client = await connect(url)
    except (OSError, nats.errors.Error) as error:
        sys.stderr.write(f"cannot reach NATS at {url}: {type(error).__name__}: {error}\n")
        raise typer.Exit(ExitCode.FAILED) from None
    try:
        yield client
    finally:
        await client.close()


def consume(
    ctx: typer.Context,
    *,
    report_url: Annotated[
        str,
        typer.Option(
            "--report-url",
            envvar="CREDITLEDGER_REPORT_URL",
            help="The report's own database: sqlite:///path or postgresql://...[?schema=name].",
        ),
    ] = "sqlite:///./var/settled-revenue-report.sqlite",
    nats_url: NatsUrl = None,
    batch_size: BatchSize = DEFAULT_BATCH_SIZE,
    until_position: Annotated[
        int | None,
        typer.Option("--until-position", min=0, help="Exit once this log position is applied."),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """Example consumer: keep the settled-revenue report from the stream in its own database,
    each event exactly once (the kit keeps its position in the same transaction). Follows the
    stream until stopped, or until --until-position; prints the report."""
    # Imported here: only the relay commands need nats and the relay (see the top of the module).
    from creditledger.infrastructure.relay.checkpoint import (  # noqa: PLC0415
        open_consumer_database,
    )
    from creditledger.infrastructure.relay.kit import (  # noqa: PLC0415
        StreamConsumer,
        StreamHoleError,
    )
    from creditledger.infrastructure.relay.revenue_report import (  # noqa: PLC0415
        CONSUMER_NAME,
        SettledRevenueReport,
    )
    from creditledger.infrastructure.relay.stream import stream_spec  # noqa: PLC0415

    settings = _settings(ctx, nats_url)
    try:
        database = open_consumer_database(report_url)
    except Exception as error:  # named in a line, not a traceback
        sys.stderr.write(f"cannot open the report database: {type(error).__name__}: {error}\n")
        raise typer.Exit(ExitCode.FAILED) from None
    try:
        report = SettledRevenueReport(database)

        async def follow() -> dict[str, Any]:
            async with _connected_or_exit(settings.nats_url) as client:
                consumer = StreamConsumer(
                    client.jetstream(),
                    stream_spec(settings),
                    CONSUMER_NAME,
                    database,
                    report.apply,
                    batch_size=batch_size,
                )
                reached = await consumer.run(_stop_on_signals(), until_position=until_position)
                return {"sequence": reached.sequence, "position": reached.position}

        try:
            position = asyncio.run(follow())
        except StreamHoleError as error:
            sys.stderr.write(json.dumps(problem_of(error), indent=2) + "\n")
            raise typer.Exit(ExitCode.VERIFY_FAILED) from None
        rows = [
            {
                "namespace": row.namespace,
                "currency": row.currency,
                "day": row.day.isoformat(),
                "amount": str(row.amount),
                "credits": str(row.credits),
                "settlements": row.settlements,
                "refunded": str(row.refunded),
                "refunds": row.refunds,
                "net": str(row.net),
            }
            for row in report.rows()
        ]
    finally:
        database.close()
    if as_json:
        _print_json({**position, "rows": rows})
    else:
        sys.stderr.write(f"report at log position {position['position']}: {len(rows)} rows\n")
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
