"""The relay publishes the log to the stream once, in log order, on every store."""

from __future__ import annotations

from decimal import Decimal

import pytest

from creditledger.application.commands import CreateInvoice, FailPayment, RefundPayment
from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import InsufficientCreditError
from creditledger.domain.events import (
    CreditsConsumed,
    GrantRevoked,
    Initiated,
    InvoiceCreated,
    PaymentFailed,
    PaymentRefunded,
)
from creditledger.domain.identity import wallet_id_for
from creditledger.infrastructure.relay.broker import NatsServerProcess
from creditledger.infrastructure.relay.kit import NotAPurchaseEventError
from creditledger.infrastructure.relay.relay import connected
from creditledger.infrastructure.relay.stream import StreamSpec
from tests.application.builders import consume, void
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

    # Each initiate also writes the grant to the customer's wallet: 4 events per lifecycle.
    assert relay_catch_up(ledger, nats_broker.url, spec, pipelined=True) == 14
    assert assert_stream_equals_log(nats_broker.url, spec, ledger) == 14
    messages = stream_messages(nats_broker.url, spec)
    assert [m.namespace for m in messages] == ["acme"] * 12 + ["globex"] * 2
    assert [m.type for m in messages[:4]] == [
        "Initiated",
        "GrantAdded",
        "PaymentAuthorized",
        "PaymentSettled",
    ]
    assert [m.version for m in messages[:4]] == [1, 1, 2, 3]
    purchase = messages[0].event()
    assert [m.aggregate_id for m in messages[:4]] == [
        purchase.originator_id,
        wallet_id_for("acme", "c1", "USD"),
        purchase.originator_id,
        purchase.originator_id,
    ]
    initiated = messages[-2].event()
    assert isinstance(initiated, Initiated)
    assert initiated.namespace == "globex"


def test_wallet_events_are_relayed_in_order_under_their_wallets_id_and_namespace(
    ledger: CreditLedger, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    first = initiate(ledger, namespace="acme", customer="c1", amount="30", priority=1)
    second = initiate(ledger, namespace="acme", customer="c1", amount="20")
    relay_catch_up(ledger, nats_broker.url, spec)
    # A relay that never saw the wallet's grants (a restart) still names its namespace.
    for index in range(5):
        ledger.consume(
            consume("7", namespace="acme", customer_id="c1", idempotency_key=f"k{index}")
        )
    ledger.void(void(second.id, namespace="acme"))  # 35: 30 of the first, 5 of it
    with pytest.raises(InsufficientCreditError):
        ledger.consume(consume("100", namespace="acme", customer_id="c1"))
    assert relay_catch_up(ledger, nats_broker.url, spec, pipelined=False) == 7

    assert assert_stream_equals_log(nats_broker.url, spec, ledger) == 11
    messages = stream_messages(nats_broker.url, spec)
    wallet = wallet_id_for("acme", "c1", "USD")
    of_wallet = [m for m in messages if m.is_wallet_event]
    assert [m.type for m in of_wallet] == ["GrantAdded"] * 2 + ["CreditsConsumed"] * 5 + [
        "GrantVoided"
    ]
    assert {(m.aggregate_id, m.wallet_id, m.namespace) for m in of_wallet} == {
        (wallet, wallet, "acme")
    }
    assert [m.version for m in of_wallet] == list(range(1, 9))
    consumed = [m.event() for m in of_wallet if m.type == "CreditsConsumed"]
    assert sum(event.amount for event in consumed if isinstance(event, CreditsConsumed)) == 35
    with pytest.raises(NotAPurchaseEventError, match="read aggregate_id"):
        _ = of_wallet[0].purchase_id
    # A purchase's events keep their purchase id, as consumers written before wallets read it.
    assert messages[0].purchase_id == first.id
    assert messages[0].wallet_id is None


def test_invoices_failures_refunds_and_revocations_are_relayed_under_their_own_ids(
    ledger: CreditLedger, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    invoiced = initiate(ledger, namespace="globex", customer="c1", settlement="invoice")
    ledger.create_invoice(
        CreateInvoice(namespace="globex", purchase_id=invoiced.id, invoice_id="i", line_id="l")
    )
    settle(ledger, authorize(ledger, invoiced))
    ledger.refund(RefundPayment(namespace="globex", purchase_id=invoiced.id, amount="5"))
    failing = initiate(ledger, namespace="globex", customer="c1", priority=1)
    ledger.consume(consume("20", namespace="globex", customer_id="c1"))
    ledger.fail_payment(FailPayment(namespace="globex", purchase_id=failing.id, reason="no"))

    assert relay_catch_up(ledger, nats_broker.url, spec, pipelined=True) == 12
    assert assert_stream_equals_log(nats_broker.url, spec, ledger) == 12
    messages = stream_messages(nats_broker.url, spec)
    wallet = wallet_id_for("globex", "c1", "USD")
    assert [(m.type, m.aggregate_id, m.version) for m in messages] == [
        ("Initiated", invoiced.id, 1),
        ("InvoiceCreated", invoiced.id, 2),
        ("GrantAdded", wallet, 1),
        ("PaymentAuthorized", invoiced.id, 3),
        ("PaymentSettled", invoiced.id, 4),
        ("PaymentRefunded", invoiced.id, 5),
        ("GrantRevoked", wallet, 2),
        ("Initiated", failing.id, 1),
        ("GrantAdded", wallet, 3),
        ("CreditsConsumed", wallet, 4),
        ("PaymentFailed", failing.id, 2),
        ("GrantRevoked", wallet, 5),
    ]
    assert {m.namespace for m in messages} == {"globex"}
    assert [m.is_wallet_event for m in messages if "Revoked" in m.type] == [True, True]
    events = [m.event() for m in messages]
    assert isinstance(events[1], InvoiceCreated)
    assert (events[1].invoice_id, events[1].line_id) == ("i", "l")
    assert isinstance(events[5], PaymentRefunded)
    assert (events[5].amount, events[5].cash_amount) == (Decimal("5.00"), Decimal("2.50"))
    assert isinstance(events[10], PaymentFailed)
    # The consumption drew from the failing purchase first (priority 1): 20 stay owed.
    assert (events[10].consumed, events[10].revoked) == (Decimal("20.00"), Decimal("10.00"))
    revocations = [event for event in events if isinstance(event, GrantRevoked)]
    assert [(r.purchase_id, r.amount, r.cause.value) for r in revocations] == [
        (invoiced.id, Decimal("5.00"), "refund"),
        (failing.id, Decimal("10.00"), "payment_failed"),
    ]


def test_a_restarted_relay_resumes_after_the_streams_last_message(
    ledger: CreditLedger, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    purchase = initiate(ledger)  # and its grant in the customer's wallet
    assert relay_catch_up(ledger, nats_broker.url, spec, pipelined=True) == 2
    # A new relay (a restart) finds nothing to do, then only what was written since.
    assert relay_catch_up(ledger, nats_broker.url, spec, pipelined=False) == 0
    settle(ledger, authorize(ledger, purchase))
    assert relay_catch_up(ledger, nats_broker.url, spec, pipelined=False) == 2
    assert assert_stream_equals_log(nats_broker.url, spec, ledger) == 4


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
