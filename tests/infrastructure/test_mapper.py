"""The event mapper: plain JSON under explicit topics, read back with validation and upcasting."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import JSONTranscoder, MapperDeserialisationError, StoredEvent
from psycopg import sql

from creditledger.application.ledger import CreditLedger
from creditledger.domain.events import (
    EVENT_CLASSES,
    GrantAdded,
    Initiated,
    PaymentAuthorized,
    PaymentSettled,
    PurchaseEvent,
)
from creditledger.domain.intent import normalize_intent
from creditledger.domain.purchase import CommandContext, CreditPurchase
from creditledger.infrastructure.persistence.mapper import PurchaseEventMapper
from tests.application.builders import external_purchase
from tests.stores import POSTGRES_URL

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def settled_purchase_events() -> list[PurchaseEvent]:
    """Initiated, PaymentAuthorized and PaymentSettled of one purchase, as the aggregate records."""
    intent = normalize_intent(
        now=NOW,
        namespace="acme",
        customer_id="cust-1",
        currency="USD",
        credit_amount="100.123",
        settlement_type="external",
        cost_basis="0.5",
        initial_status="settled",
        feature_filters=["storage", "api_calls"],
        metadata={"order": "A-1"},
        expires_at=datetime(2027, 1, 1, tzinfo=UTC),
    )
    context = CommandContext(
        at=NOW, idempotency_key="order-1", request_fingerprint="f" * 64, external_reference="psp-1"
    )
    return CreditPurchase.initiate(uuid4(), intent, context).collect_events()


@pytest.fixture
def mapper() -> PurchaseEventMapper:
    return PurchaseEventMapper(transcoder=JSONTranscoder())


@pytest.mark.parametrize("index", [0, 1, 2], ids=["Initiated", "PaymentAuthorized", "Settled"])
def test_every_event_type_round_trips_unchanged(mapper: PurchaseEventMapper, index: int) -> None:
    event = settled_purchase_events()[index]

    assert mapper.to_domain_event(mapper.to_stored_event(event)) == event


def test_events_are_stored_as_plain_json_under_their_explicit_topics(
    mapper: PurchaseEventMapper,
) -> None:
    initiated, authorized, settled = (
        mapper.to_stored_event(event) for event in settled_purchase_events()
    )

    assert [initiated.topic, authorized.topic, settled.topic] == [
        "creditledger.purchase:Initiated",
        "creditledger.purchase:PaymentAuthorized",
        "creditledger.purchase:PaymentSettled",
    ]
    state = json.loads(initiated.state)
    assert state["credit_amount"] == "100.12"
    assert state["cost_basis"] == "0.5"
    assert state["feature_filters"] == ["api_calls", "storage"]
    assert state["metadata"] == {"order": "A-1"}
    assert state["timestamp"] == "2026-01-01T12:00:00Z"
    assert json.loads(authorized.state)["amount"] == "50.06"
    assert "_type_" not in initiated.state.decode()
    # The envelope lives in the table's own columns, not twice.
    assert not {"originator_id", "originator_version"} & state.keys()


def test_the_stored_topic_does_not_depend_on_the_python_class_name(
    mapper: PurchaseEventMapper,
) -> None:
    class RenamedAuthorization(PaymentAuthorized):
        """The same fact under a new class name (and in another module)."""

    event = settled_purchase_events()[1]
    renamed = RenamedAuthorization.model_validate(event.model_dump())

    stored = mapper.to_stored_event(renamed)

    assert stored.topic == mapper.to_stored_event(event).topic
    assert "Renamed" not in stored.topic
    assert "domain" not in stored.topic
    assert mapper.to_domain_event(stored) == event


def test_an_unknown_topic_cannot_be_read(mapper: PurchaseEventMapper) -> None:
    stored = StoredEvent(
        originator_id=uuid4(),
        originator_version=1,
        topic="creditledger.purchase:Vanished",
        state=b"{}",
    )

    with pytest.raises(MapperDeserialisationError, match="Vanished"):
        mapper.to_domain_event(stored)


def test_a_corrupt_state_cannot_be_read(mapper: PurchaseEventMapper) -> None:
    stored = StoredEvent(
        originator_id=uuid4(),
        originator_version=1,
        topic=Initiated.TOPIC,
        state=b"{not json",
    )

    with pytest.raises(MapperDeserialisationError, match="cannot read stored event"):
        mapper.to_domain_event(stored)


def test_a_state_that_breaks_the_event_schema_is_refused(mapper: PurchaseEventMapper) -> None:
    stored = mapper.to_stored_event(settled_purchase_events()[1])
    state = json.loads(stored.state)
    state["amount"] = "not money"
    tampered = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state).encode(),
    )

    with pytest.raises(ValueError, match="amount"):
        mapper.to_domain_event(tampered)


def test_a_compressed_store_round_trips_too() -> None:
    mapper = PurchaseEventMapper(transcoder=JSONTranscoder(), compressor=ZlibCompressor())
    event = settled_purchase_events()[0]

    stored = mapper.to_stored_event(event)

    assert not stored.state.startswith(b"{")
    assert mapper.to_domain_event(stored) == event


class InitiatedWithChannel(Initiated):
    """A hypothetical second version of Initiated that records the sales channel."""

    class_version: ClassVar[int] = 2

    channel: str

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        # Purchases recorded before channels existed all came through the API.
        state["channel"] = "api"


class TestUpcasting:
    @pytest.fixture(autouse=True)
    def initiated_is_at_version_2(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(EVENT_CLASSES, Initiated.TOPIC, InitiatedWithChannel)

    def test_an_event_stored_at_version_1_is_upcast_when_read(
        self, mapper: PurchaseEventMapper
    ) -> None:
        stored_v1 = mapper.to_stored_event(settled_purchase_events()[0])

        event = mapper.to_domain_event(stored_v1)

        assert isinstance(event, InitiatedWithChannel)
        assert event.channel == "api"
        assert event.credit_amount == Decimal("100.12")

    def test_an_event_stored_at_version_2_records_its_version_and_is_not_upcast_again(
        self, mapper: PurchaseEventMapper
    ) -> None:
        original = settled_purchase_events()[0]
        current = InitiatedWithChannel.model_validate({**original.model_dump(), "channel": "web"})

        stored = mapper.to_stored_event(current)

        assert json.loads(stored.state)["class_version"] == 2
        assert mapper.to_domain_event(stored) == current


class TestInTheStore:
    def test_the_ledger_reads_its_own_log_through_the_mapper(self, ledger: CreditLedger) -> None:
        purchase = ledger.initiate(external_purchase(initial_status="settled")).purchase

        notifications = ledger.recorder.select_notifications(start=None, limit=10)
        events = [ledger.mapper.to_domain_event(notification) for notification in notifications]

        assert [type(event) for event in events] == [
            Initiated,
            PaymentAuthorized,
            PaymentSettled,
            GrantAdded,
        ]
        assert {event.originator_id for event in events[:3]} == {purchase.id}
        grant = events[3]
        assert isinstance(grant, GrantAdded)
        assert grant.purchase_id == purchase.id

    @pytest.mark.parametrize("backend", ["sqlite", "postgres"])
    def test_the_stored_state_is_json_that_sql_can_query(
        self, backend: str, store_url: str, ledger: CreditLedger
    ) -> None:
        purchase = ledger.initiate(external_purchase(credit_amount="100.123")).purchase

        if backend == "sqlite":
            amounts = _sqlite_credit_amounts(store_url)
        else:
            amounts = _postgres_credit_amounts(store_url)

        assert amounts == [(str(purchase.id), "100.12")]


def _sqlite_credit_amounts(store_url: str) -> list[tuple[str, str]]:
    path = store_url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute(
            "SELECT originator_id, json_extract(CAST(state AS TEXT), '$.credit_amount') "
            "FROM stored_events WHERE topic = 'creditledger.purchase:Initiated'"
        ).fetchall()
    # SQLite keeps the id as 32 hex digits.
    return [(str(UUID(originator_id)), amount) for originator_id, amount in rows]


def _postgres_credit_amounts(store_url: str) -> list[tuple[str, str]]:
    schema = parse_qs(urlsplit(store_url).query)["schema"][0]
    query = sql.SQL(
        "SELECT originator_id::text, convert_from(state, 'UTF8')::jsonb->>'credit_amount' "
        "FROM {}.creditledger_events WHERE topic = 'creditledger.purchase:Initiated'"
    ).format(sql.Identifier(schema))
    with psycopg.connect(POSTGRES_URL) as connection:
        rows = connection.execute(query).fetchall()
    return [(str(originator_id), str(amount)) for originator_id, amount in rows]
