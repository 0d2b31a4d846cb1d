"""Group commit under fire: many threads, mixed valid, invalid and conflicting commands at once.

Every command carries its own idempotency key, and every stored event carries the key of the
command that wrote it. So the store itself says which callers' writes were committed, and each
caller's answer can be checked against it: nothing lost, nothing doubled, no answer that the
committed history contradicts.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from creditledger.application.commands import (
    AuthorizePayment,
    Command,
    InitiatePurchase,
    SettlementInput,
    SettlePayment,
)
from creditledger.application.errors import StoreUnavailableError
from creditledger.application.ledger import CreditLedger, Outcome
from creditledger.domain.errors import LedgerError
from creditledger.domain.events import Initiated, PurchaseEvent, PurchaseEventBase
from creditledger.infrastructure.bootstrap import open_ledger
from creditledger.infrastructure.settings import Settings
from tests.clock import FixedClock
from tests.stores import POSTGRES_URL, postgres_url, truncate_schema

NAMESPACE = "acme"


@pytest.fixture(params=["sqlite", "postgres"])
def batched_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    schema: str = request.getfixturevalue("postgres_session_schema")
    truncate_schema(schema)
    return postgres_url(schema)


@pytest.fixture(params=[0.0, 1.0], ids=["no-wait", "wait-1ms"])
def batched_ledger(batched_store: str, request: pytest.FixtureRequest) -> Iterator[CreditLedger]:
    """Group commit as configured by default, and with its writer waiting up to 1 ms for more."""
    settings = Settings(
        database_url=batched_store,
        group_commit=True,
        pool_size=8,
        group_commit_max_wait_ms=request.param,
    )
    ledger = open_ledger(settings=settings, clock=FixedClock())
    yield ledger
    ledger.close()


def _initiate(key: str, customer: str = "cust-1", currency: str = "USD") -> InitiatePurchase:
    return InitiatePurchase(
        namespace=NAMESPACE,
        customer_id=customer,
        currency=currency,
        credit_amount="10",
        cost_basis="0.5",
        settlement=SettlementInput(type="external"),
        idempotency_key=key,
    )


@dataclass
class Answer:
    command: Command
    outcome: Outcome | None = None
    error: LedgerError | None = None


def _run(ledger: CreditLedger, command: Command) -> Answer:
    try:
        if isinstance(command, InitiatePurchase):
            return Answer(command, outcome=ledger.initiate(command))
        if isinstance(command, AuthorizePayment):
            return Answer(command, outcome=ledger.authorize(command))
        if isinstance(command, SettlePayment):
            return Answer(command, outcome=ledger.settle(command))
    except LedgerError as error:
        return Answer(command, error=error)
    raise TypeError(command)


def _all_events(ledger: CreditLedger) -> list[PurchaseEvent]:
    events: list[PurchaseEvent] = []
    start = 0
    while True:
        batch = ledger.recorder.select_notifications(
            start=start, limit=500, inclusive_of_start=False
        )
        if not batch:
            return events
        events += [ledger.mapper.to_domain_event(n) for n in batch]  # type: ignore[misc]
        start = batch[-1].id


def _mixed_commands(purchases: list[UUID], rounds: int, seed: int) -> list[Command]:
    chooser = random.Random(seed)
    commands: list[Command] = []
    for index in range(rounds):
        key = f"cmd-{index}"
        target = chooser.choice(purchases)
        kind = chooser.randrange(6)
        if kind == 0:
            commands.append(
                AuthorizePayment(namespace=NAMESPACE, purchase_id=target, idempotency_key=key)
            )
        elif kind == 1:
            commands.append(
                SettlePayment(namespace=NAMESPACE, purchase_id=target, idempotency_key=key)
            )
        elif kind == 2:  # stale If-Match: always refused
            commands.append(
                AuthorizePayment(
                    namespace=NAMESPACE,
                    purchase_id=target,
                    idempotency_key=key,
                    expected_version=99,
                )
            )
        elif kind == 3:  # invalid: never written
            commands.append(_initiate(key, currency="usd"))
        elif kind == 4:  # racing creates with a shared key and the same body
            commands.append(_initiate(f"shared-{chooser.randrange(3)}"))
        else:  # the shared key again, another body: idempotency_key_reused unless it came first
            commands.append(_initiate(f"shared-{chooser.randrange(3)}", customer="cust-2"))
    return commands


def _assert_each_answer_names_its_own_position(ledger: CreditLedger, writers: list[Answer]) -> None:
    """Each write's answer names the log position of its own last event, exactly."""
    last_position_of_key: dict[str | None, int] = {}
    key = None
    for notification in ledger.recorder.select_notifications(start=0, limit=10_000):
        event = ledger.mapper.to_domain_event(notification)
        if isinstance(event, PurchaseEventBase):
            key = event.idempotency_key
        # A wallet event is written by the command just before it (an initiate's GrantAdded).
        last_position_of_key[key] = notification.id
    for writer in writers:
        assert writer.outcome is not None
        assert writer.outcome.position == last_position_of_key[writer.command.idempotency_key]


def _assert_history_is_sound(
    ledger: CreditLedger, events: list[PurchaseEvent], answers: list[Answer]
) -> None:
    """No purchase paid twice, no version skipped, every answer a state the history went through."""
    by_purchase: dict[UUID, list[PurchaseEvent]] = {}
    for event in events:
        by_purchase.setdefault(event.originator_id, []).append(event)
    for history in by_purchase.values():
        types = [event.TYPE.value for event in history]
        assert types.count("PaymentAuthorized") <= 1
        assert types.count("PaymentSettled") <= 1
        assert [event.originator_version for event in history] == list(range(1, len(history) + 1))
    for answer in answers:
        if answer.outcome is not None:
            view = answer.outcome.purchase
            assert ledger.get_purchase(NAMESPACE, view.id, version=view.version) == view


def test_concurrent_mixed_commands_match_the_committed_history(
    batched_ledger: CreditLedger,
) -> None:
    ledger = batched_ledger
    purchases = [ledger.initiate(_initiate(f"setup-{i}")).purchase.id for i in range(8)]
    commands = _mixed_commands(purchases, rounds=240, seed=7)

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda command: _run(ledger, command), commands))

    # The purchases' own events: each initiate also wrote a key-less GrantAdded to a wallet.
    events = [e for e in _all_events(ledger) if isinstance(e, PurchaseEventBase)]
    written_keys = {event.idempotency_key for event in events}
    writers = [a for a in answers if a.outcome is not None and not a.outcome.replayed]
    # Nothing lost: every acknowledged write is in the store.
    assert {a.command.idempotency_key for a in writers} <= written_keys
    # Nothing doubled: each committed command (its key) was acknowledged as a write exactly once.
    committed_keys = written_keys - {f"setup-{i}" for i in range(8)}
    assert sorted(str(a.command.idempotency_key) for a in writers) == sorted(
        map(str, committed_keys)
    )
    _assert_each_answer_names_its_own_position(ledger, writers)
    _assert_history_is_sound(ledger, events, answers)
    # Refusals are the ones the history justifies.
    for answer in answers:
        if answer.error is None:
            continue
        command, code = answer.command, answer.error.code
        assert command.idempotency_key not in committed_keys or isinstance(
            command, InitiatePurchase
        )
        if isinstance(command, InitiatePurchase) and command.currency == "usd":
            assert code == "validation_failed"
        elif isinstance(command, InitiatePurchase):
            assert code == "idempotency_key_reused"
        elif command.expected_version == 99:  # type: ignore[attr-defined]
            assert code == "version_mismatch"
        elif isinstance(command, AuthorizePayment):
            assert code == "payment_already_authorized"
        else:
            assert code == "payment_already_settled"


def _refuse_poison(store_url: str) -> None:
    """Install a real database-side refusal: any event whose JSON mentions 'poison' fails."""
    if store_url.startswith("sqlite"):
        import sqlite3  # noqa: PLC0415 - only this branch needs the driver

        path = store_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as connection:
            connection.execute(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON stored_events "
                "WHEN instr(CAST(NEW.state AS TEXT), 'poison') > 0 "
                "BEGIN SELECT RAISE(ABORT, 'poisoned event refused'); END"
            )
        return
    schema = store_url.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(
            f"""CREATE FUNCTION "{schema}".refuse_poison() RETURNS trigger AS $$
            BEGIN
                IF convert_from(NEW.state, 'UTF8') LIKE '%poison%' THEN
                    RAISE EXCEPTION 'poisoned event refused';
                END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql"""
        )
        connection.execute(
            f'CREATE TRIGGER refuse_poison BEFORE INSERT ON "{schema}".creditledger_events '
            f'FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse_poison()'
        )


@pytest.fixture
def refuse_poison(batched_store: str) -> Iterator[Callable[[], None]]:
    """Installs the refusal when called; removes it afterwards (the PostgreSQL schema is shared
    by the session's tests, and the trigger would refuse their non-UTF-8 test bytes)."""
    yield lambda: _refuse_poison(batched_store)
    if batched_store.startswith("sqlite"):
        return  # the file is the test's own
    schema = batched_store.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(
            f'DROP TRIGGER IF EXISTS refuse_poison ON "{schema}".creditledger_events'
        )
        connection.execute(f'DROP FUNCTION IF EXISTS "{schema}".refuse_poison()')


def test_a_write_the_database_refuses_fails_only_its_own_command(
    batched_ledger: CreditLedger, refuse_poison: Callable[[], None]
) -> None:
    ledger = batched_ledger
    ledger.initiate(_initiate("warm-up"))  # creates the tables
    refuse_poison()
    customers = [f"cust-{i}" for i in range(40)]
    customers[17] = "poison"
    barrier = threading.Barrier(len(customers))

    def initiate(customer: str) -> Answer:
        barrier.wait()
        return _run(ledger, _initiate(f"key-{customer}", customer=customer))

    with ThreadPoolExecutor(max_workers=len(customers)) as pool:
        answers = list(pool.map(initiate, customers))

    failed = [a for a in answers if a.error is not None]
    assert [a.command.customer_id for a in failed] == ["poison"]  # type: ignore[attr-defined]
    assert isinstance(failed[0].error, StoreUnavailableError)
    assert "poisoned event refused" in failed[0].error.detail
    stored_customers = [e.customer_id for e in _all_events(ledger) if isinstance(e, Initiated)]
    assert "poison" not in stored_customers
    assert len(stored_customers) == 40  # the 39 neighbours and the warm-up purchase
    # The writer keeps serving.
    assert ledger.initiate(_initiate("after")).purchase.status == "active.payment.pending"


def test_closing_the_ledger_finishes_what_callers_were_told_is_written(
    batched_store: str,
) -> None:
    ledger = open_ledger(settings=Settings(database_url=batched_store, group_commit=True))
    acknowledged: list[UUID] = []
    lock = threading.Lock()

    def initiate(index: int) -> None:
        view = ledger.initiate(_initiate(f"close-{index}")).purchase
        with lock:
            acknowledged.append(view.id)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(initiate, range(64)))
    ledger.close()
    reopened = open_ledger(batched_store)
    try:
        for purchase_id in acknowledged:
            assert reopened.get_purchase(NAMESPACE, purchase_id).version == 1
    finally:
        reopened.close()


def _kill_connections(schema: str) -> int:
    """Terminate the server processes serving the ledger's pool, as a server restart would."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND query LIKE %s",
            (f'%"{schema}"%',),
        ).fetchall()
    return sum(1 for (killed,) in rows if killed)


def test_connections_killed_under_load_lose_nothing_and_the_ledger_recovers(
    postgres_session_schema: str,
) -> None:
    truncate_schema(postgres_session_schema)
    settings = Settings(
        database_url=postgres_url(postgres_session_schema), group_commit=True, pool_size=8
    )
    ledger = open_ledger(settings=settings, clock=FixedClock())
    try:
        purchases = [ledger.initiate(_initiate(f"setup-{i}")).purchase.id for i in range(8)]
        commands = _mixed_commands(purchases, rounds=400, seed=11)
        stop = threading.Event()
        kills: list[int] = []

        def killer() -> None:
            while not stop.wait(0.02):
                kills.append(_kill_connections(postgres_session_schema))

        chaos = threading.Thread(target=killer)
        chaos.start()
        try:
            with ThreadPoolExecutor(max_workers=32) as pool:
                answers = list(pool.map(lambda command: _run(ledger, command), commands))
        finally:
            stop.set()
            chaos.join()
        assert sum(kills) > 0  # connections really were lost mid-run

        events = [e for e in _all_events(ledger) if isinstance(e, PurchaseEventBase)]
        written_keys = {event.idempotency_key for event in events}
        # Every acknowledged write is stored; every stored command was answered with its
        # outcome or a replay of it, or told the store was unavailable (its retry, with the
        # same key, replays): never half-applied, never silently dropped.
        for answer in answers:
            if answer.outcome is not None and not answer.outcome.replayed:
                assert answer.command.idempotency_key in written_keys
        answered = {
            a.command.idempotency_key
            for a in answers
            if a.outcome is not None or isinstance(a.error, StoreUnavailableError)
        }
        assert written_keys - {f"setup-{i}" for i in range(8)} <= answered
        _assert_history_is_sound(ledger, events, answers)
        # The service keeps working once the connections are back.
        assert ledger.initiate(_initiate("after")).purchase.status == "active.payment.pending"
    finally:
        ledger.close()


def test_a_store_that_refuses_writes_for_a_while_fails_those_commands_then_recovers(
    tmp_path: Path,
) -> None:
    import sqlite3  # noqa: PLC0415 - only this test holds the file's lock by hand

    path = tmp_path / "ledger.sqlite"
    settings = Settings(
        database_url=f"sqlite:///{path}", group_commit=True, pool_size=8, sqlite_lock_timeout=1
    )
    ledger = open_ledger(settings=settings, clock=FixedClock())
    try:
        ledger.initiate(_initiate("warm-up"))
        # Another process holds the database's write lock past the ledger's lock timeout: every
        # transaction written meanwhile is refused, as by a store that is down for writes.
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        customers = [f"cust-{i}" for i in range(4)]
        with ThreadPoolExecutor(max_workers=len(customers)) as pool:
            answers = list(
                pool.map(lambda c: _run(ledger, _initiate(f"key-{c}", customer=c)), customers)
            )
        blocker.execute("ROLLBACK")
        blocker.close()
        # Each caller hears of it, with the store's reason; nothing of theirs was written.
        for answer in answers:
            assert isinstance(answer.error, StoreUnavailableError)
            assert "locked" in answer.error.detail
        assert [e.idempotency_key for e in _all_events(ledger) if isinstance(e, Initiated)] == [
            "warm-up"
        ]
        # The service keeps working, and the same requests, retried, now go through.
        for customer in customers:
            retried = ledger.initiate(_initiate(f"key-{customer}", customer=customer))
            assert retried.created
            assert not retried.replayed
    finally:
        ledger.close()
