"""The PostgreSQL append path: one function call per batch that keeps the library's guarantees.

Every batch is one transaction that takes the table lock before drawing notification ids, so ids
become visible in the order they were issued; a batch is all or nothing; the ids returned are
the stored ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from creditledger.application.commands import AuthorizePayment
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.bootstrap import open_ledger
from creditledger.infrastructure.persistence.postgres import AppendFunctionRecorder
from creditledger.infrastructure.settings import Settings
from tests.application.builders import NAMESPACE, external_purchase
from tests.infrastructure.http_app import client_for, purchase_body
from tests.stores import POSTGRES_URL, postgres_url, truncate_schema


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def recorder(ledger: CreditLedger) -> AppendFunctionRecorder:
    recorder = ledger.recorder
    if not isinstance(recorder, AppendFunctionRecorder):  # pragma: no cover - wiring broke
        pytest.fail(f"the ledger's PostgreSQL recorder is {type(recorder).__name__}")
    return recorder


@pytest.fixture
def table(recorder: AppendFunctionRecorder) -> str:
    return f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'


@pytest.fixture
def connection() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(POSTGRES_URL) as connection:
        yield connection


def stored(count: int, version: int = 1) -> list[StoredEvent]:
    return [
        StoredEvent(uuid4(), version, "bench:Event", b"\x00\\x'\"" + bytes([n % 256]))
        for n in range(count)
    ]


def test_a_batch_returns_the_ids_it_was_stored_under_in_order(
    recorder: AppendFunctionRecorder,
) -> None:
    events = stored(5)
    ids = recorder.insert_events(events)
    assert ids is not None
    assert ids == sorted(ids)
    logged = recorder.select_notifications(start=None, limit=100)
    assert [n.id for n in logged] == ids
    # Bytes and text come back exactly as given: nothing was escaped on the way in.
    assert [(n.originator_id, n.originator_version, n.topic, n.state) for n in logged] == [
        (e.originator_id, e.originator_version, e.topic, e.state) for e in events
    ]


def test_an_empty_batch_writes_nothing(recorder: AppendFunctionRecorder) -> None:
    assert recorder.insert_events([]) == []
    assert recorder.max_notification_id() is None


def test_a_batch_with_a_taken_version_writes_none_of_its_events(
    recorder: AppendFunctionRecorder,
) -> None:
    (first,) = stored(1)
    recorder.insert_events([first])
    clash = StoredEvent(first.originator_id, 1, "bench:Event", b"again")
    with pytest.raises(IntegrityError):
        recorder.insert_events([*stored(3), clash])
    assert [n.originator_id for n in recorder.select_notifications(None, 100)] == [
        first.originator_id
    ]


def test_a_writer_waits_for_the_table_lock_so_ids_are_visible_in_issue_order(
    recorder: AppendFunctionRecorder,
    table: str,
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    # Another transaction has drawn an id and not committed yet (a plain INSERT, which holds
    # only a ROW EXCLUSIVE lock).
    (early,) = stored(1)
    drawn = connection.execute(
        f"INSERT INTO {table} (originator_id, originator_version, topic, state) "  # noqa: S608
        "VALUES (%s, %s, %s, %s) RETURNING notification_id",
        (early.originator_id, early.originator_version, early.topic, early.state),
    ).fetchone()
    written: list[int] = []

    def append() -> None:
        written.extend(recorder.insert_events(stored(2)) or [])

    writer = threading.Thread(target=append)
    writer.start()
    # The append must wait for it rather than draw later ids and commit them first: a reader
    # would then see id n+1 before id n, and a reader that remembers the highest id it has
    # seen would pass over n for ever.
    with psycopg.connect(POSTGRES_URL, autocommit=True) as observer:
        deadline = time.monotonic() + 10
        waiting = 0
        while waiting == 0 and time.monotonic() < deadline:
            row = observer.execute(
                "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
                (table,),
            ).fetchone()
            waiting = int(row[0]) if row else 0
            time.sleep(0.01)
    assert waiting == 1
    assert written == []
    connection.commit()
    writer.join()
    assert drawn is not None
    assert len(written) == 2
    assert min(written) > drawn[0]  # type: ignore[operator]


def test_after_a_server_restart_killed_every_pooled_connection_the_next_commands_succeed(
    postgres_session_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ledger's connections carry a name of their own (libpq reads PGAPPNAME), so that this
    # test kills them and nothing else on the server.
    name = f"creditledger-restart-{uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", name)
    truncate_schema(postgres_session_schema)
    settings = Settings(database_url=postgres_url(postgres_session_schema), pool_size=16)
    with open_ledger(settings=settings) as ledger:
        purchase = ledger.initiate(external_purchase(idempotency_key="before")).purchase
        datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
        datastore.pool.wait()  # all 16 connections open and idle
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone()
        # More dead connections than the library's ten retries would get through one by one.
        assert killed is not None
        assert killed[0] >= 16
        assert ledger.get_purchase(NAMESPACE, purchase.id).version == 1
        authorized = ledger.authorize(
            AuthorizePayment(namespace=NAMESPACE, purchase_id=purchase.id)
        )
        assert authorized.purchase.version == 2


def test_a_create_whose_commit_reply_was_lost_gets_its_first_answer(
    ledger: CreditLedger, recorder: AppendFunctionRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL committed the first send, then the connection died before the reply: the
    recorder re-sends, finds the versions taken by exactly its own events, and the client gets
    the first answer (201, no Idempotent-Replayed), not a replay of a request sent once."""
    sends: list[int] = []
    commit = recorder.append_once

    def commit_then_lose_the_reply(events: Sequence[StoredEvent]) -> list[int]:
        sends.append(len(events))
        positions = commit(events)
        if len(sends) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return positions

    monkeypatch.setattr(recorder, "append_once", commit_then_lose_the_reply)
    with client_for(ledger) as client:
        first = client.post(
            "/v1/namespaces/acme/credit-purchases",
            json=purchase_body(),
            headers={"Idempotency-Key": "sent-once"},
        )
        retried = client.post(
            "/v1/namespaces/acme/credit-purchases",
            json=purchase_body(),
            headers={"Idempotency-Key": "sent-once"},
        )

    assert len(sends) == 2  # the lost reply made the recorder send again
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert retried.status_code == 200
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["id"] == first.json()["id"]
    assert recorder.max_notification_id() == 2  # written once: the Initiated, its GrantAdded


def test_a_resent_batch_that_finds_another_writers_events_is_still_refused(
    recorder: AppendFunctionRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only this call's own events make a lost reply a success: the same slots holding other
    events are a conflict, as always."""
    mine = stored(1)
    theirs = [StoredEvent(mine[0].originator_id, 1, "bench:Other", b"theirs")]
    sends: list[int] = []

    def another_writer_first_then_lose_the_reply(events: Sequence[StoredEvent]) -> list[int]:
        sends.append(len(events))
        if len(sends) == 1:
            AppendFunctionRecorder.append_once(recorder, theirs)
            raise OperationalError("server closed the connection unexpectedly")
        return AppendFunctionRecorder.append_once(recorder, events)

    monkeypatch.setattr(recorder, "append_once", another_writer_first_then_lose_the_reply)
    with pytest.raises(IntegrityError):
        recorder.insert_events(mine)
    assert len(sends) == 2
