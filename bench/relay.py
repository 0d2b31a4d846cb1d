"""Section 8: the log relayed to NATS JetStream, and the consumer kit reading it back.

Rows (a private ``nats-server -js`` on a free loopback port, its store in a temporary folder):

- the relay publishing a bulk-loaded log, pipelined and one ack at a time, against reading the
  same log with the library's ``select_notifications`` (what the relay cannot go faster than);
- end-to-end lag under the 32-caller write load (PostgreSQL): from each event's timestamp,
  taken just before its commit, to the commit of the consumer batch that applied it, with the
  relay and the consumer each in its own process, as deployed;
- the example consumer (settled-revenue report in SQLite) catching up over 100k events.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from bench import keys
from bench.baselines import COMMANDS_PER_LIFECYCLE
from bench.catchup import load_history, synthetic_history
from bench.lifecycles import LEDGER_EVENTS_PER_LIFECYCLE, run_lifecycle
from bench.report import Row
from bench.stores import Backend, fresh_store
from bench.timing import Rate, Timing, time_callers
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.relay.broker import NatsServerProcess, find_nats_server
from creditledger.infrastructure.relay.checkpoint import (
    SqliteConsumerDatabase,
    SqlTransaction,
)
from creditledger.infrastructure.relay.kit import Delivered, StreamConsumer, StreamPosition
from creditledger.infrastructure.relay.relay import DEFAULT_BATCH_SIZE, Relay, connected
from creditledger.infrastructure.relay.revenue_report import CONSUMER_NAME, SettledRevenueReport
from creditledger.infrastructure.relay.stream import StreamSpec

RELAY_BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")
RELAY_EVENTS = 25_000
ONE_AT_A_TIME_EVENTS = 5_000
READ_PAGE = 500
LAG_CALLERS = 32
LAG_PURCHASES = 640
CONSUMER_CATCHUP_EVENTS = 100_000
LAG_CONSUMER = "bench-lag"
CREDITLEDGER = str(Path(sys.executable).parent / "creditledger")


def fresh_spec() -> StreamSpec:
    token = uuid.uuid4().hex[:10]
    return StreamSpec(name=f"BENCH{token}", subject_prefix=f"bench{token}")


@contextmanager
def private_broker() -> Iterator[NatsServerProcess]:
    with (
        tempfile.TemporaryDirectory(prefix="creditledger-nats-") as directory,
        NatsServerProcess(Path(directory)) as broker,
    ):
        yield broker


def read_log(ledger: CreditLedger) -> Timing:
    """The raw rate of reading the log in pages, as the relay reads it (no decoding)."""
    started = time.perf_counter()
    after, count = 0, 0
    while page := ledger.recorder.select_notifications(
        start=after, limit=READ_PAGE, inclusive_of_start=False
    ):
        after, count = page[-1].id, count + len(page)
    seconds = time.perf_counter() - started
    return Timing(count, count, seconds)


def relay_run(
    ledger: CreditLedger,
    url: str,
    *,
    pipelined: bool,
    limit: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Timing:
    """Relay the log (up to ``limit`` events) into a new stream, timed."""

    async def publish() -> Timing:
        async with connected(url) as client:
            relay = Relay.of_ledger(
                ledger, client.jetstream(), fresh_spec(), batch_size=batch_size, pipelined=pipelined
            )
            await relay.resync()
            started = time.perf_counter()
            published = 0
            while published < limit and (batch := await relay.relay_batch()):
                published += batch
            await relay.settle()
            return Timing(published, published, time.perf_counter() - started)

    return asyncio.run(publish())


def relay_rows(backend: Backend, runs: int, events: int, url: str) -> list[Row]:
    one_at_a_time_events = min(events, ONE_AT_A_TIME_EVENTS)
    with fresh_store(backend) as store, store.open_ledger() as ledger:
        load_history(ledger, synthetic_history(events, seed=8))
        reads = tuple(read_log(ledger) for _ in range(runs))
        pipelined = tuple(relay_run(ledger, url, pipelined=True, limit=events) for _ in range(runs))
        singly = tuple(
            relay_run(ledger, url, pipelined=False, limit=one_at_a_time_events) for _ in range(runs)
        )
    raw = Rate(f"raw select_notifications, pages of {READ_PAGE}", "event", reads)
    return [
        Row(
            "8",
            "relay log -> JetStream, pipelined",
            backend,
            f"{events} events",
            Rate(
                f"relay, pipelined (a batch of {DEFAULT_BATCH_SIZE} in flight)", "event", pipelined
            ),
            raw,
            key=keys.RELAY_PIPELINED,
        ),
        Row(
            "8",
            "relay log -> JetStream, one ack at a time",
            backend,
            f"{one_at_a_time_events} events",
            Rate("relay, waiting for each ack", "event", singly),
            raw,
            key=keys.RELAY_ONE_AT_A_TIME,
        ),
    ]


# -- lag: commit -> consumer apply under the 32-caller write load ----------------------------


def lag_consumer_main(url: str, name: str, prefix: str, until: int, out: str) -> None:
    """The consumer process of the lag row: records each event's lag when its batch commits."""
    lags: list[float] = []
    pending: list[float] = []

    def apply(transaction: SqlTransaction, batch: Sequence[Delivered]) -> None:
        del transaction
        pending.extend(item.event().timestamp.timestamp() for item in batch)

    def committed(position: StreamPosition) -> None:
        del position
        now = time.time()
        lags.extend(now - stamp for stamp in pending)
        pending.clear()

    async def follow() -> None:
        async with connected(url) as client:
            consumer = StreamConsumer(
                client.jetstream(),
                StreamSpec(name=name, subject_prefix=prefix),
                LAG_CONSUMER,
                SqliteConsumerDatabase(Path(out).with_suffix(".sqlite")),
                apply,
            )
            await consumer.run(threading.Event(), until_position=until, on_batch=committed)

    asyncio.run(follow())
    Path(out).write_text(json.dumps(lags))


def lag_row(runs: int, purchases: int, url: str) -> Row:
    timings = []
    writes = []
    for _ in range(runs):
        lags, write = _lag_run(purchases, url)
        timings.append(Timing(len(lags), len(lags), write.seconds, tuple(lags)))
        writes.append(write)
    return Row(
        "8",
        f"lag commit -> consumer apply, {LAG_CALLERS} callers writing",
        "postgres",
        f"{purchases} lifecycles",
        Rate("relay + consumer processes, lag per event", "event", tuple(timings)),
        Rate(f"the write load: {LAG_CALLERS} callers' lifecycles", "event", tuple(writes)),
        key=keys.RELAY_LAG,
        compare="p50 latency",
        note="lag percentiles are the measured side's p50/p99",
    )


def _lag_run(purchases: int, url: str) -> tuple[list[float], Timing]:
    spec = fresh_spec()
    with (
        fresh_store("postgres") as store,
        store.open_ledger(pool_size=LAG_CALLERS) as ledger,
        tempfile.TemporaryDirectory(prefix="creditledger-lag-") as directory,
    ):
        time_callers(partial(run_lifecycle, ledger), range(-LAG_CALLERS, 0), LAG_CALLERS)
        warm_head = ledger.recorder.max_notification_id() or 0
        head = warm_head + LEDGER_EVENTS_PER_LIFECYCLE * purchases
        env = {
            **os.environ,
            "CREDITLEDGER_DATABASE_URL": store.url,
            "CREDITLEDGER_NATS_URL": url,
            "CREDITLEDGER_RELAY_STREAM": spec.name,
            "CREDITLEDGER_RELAY_SUBJECT_PREFIX": spec.subject_prefix,
        }
        out = str(Path(directory) / "lags.json")
        relay = subprocess.Popen([CREDITLEDGER, "relay"], env=env, stderr=subprocess.DEVNULL)
        consumer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.relay",
                url,
                spec.name,
                spec.subject_prefix,
                str(head),
                out,
            ]
        )
        try:
            _wait_for_consumer(Path(out).with_suffix(".sqlite"), warm_head)
            seconds = time_callers(partial(run_lifecycle, ledger), range(purchases), LAG_CALLERS)
            consumer.wait(timeout=300)
        finally:
            relay.terminate()
            relay.wait()
            consumer.kill()
            consumer.wait()
        lags = json.loads(Path(out).read_text())
    # The warm-up's events were applied before the timed writes began: not part of the lag.
    return lags[warm_head:], Timing(
        purchases,
        LEDGER_EVENTS_PER_LIFECYCLE * purchases,
        seconds,
        commands=COMMANDS_PER_LIFECYCLE * purchases,
    )


def _wait_for_consumer(database: Path, position: int) -> None:
    """Until the consumer process has applied ``position`` (the timed writes start after)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if database.exists():
            with SqliteConsumerDatabase(database) as opened:
                opened.ensure_checkpoint_table()
                with opened.transaction() as transaction:
                    if opened.checkpoint(transaction, LAG_CONSUMER)[1] >= position:
                        return
        time.sleep(0.05)
    msg = "the relay and consumer did not pass the warm-up events within 120 s"
    raise RuntimeError(msg)


# -- consumer catch-up -----------------------------------------------------------------------


def consumer_catchup_row(runs: int, events: int, url: str) -> Row:
    timings = []
    with fresh_store("sqlite") as store, store.open_ledger() as ledger:
        load_history(ledger, synthetic_history(events, seed=9))
        head = ledger.recorder.max_notification_id() or 0
        spec = fresh_spec()

        async def relay_all() -> None:
            async with connected(url) as client:
                await Relay.of_ledger(ledger, client.jetstream(), spec).catch_up()

        asyncio.run(relay_all())
        for _ in range(runs):
            timings.append(_consumer_run(url, spec, head))
    return Row(
        "8",
        "consumer catch-up: settled-revenue report (SQLite)",
        "sqlite",
        f"{events} events",
        Rate("consumer kit, batches of 500, one transaction each", "event", tuple(timings)),
        key=keys.CONSUMER_CATCHUP,
    )


def _consumer_run(url: str, spec: StreamSpec, head: int) -> Timing:
    with tempfile.TemporaryDirectory(prefix="creditledger-report-") as directory:
        database = SqliteConsumerDatabase(Path(directory) / "report.sqlite")
        report = SettledRevenueReport(database)

        async def consume() -> Timing:
            async with connected(url) as client:
                consumer = StreamConsumer(
                    client.jetstream(), spec, CONSUMER_NAME, database, report.apply
                )
                started = time.perf_counter()
                await consumer.run(threading.Event(), until_position=head)
                seconds = time.perf_counter() - started
                return Timing(head, head, seconds)

        try:
            return asyncio.run(consume())
        finally:
            database.close()


def section_rows(
    backends: Sequence[Backend], runs: int, scale: float, *, lag: bool = True
) -> list[Row]:
    """Every row of section 8 on one private broker (none when nats-server is missing)."""
    if find_nats_server() is None:
        return []
    rows: list[Row] = []
    with private_broker() as broker:
        for backend in (backend for backend in backends if backend in RELAY_BACKENDS):
            rows += relay_rows(backend, runs, max(1000, round(RELAY_EVENTS * scale)), broker.url)
        if lag and "postgres" in backends:
            purchases = max(LAG_CALLERS, round(LAG_PURCHASES * scale))
            rows.append(lag_row(runs, purchases - purchases % LAG_CALLERS, broker.url))
        if "sqlite" in backends:
            events = max(1000, round(CONSUMER_CATCHUP_EVENTS * scale))
            rows.append(consumer_catchup_row(runs, events, broker.url))
    return rows


if __name__ == "__main__":
    lag_consumer_main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
