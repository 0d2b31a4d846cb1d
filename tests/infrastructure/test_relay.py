"""The relay publishes the log to the stream once, in log order, on every store."""

from __future__ import annotations

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.events import Initiated
from creditledger.infrastructure.relay.broker import NatsServerProcess
from creditledger.infrastructure.relay.relay import connected
from creditledger.infrastructure.relay.stream import StreamSpec
from tests.infrastructure.relay_support import (
    assert_stream_equals_log,
    relay_catch_up,
    run,
    stream_messages,
    unique_spec,
)
from tests.readmodels_support import authorize, initiate, settle


def test_every_event_reaches_the_stream_once_in_log_order_with_its_identity(
    ledger: CreditLedger, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    for customer in ("c1", "c2", "c3"):
        settle(ledger, authorize(ledger, initiate(ledger, namespace="acme", customer=customer)))
    initiate(ledger, namespace="globex")

    assert relay_catch_up(ledger, nats_broker.url, spec, pipelined=True) == 10
    assert assert_stream_equals_log(nats_broker.url, spec, ledger) == 10
    messages = stream_messages(nats_broker.url, spec)
    assert [m.namespace for m in messages] == ["acme"] * 9 + ["globex"]
    assert [m.type for m in messages[:3]] == ["Initiated", "PaymentAuthorized", "PaymentSettled"]
    assert [m.version for m in messages[:3]] == [1, 2, 3]
    last = messages[-1].event()
    assert isinstance(last, Initiated)
    assert last.namespace == "globex"


def test_a_restarted_relay_resumes_after_the_streams_last_message(
    ledger: CreditLedger, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    purchase = initiate(ledger)
    assert relay_catch_up(ledger, nats_broker.url, spec, pipelined=True) == 1
    # A new relay (a restart) finds nothing to do, then only what was written since.
    assert relay_catch_up(ledger, nats_broker.url, spec, pipelined=False) == 0
    settle(ledger, authorize(ledger, purchase))
    assert relay_catch_up(ledger, nats_broker.url, spec, pipelined=False) == 2
    assert assert_stream_equals_log(nats_broker.url, spec, ledger) == 3


async def _foreign_message(url: str, spec: StreamSpec) -> None:
    async with connected(url) as client:
        js = client.jetstream()
        await js.add_stream(spec.config())
        await js.publish(spec.subject("acme", "Other"), b"{}")


@pytest.mark.parametrize("backend", ["sqlite"])  # the ledger's store plays no part here
def test_a_stream_shared_with_another_publisher_is_refused_naming_the_reason(
    ledger: CreditLedger, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    initiate(ledger)
    run(_foreign_message(nats_broker.url, spec))
    with pytest.raises(ValueError, match="message 1 has no Creditledger-Position header"):
        relay_catch_up(ledger, nats_broker.url, spec)
