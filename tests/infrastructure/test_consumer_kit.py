"""The consumer kit: the report equals a fold of the log; holes raise; kills lose nothing.

The report's database is SQLite or PostgreSQL (the consumer's own, apart from the ledger's).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from bench.catchup import load_history, synthetic_history
from creditledger.application.commands import RefundPayment
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.relay.broker import NatsServerProcess
from creditledger.infrastructure.relay.checkpoint import (
    ConsumerDatabase,
    SqlTransaction,
    open_consumer_database,
)
from creditledger.infrastructure.relay.kit import (
    Delivered,
    StreamConsumer,
    StreamHoleError,
    delivered,
)
from creditledger.infrastructure.relay.relay import connected
from creditledger.infrastructure.relay.revenue_report import CONSUMER_NAME, SettledRevenueReport
from creditledger.infrastructure.relay.stream import StreamSpec
from tests.application.builders import consume as consumption
from tests.clock import FixedClock
from tests.infrastructure.relay_support import (
    CREDITLEDGER,
    relay_catch_up,
    relay_env,
    revenue_fold,
    run,
    unique_spec,
)
from tests.readmodels_support import authorize, initiate, read_models, settle
from tests.stores import POSTGRES_URL, postgres_schema


@pytest.fixture(params=["sqlite", "postgres"])
def report_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'report.sqlite'}"
        return
    request.getfixturevalue("postgres_session_schema")  # skips or fails like every PG test
    with postgres_schema("creditledger_report") as schema:
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}schema={schema}"


def write_purchases(ledger: CreditLedger, count: int) -> None:
    for index in range(count):
        purchase = initiate(
            ledger,
            namespace=("acme", "globex")[index % 2],
            currency=("USD", "EUR", "JPY")[index % 3],
            amount=str(7 + index),
            cost_basis="0.333",
        )
        if index % 3 == 0:
            # Credit spent: wallet events in the stream, which the revenue report passes over.
            ledger.consume(
                consumption(
                    "5",
                    namespace=purchase.namespace,
                    customer_id="cust-1",
                    currency=purchase.currency,
                )
            )
        if index % 4:
            settle(ledger, authorize(ledger, purchase))


def consume(
    url: str,
    spec: StreamSpec,
    database: ConsumerDatabase,
    apply: object,
    *,
    until: int,
    batch_size: int = 10,
) -> int:
    async def follow() -> int:
        async with connected(url) as client:
            consumer = StreamConsumer(
                client.jetstream(),
                spec,
                CONSUMER_NAME,
                database,
                apply,  # type: ignore[arg-type]
                batch_size=batch_size,
            )
            reached = await asyncio.wait_for(
                consumer.run(threading.Event(), until_position=until), timeout=60
            )
            return reached.position

    return run(follow())


def report_as_fold(report: SettledRevenueReport) -> dict[object, object]:
    return {row.key: (row.amount, row.credits, row.settlements) for row in report.rows()}


def test_the_report_equals_a_fold_of_the_log_and_the_ledgers_own_read_model(
    ledger: CreditLedger, report_url: str, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    write_purchases(ledger, 30)
    head = ledger.recorder.max_notification_id() or 0
    # Every event, the wallets' grants and consumptions included, reaches the stream.
    assert relay_catch_up(ledger, nats_broker.url, spec) == head == 30 + 30 + 10 + 2 * 22
    with open_consumer_database(report_url) as database:
        report = SettledRevenueReport(database)
        assert consume(nats_broker.url, spec, database, report.apply, until=head) == head
        assert report_as_fold(report) == revenue_fold(ledger)
        with read_models(ledger) as views:
            views.runner.catch_up()
            assert sorted(report.rows(), key=lambda row: row.key) == sorted(
                views.database.snapshot().revenue, key=lambda row: row.key
            )


async def _hole_stream(url: str, spec: StreamSpec) -> None:
    """The ledger's stream without the protection against deleting messages."""
    async with connected(url) as client:
        config = spec.config()
        config.deny_delete = False
        await client.jetstream().add_stream(config)


async def _delete_message(url: str, spec: StreamSpec, sequence: int) -> None:
    async with connected(url) as client:
        await client.jetstream().delete_msg(spec.name, sequence)


@pytest.mark.parametrize("backend", ["sqlite"])  # the ledger's store plays no part here
def test_a_hole_in_the_stream_raises_and_writes_nothing_of_the_batch(
    ledger: CreditLedger, tmp_path: Path, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    run(_hole_stream(nats_broker.url, spec))
    write_purchases(ledger, 12)
    head = ledger.recorder.max_notification_id() or 0
    relay_catch_up(ledger, nats_broker.url, spec)
    run(_delete_message(nats_broker.url, spec, 15))
    with open_consumer_database(f"sqlite:///{tmp_path / 'report.sqlite'}") as database:
        report = SettledRevenueReport(database)
        with pytest.raises(StreamHoleError, match=r"message 16 .* does not follow message 14 "):
            consume(nats_broker.url, spec, database, report.apply, until=head)
        # Batches 1-10 committed; the batch with the hole left nothing behind.
        with database.transaction() as transaction:
            assert database.checkpoint(transaction, CONSUMER_NAME)[0] == 10
        tenth = ledger.recorder.select_notifications(start=1, limit=10)[-1].id
        assert report_as_fold(report) == revenue_fold(ledger, through=tenth)


async def _publish_repeat(url: str, spec: StreamSpec) -> None:
    """Store the last message's event again, as a relay without a sequence check could."""
    async with connected(url) as client:
        js = client.jetstream()
        last = (await js.stream_info(spec.name)).state.last_seq
        message = await js.get_msg(spec.name, last)
        headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("Nats-")}
        await js.publish(message.subject or "", message.data or b"", headers=headers)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_repeated_log_position_raises(
    ledger: CreditLedger, tmp_path: Path, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    write_purchases(ledger, 3)
    relay_catch_up(ledger, nats_broker.url, spec)
    run(_publish_repeat(nats_broker.url, spec))
    head = ledger.recorder.max_notification_id() or 0
    with open_consumer_database(f"sqlite:///{tmp_path / 'report.sqlite'}") as database:
        report = SettledRevenueReport(database)
        with pytest.raises(StreamHoleError, match=f"log position {head}\\) does not follow"):
            consume(nats_broker.url, spec, database, report.apply, until=head + 1, batch_size=100)


# -- the regression: a durable consumer with acks loses events across a crash; the kit does not


def record_positions(transaction: SqlTransaction, batch: Sequence[Delivered]) -> None:
    for item in batch:
        transaction.execute("INSERT INTO applied (position) VALUES (?)", (item.position,))


def applied_positions(database: ConsumerDatabase) -> list[int]:
    with database.transaction() as transaction:
        return [row[0] for row in transaction.execute("SELECT position FROM applied ORDER BY 1")]


def open_applied_database(path: Path) -> ConsumerDatabase:
    database = open_consumer_database(f"sqlite:///{path}")
    with database.transaction() as transaction:
        transaction.execute("CREATE TABLE applied (position INTEGER PRIMARY KEY)")
    return database


async def acked_durable_consumer(
    url: str, spec: StreamSpec, database: ConsumerDatabase, *, crash_after_fetch: bool
) -> None:
    """The design that loses events: a durable consumer, acks after commit, and a "highest
    position applied" row that skips whatever is at or below it as already applied."""
    async with connected(url) as client:
        subscription = await client.jetstream().pull_subscribe(
            f"{spec.subject_prefix}.>",
            durable="acked",
            stream=spec.name,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=0.5),
        )
        if crash_after_fetch:
            await subscription.fetch(10, timeout=5)
            return  # the process dies: nothing committed, nothing acked
        idle_since = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - idle_since < 1.5:  # past the redeliveries
            try:
                messages = await subscription.fetch(10, timeout=0.5)
            except TimeoutError:
                continue
            idle_since = asyncio.get_running_loop().time()
            for message in messages:
                item = delivered(message)
                with database.transaction() as transaction:
                    highest = transaction.execute("SELECT max(position) FROM applied")[0][0] or 0
                    if item.position > highest:
                        record_positions(transaction, [item])
                await message.ack()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_crash_loses_events_with_an_acked_durable_consumer_and_none_with_the_kit(
    ledger: CreditLedger, tmp_path: Path, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    write_purchases(ledger, 15)
    relay_catch_up(ledger, nats_broker.url, spec)
    logged = [n.id for n in ledger.recorder.select_notifications(start=1, limit=1000)]

    with open_applied_database(tmp_path / "acked.sqlite") as database:
        for crash in (True, False):
            run(acked_durable_consumer(nats_broker.url, spec, database, crash_after_fetch=crash))
        acked = applied_positions(database)
    # The fetched-but-unacked messages came back after newer ones had moved the highest
    # position past them: they were skipped as "already applied".
    assert acked == logged[10:]

    with open_applied_database(tmp_path / "kit.sqlite") as database:
        crashed = False

        def crash_once(transaction: SqlTransaction, batch: Sequence[Delivered]) -> None:
            nonlocal crashed
            if not crashed:
                crashed = True
                raise RuntimeError("the consumer dies mid-batch")
            record_positions(transaction, batch)

        with pytest.raises(RuntimeError, match="dies mid-batch"):
            consume(nats_broker.url, spec, database, crash_once, until=logged[-1])
        assert consume(nats_broker.url, spec, database, crash_once, until=logged[-1]) == logged[-1]
        assert applied_positions(database) == logged


def checkpoint(report_url: str) -> int:
    with open_consumer_database(report_url) as database:
        database.ensure_checkpoint_table()
        with database.transaction() as transaction:
            return database.checkpoint(transaction, CONSUMER_NAME)[1]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_consumer_killed_at_random_keeps_a_report_equal_to_the_fold_of_the_log(
    ledger: CreditLedger, report_url: str, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    load_history(ledger, synthetic_history(6000, seed=15))
    head = ledger.recorder.max_notification_id() or 0
    relay_catch_up(ledger, nats_broker.url, spec, batch_size=500)
    command = [CREDITLEDGER, "consume", "--report-url", report_url, "--batch-size", "10"]
    env = relay_env(nats_broker.url, spec, "memory://")
    rng = random.Random(15)
    positions = [0]
    for _ in range(6):
        consumer = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        # Killed at a random moment once it is applying batches (not while it starts up).
        while checkpoint(report_url) == positions[-1]:
            assert consumer.poll() is None, consumer.stderr.read() if consumer.stderr else ""
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))
        consumer.send_signal(signal.SIGKILL)
        consumer.wait()
        positions.append(checkpoint(report_url))
        if positions[-1] == head:  # a fast machine: caught up before this kill
            break
    mid_stream = [position for position in positions[1:] if position < head]
    assert len(mid_stream) >= 3, f"too few kills landed while catching up: {positions}"
    final = subprocess.run(
        [*command, "--until-position", str(head), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(final.stdout)["position"] == head
    with open_consumer_database(report_url) as database:
        assert report_as_fold(SettledRevenueReport(database)) == revenue_fold(ledger)


@pytest.mark.parametrize("backend", ["sqlite"])  # the ledger's store plays no part here
def test_the_report_command_prints_each_days_refunds_and_net(
    ledger: CreditLedger, report_url: str, nats_broker: NatsServerProcess, clock: FixedClock
) -> None:
    spec = unique_spec()
    paid = settle(ledger, authorize(ledger, initiate(ledger, amount="100", cost_basis="0.5")))
    clock.advance(24 * 3600)
    ledger.refund(RefundPayment(namespace="acme", purchase_id=paid.id, amount="30"))
    head = ledger.recorder.max_notification_id() or 0
    relay_catch_up(ledger, nats_broker.url, spec)
    printed = subprocess.run(
        [CREDITLEDGER, "consume", "--report-url", report_url, "--until-position", str(head)],
        env=relay_env(nats_broker.url, spec, "memory://"),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [json.loads(line) for line in printed.stdout.splitlines()]
    assert [
        (row["day"], row["amount"], row["settlements"], row["refunded"], row["refunds"], row["net"])
        for row in rows
    ] == [
        ("2026-01-01", "50.00", 1, "0", 0, "50.00"),
        ("2026-01-02", "0", 0, "15.00", 1, "-15.00"),
    ]
