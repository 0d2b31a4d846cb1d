"""The stream equals the log after relay kills, two relays at once, a broker crash and a deleted
stream, all while several processes write to PostgreSQL (holes and concurrent commits included).
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from nats.js.errors import NotFoundError

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.relay.broker import NatsServerProcess
from creditledger.infrastructure.relay.relay import connected
from creditledger.infrastructure.relay.stream import StreamSpec
from tests.infrastructure.relay_support import (
    assert_stream_equals_log,
    catch_up_with_relay,
    logged,
    run,
    start_relay,
    unique_spec,
)

WRITERS = 3
PURCHASES_PER_WRITER = 400
RELAY_ARGS = ("--batch-size", "20")

pytestmark = pytest.mark.slow


@pytest.fixture(params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@contextmanager
def writers(store_url: str, seed: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes racing commands against the store (every collision is a hole in the ids)."""
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.infrastructure.relay_writer",
                store_url,
                str(seed + index),
                str(PURCHASES_PER_WRITER),
            ]
        )
        for index in range(WRITERS)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            assert process.wait(timeout=300) == 0


def still_writing(processes: list[subprocess.Popen[bytes]]) -> bool:
    return any(process.poll() is None for process in processes)


def finish(relays: list[subprocess.Popen[bytes]]) -> None:
    for relay in relays:
        relay.kill()
        relay.wait()


def test_relay_killed_at_random_under_concurrent_writers_leaves_stream_equal_to_log(
    ledger: CreditLedger, store_url: str, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    rng = random.Random(15)
    kills = 0
    with writers(store_url, seed=100) as processes:
        while still_writing(processes) or kills < 6:
            relay = start_relay(nats_broker.url, spec, store_url, *RELAY_ARGS)
            time.sleep(rng.uniform(0.6, 1.8))
            relay.send_signal(signal.SIGKILL)
            relay.wait()
            kills += 1
    catch_up_with_relay(nats_broker.url, spec, store_url)
    assert kills >= 6
    assert assert_stream_equals_log(nats_broker.url, spec, ledger) > 1000


def test_two_relays_at_once_with_kills_publish_each_event_once(
    ledger: CreditLedger, store_url: str, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    rng = random.Random(16)
    with writers(store_url, seed=200) as processes:
        relays = [start_relay(nats_broker.url, spec, store_url, *RELAY_ARGS) for _ in range(2)]
        try:
            while still_writing(processes):
                time.sleep(rng.uniform(0.8, 1.5))
                victim = rng.randrange(2)
                relays[victim].kill()
                relays[victim].wait()
                relays[victim] = start_relay(nats_broker.url, spec, store_url, *RELAY_ARGS)
        finally:
            finish(relays)
    catch_up_with_relay(nats_broker.url, spec, store_url)
    assert assert_stream_equals_log(nats_broker.url, spec, ledger) > 1000


def test_broker_crashes_and_restarts_under_a_running_relay(
    ledger: CreditLedger, store_url: str, own_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    with writers(store_url, seed=300) as processes:
        relay = start_relay(own_broker.url, spec, store_url, *RELAY_ARGS)
        try:
            for _ in range(2):
                time.sleep(1.5)
                # SIGKILL: what the broker acknowledged but had not written is lost with it;
                # the relay reads the tail it finds and re-fills the rest from the log.
                own_broker.restart(signal.SIGKILL)
            while still_writing(processes):
                time.sleep(0.1)
        finally:
            finish([relay])
    catch_up_with_relay(own_broker.url, spec, store_url)
    assert assert_stream_equals_log(own_broker.url, spec, ledger) > 1000


async def delete_stream_when_filled(url: str, spec: StreamSpec, messages: int) -> None:
    async with connected(url) as client:
        js = client.jetstream()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if (await js.stream_info(spec.name)).state.messages >= messages:
                    break
            except NotFoundError:
                pass
            await asyncio.sleep(0.05)
        await js.delete_stream(spec.name)


def stream_size(url: str, spec: StreamSpec) -> int:
    async def size() -> int:
        async with connected(url) as client:
            try:
                return (await client.jetstream().stream_info(spec.name)).state.messages
            except NotFoundError:
                return 0

    return run(size())


def test_a_stream_deleted_mid_run_is_recreated_and_refilled_from_the_log(
    ledger: CreditLedger, store_url: str, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    with writers(store_url, seed=400) as processes:
        relay = start_relay(nats_broker.url, spec, store_url, *RELAY_ARGS)
        try:
            run(delete_stream_when_filled(nats_broker.url, spec, messages=200))
            while still_writing(processes):
                time.sleep(0.1)
            # The running relay (not a new one) re-fills the whole log into the new stream.
            logged_events = len(logged(ledger))
            deadline = time.monotonic() + 60
            while stream_size(nats_broker.url, spec) < logged_events:
                assert time.monotonic() < deadline, "the relay did not re-fill the stream"
                time.sleep(0.1)
        finally:
            finish([relay])
    assert assert_stream_equals_log(nats_broker.url, spec, ledger) > 1000
