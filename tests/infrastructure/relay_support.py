"""Helpers for the relay and consumer tests: the stream and the log read side by side."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.rows import RevenueKey
from creditledger.domain.events import Initiated, PaymentSettled
from creditledger.domain.money import payment_amount
from creditledger.infrastructure.relay.kit import Delivered, delivered
from creditledger.infrastructure.relay.relay import Relay, connected
from creditledger.infrastructure.relay.stream import StreamSpec

CREDITLEDGER = str(Path(sys.executable).parent / "creditledger")
T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def unique_spec() -> StreamSpec:
    """A stream of its own for one test, on the session's broker."""
    token = uuid.uuid4().hex[:10]
    return StreamSpec(name=f"T{token}", subject_prefix=f"t{token}")


def relay_env(url: str, spec: StreamSpec, store_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "CREDITLEDGER_NATS_URL": url,
        "CREDITLEDGER_RELAY_STREAM": spec.name,
        "CREDITLEDGER_RELAY_SUBJECT_PREFIX": spec.subject_prefix,
        "CREDITLEDGER_DATABASE_URL": store_url,
    }


def start_relay(url: str, spec: StreamSpec, store_url: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [CREDITLEDGER, "relay", *extra],
        env=relay_env(url, spec, store_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def catch_up_with_relay(url: str, spec: StreamSpec, store_url: str) -> None:
    subprocess.run(
        [CREDITLEDGER, "relay", "--until-caught-up"],
        env=relay_env(url, spec, store_url),
        check=True,
        capture_output=True,
        timeout=120,
    )


async def _stream_messages(url: str, spec: StreamSpec) -> list[Delivered]:
    async with connected(url) as client:
        js = client.jetstream()
        subscription = await js.pull_subscribe(
            f"{spec.subject_prefix}.>",
            stream=spec.name,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
        )
        found: list[Delivered] = []
        total = (await js.stream_info(spec.name)).state.messages
        while len(found) < total:
            try:
                batch = await subscription.fetch(1000, timeout=2)
            except nats.errors.TimeoutError:
                break
            found.extend(delivered(message) for message in batch)
        await subscription.unsubscribe()
        return found


def stream_messages(url: str, spec: StreamSpec) -> list[Delivered]:
    """Every message of the stream, in stream order."""
    return run(_stream_messages(url, spec))


@dataclass(frozen=True)
class Logged:
    position: int
    topic: str
    state: bytes


def logged(ledger: CreditLedger) -> list[Logged]:
    """Every notification of the log, in log order."""
    notifications = ledger.recorder.select_notifications(start=1, limit=10**9)
    return [Logged(n.id, n.topic, n.state) for n in notifications]


def assert_stream_equals_log(url: str, spec: StreamSpec, ledger: CreditLedger) -> int:
    """Same events, same order, no duplicate, contiguous sequences; returns how many."""
    messages = stream_messages(url, spec)
    expected = logged(ledger)
    assert [m.sequence for m in messages] == list(range(1, len(messages) + 1))
    got = [Logged(m.position, m.topic, m.payload) for m in messages]
    positions = [m.position for m in got]
    assert len(set(positions)) == len(positions), "a log position was published twice"
    missing = sorted({e.position for e in expected} - set(positions))
    assert not missing, f"{len(missing)} events never reached the stream: {missing[:10]}"
    assert got == expected
    return len(got)


def revenue_fold(
    ledger: CreditLedger, *, through: int | None = None
) -> dict[RevenueKey, tuple[Decimal, Decimal, int]]:
    """Settled revenue folded straight from the log with the domain's money rule."""
    initiated: dict[uuid.UUID, Initiated] = {}
    totals: dict[RevenueKey, tuple[Decimal, Decimal, int]] = {}
    notifications = ledger.recorder.select_notifications(start=1, limit=10**9, stop=through)
    for notification in notifications:
        event = ledger.mapper.to_domain_event(notification)
        if isinstance(event, Initiated):
            initiated[event.originator_id] = event
        elif isinstance(event, PaymentSettled):
            terms = initiated[event.originator_id]
            if terms.cost_basis is None:
                continue
            key = (terms.namespace, terms.currency, event.at.astimezone(UTC).date())
            amount, credits, count = totals.get(key, (Decimal(0), Decimal(0), 0))
            paid = payment_amount(terms.credit_amount, terms.cost_basis, terms.currency)
            totals[key] = (amount + paid, credits + terms.credit_amount, count + 1)
    return totals


def relay_catch_up(
    ledger: CreditLedger, url: str, spec: StreamSpec, *, pipelined: bool = True, batch_size: int = 7
) -> int:
    """Relay the log as it stands, in this process; how many events were published."""

    async def catch_up() -> int:
        async with connected(url) as client:
            relay = Relay.of_ledger(
                ledger, client.jetstream(), spec, batch_size=batch_size, pipelined=pipelined
            )
            return await relay.catch_up()

    return run(catch_up())
