"""Does creditledger slow down as its store grows? Command rates on a small and a big store.

Both stores are filled in bulk before any timing, with purchases that look exactly like those
the service writes: one real lifecycle is run through creditledger, and each stored purchase is
a copy of its four events (the purchase's three and the grant in the customer's wallet) with a
new purchase id, customer id (so a new wallet) and the ledger transaction group ids the domain
derives from that purchase id, serialized by creditledger's own mapper. The copies
go in through the library's SQLite connection or PostgreSQL ``COPY``; a sample is read back
through the ledger before anything is timed.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import cast

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg import sql

from bench.baselines import COMMANDS_PER_LIFECYCLE
from bench.lifecycles import (
    LEDGER_EVENTS_PER_LIFECYCLE,
    NAMESPACE,
    initiate_command,
    run_lifecycle,
    warmup_for,
)
from bench.stores import Backend, Store, fresh_store, postgres_connect
from bench.timing import Timing, check_event_count, time_callers
from creditledger.application.ledger import CreditLedger
from creditledger.domain.events import (
    GrantAdded,
    Initiated,
    LedgerEvent,
    PaymentAuthorized,
    PaymentSettled,
)
from creditledger.domain.identity import LedgerStep, transaction_group_id, wallet_id_for
from creditledger.domain.status import PurchaseStatus

CHECK_EVERY = 10_000
"""One bulk-loaded purchase in this many is also serialized the slow way and compared."""

LOAD_BATCH = 30_000
"""Stored events per write while filling a store."""

GROWTH_BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")
"""Where size can matter: on disk, behind B-tree indexes. (In memory every event is a list slot.)"""


@dataclass(frozen=True)
class TemplateLifecycle:
    """The four events of one real lifecycle, in the order creditledger logs them: the purchase's
    ``Initiated`` and the grant in the customer's wallet (one transaction), then the payment's
    authorization and settlement."""

    initiated: Initiated
    granted: GrantAdded
    authorized: PaymentAuthorized
    settled: PaymentSettled

    def events(self) -> tuple[LedgerEvent, ...]:
        return (self.initiated, self.granted, self.authorized, self.settled)


def template_lifecycle() -> TemplateLifecycle:
    """One real lifecycle's events, as creditledger records them."""
    with Store("memory", "memory://").open_ledger() as ledger:
        purchase_id = run_lifecycle(ledger, 0)
        initiated, authorized, settled = ledger.events.get(purchase_id)
        command = initiate_command(0)
        wallet_id = wallet_id_for(NAMESPACE, command.customer_id, command.currency)
        (granted,) = ledger.events.get(wallet_id)
    return TemplateLifecycle(
        cast(Initiated, initiated),
        cast(GrantAdded, granted),
        cast(PaymentAuthorized, authorized),
        cast(PaymentSettled, settled),
    )


class PurchaseCopies:
    """Stored events of new settled purchases, made from one real lifecycle's mapper output.

    Only a few values in a stored purchase depend on its id and customer: the ledger transaction
    group ids, the customer id, and in the wallet's ``GrantAdded`` the purchase id (the
    ``originator_id`` of each event is a column, not part of the JSON: the purchase id, or the
    id of the customer's wallet). Each copy is a new customer, so its wallet holds that one
    grant, at version 1. A copy swaps those values in the template's bytes, which is many times
    faster than serializing each event again; ``check`` proves on samples that the bytes equal
    what the mapper writes.
    """

    def __init__(self, mapper: Mapper[uuid.UUID]) -> None:
        self.mapper = mapper
        self.template = template_lifecycle()
        self.stored = [mapper.to_stored_event(event) for event in self.template.events()]
        self.customer = _json_pair("customer_id", self.template.initiated.customer_id)
        self.purchase_id = _json_string(self.template.initiated.originator_id)
        self.groups = {
            LedgerStep.CREDIT_GRANT: _json_string(
                transaction_group_id(self.template.initiated.originator_id, LedgerStep.CREDIT_GRANT)
            ),
            LedgerStep.PAYMENT_AUTHORIZATION: _json_string(
                self.template.authorized.transaction_group_id
            ),
            LedgerStep.PAYMENT_SETTLEMENT: _json_string(self.template.settled.transaction_group_id),
        }

    def purchase(self, index: int, purchase_id: uuid.UUID) -> list[StoredEvent]:
        """The four stored events of purchase ``index``, with id ``purchase_id``."""
        initiated, granted, authorized, settled = self.stored
        customer = _json_pair("customer_id", _customer(index))

        def grouped(stored: StoredEvent, step: LedgerStep) -> bytes:
            group = _json_string(transaction_group_id(purchase_id, step))
            return stored.state.replace(self.groups[step], group)

        wallet = wallet_id_for(NAMESPACE, _customer(index), self.template.initiated.currency)
        grant = granted.state.replace(self.customer, customer).replace(
            self.purchase_id, _json_string(purchase_id)
        )
        states = (
            (purchase_id, initiated, grouped(initiated, LedgerStep.CREDIT_GRANT)),
            (wallet, granted, grant),
            (purchase_id, authorized, grouped(authorized, LedgerStep.PAYMENT_AUTHORIZATION)),
            (purchase_id, settled, grouped(settled, LedgerStep.PAYMENT_SETTLEMENT)),
        )
        return [
            StoredEvent(
                originator_id=originator,
                originator_version=stored.originator_version,
                topic=stored.topic,
                state=(state.replace(self.customer, customer) if stored is initiated else state),
            )
            for originator, stored, state in states
        ]

    def serialized(self, index: int, purchase_id: uuid.UUID) -> list[StoredEvent]:
        """The same purchase the slow way: events rebuilt and mapped one by one."""
        template = self.template
        customer = _customer(index)
        events: tuple[LedgerEvent, ...] = (
            template.initiated.model_copy(
                update={
                    "originator_id": purchase_id,
                    "customer_id": customer,
                    "credit_grant_transaction_group_id": transaction_group_id(
                        purchase_id, LedgerStep.CREDIT_GRANT
                    ),
                }
            ),
            template.granted.model_copy(
                update={
                    "originator_id": wallet_id_for(
                        NAMESPACE, customer, template.initiated.currency
                    ),
                    "customer_id": customer,
                    "purchase_id": purchase_id,
                }
            ),
            template.authorized.model_copy(
                update={
                    "originator_id": purchase_id,
                    "transaction_group_id": transaction_group_id(
                        purchase_id, LedgerStep.PAYMENT_AUTHORIZATION
                    ),
                }
            ),
            template.settled.model_copy(
                update={
                    "originator_id": purchase_id,
                    "transaction_group_id": transaction_group_id(
                        purchase_id, LedgerStep.PAYMENT_SETTLEMENT
                    ),
                }
            ),
        )
        return [self.mapper.to_stored_event(event) for event in events]

    def check(self, index: int) -> None:
        purchase_id = uuid.uuid4()
        if self.purchase(index, purchase_id) != self.serialized(index, purchase_id):
            msg = "bulk-load copies no longer match the mapper's output; update bench/growth.py"
            raise RuntimeError(msg)

    def stream(self, count: int) -> Iterator[StoredEvent]:
        """The stored events of ``count`` settled purchases, four each, in lifecycle order."""
        for index in range(count):
            if index % CHECK_EVERY == 0:
                self.check(index)
            yield from self.purchase(index, uuid.uuid4())


def _customer(index: int) -> str:
    return f"stored-customer-{index}"


def _json_string(value: uuid.UUID) -> bytes:
    # A UUID's text needs no JSON escaping.
    return f'"{value}"'.encode()


def _json_pair(key: str, value: str) -> bytes:
    return json.dumps({key: value}, separators=(",", ":"))[1:-1].encode()


def _hex(originator_id: uuid.UUID | str) -> str:
    """An originator id as the library's SQLite recorder stores it."""
    return originator_id.hex if isinstance(originator_id, uuid.UUID) else originator_id


class SQLiteLoader:
    """Writes batches through the library's own SQLite connection and insert statement."""

    def __init__(self, ledger: CreditLedger) -> None:
        self.recorder = cast(SQLiteApplicationRecorder, ledger.recorder)

    def write(self, batch: Sequence[StoredEvent]) -> None:
        with self.recorder.datastore.transaction(commit=True) as cursor:
            cursor.executemany(
                self.recorder.insert_events_statement,
                [(_hex(e.originator_id), e.originator_version, e.topic, e.state) for e in batch],
            )

    def close(self) -> None:
        with sqlite3.connect(self.recorder.datastore.pool.db_name) as connection:
            # A long-running store has checkpointed its write-ahead log: don't time the load's.
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class PostgresLoader:
    """Writes batches with binary ``COPY`` into the ledger's events table."""

    def __init__(self, ledger: CreditLedger, store: Store) -> None:
        self.table = sql.SQL("{}.{}").format(
            sql.Identifier(store.postgres_schema or "public"),
            sql.Identifier(f"{ledger.name}_events"),
        )
        self.connection = postgres_connect()

    def write(self, batch: Sequence[StoredEvent]) -> None:
        copy = sql.SQL(
            "COPY {} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
        ).format(self.table)
        with self.connection.cursor() as cursor, cursor.copy(copy) as rows:
            rows.set_types(["uuid", "int8", "text", "bytea"])
            for event in batch:
                rows.write_row(
                    (event.originator_id, event.originator_version, event.topic, event.state)
                )

    def close(self) -> None:
        # Statistics as autovacuum's analyze would have gathered them on a grown store.
        self.connection.execute(sql.SQL("ANALYZE {}").format(self.table))
        self.connection.close()


class MemoryLoader:
    def __init__(self, ledger: CreditLedger) -> None:
        self.recorder = ledger.recorder

    def write(self, batch: Sequence[StoredEvent]) -> None:
        self.recorder.insert_events(batch)

    def close(self) -> None:
        """Nothing to finish in memory."""


Loader = SQLiteLoader | PostgresLoader | MemoryLoader


def loader_for(ledger: CreditLedger, store: Store) -> Loader:
    if store.backend == "postgres":
        return PostgresLoader(ledger, store)
    if store.backend == "sqlite":
        return SQLiteLoader(ledger)
    return MemoryLoader(ledger)


def fill(targets: Sequence[tuple[CreditLedger, Store]], events: int) -> None:
    """Put the same ``events`` stored events (whole purchases) into each empty store."""
    if not targets:
        return
    purchases = events // LEDGER_EVENTS_PER_LIFECYCLE
    stream = PurchaseCopies(targets[0][0].mapper).stream(purchases)
    loaders = [loader_for(ledger, store) for ledger, store in targets]
    try:
        while batch := list(islice(stream, LOAD_BATCH)):
            for loader in loaders:
                loader.write(batch)
    finally:
        for loader in loaders:
            loader.close()
    for ledger, _ in targets:
        check_loaded(ledger, purchases * LEDGER_EVENTS_PER_LIFECYCLE)


def check_loaded(ledger: CreditLedger, events: int) -> None:
    """The store holds the events, and its newest purchase reads back through the API, settled
    and with its whole credit in its customer's wallet."""
    check_event_count(ledger.recorder.max_notification_id() or 0, events, "bulk load")
    last = ledger.recorder.select_notifications(start=events, limit=1)[0]
    loaded = ledger.get_purchase(NAMESPACE, uuid.UUID(_hex(last.originator_id)))
    credits = ledger.customer_credits(NAMESPACE, loaded.customer_id, loaded.currency)
    if loaded.status != PurchaseStatus.FINAL or credits.balance != loaded.credit_amount:
        msg = (
            f"bulk load: purchase {last.originator_id} reads back as {loaded.status}, "
            f"its customer's balance {credits.balance}"
        )
        raise RuntimeError(msg)


@dataclass(frozen=True)
class Growth:
    """One backend's timed lifecycle batches on a small and on a big store."""

    backend: Backend
    small: tuple[Timing, ...]
    big: tuple[Timing, ...]


def grown_lifecycles(
    backends: Sequence[Backend],
    sizes: tuple[int, int],
    purchases: Mapping[Backend, int],
    runs: int,
) -> list[Growth]:
    """R timed batches of lifecycles on a store of each size, for each backend.

    All stores are filled first (every backend's store of one size from the same generated
    events) and stay open. Runs alternate between the small and the big store, so that machine
    noise falls on both alike; each run adds its lifecycles, a small fraction of the big store.
    """
    results: list[Growth] = []
    with ExitStack() as stack:
        stores: dict[tuple[Backend, int], tuple[CreditLedger, Store]] = {}
        for size in sizes:
            for backend in backends:
                store = stack.enter_context(fresh_store(backend))
                stores[backend, size] = (stack.enter_context(store.open_ledger()), store)
            fill([stores[backend, size] for backend in backends], size)
        for backend in backends:
            count = purchases[backend]
            ledgers = [stores[backend, size][0] for size in sizes]
            for ledger in ledgers:
                time_callers(partial(run_lifecycle, ledger), range(-warmup_for(count), 0), 1)
            timings: tuple[list[Timing], list[Timing]] = ([], [])
            for run in range(runs):
                for which in (0, 1) if run % 2 == 0 else (1, 0):
                    offset = run * count
                    seconds = time_callers(
                        partial(run_lifecycle, ledgers[which]), range(offset, offset + count), 1
                    )
                    timings[which].append(
                        Timing(
                            count,
                            LEDGER_EVENTS_PER_LIFECYCLE * count,
                            seconds,
                            commands=COMMANDS_PER_LIFECYCLE * count,
                        )
                    )
            results.append(Growth(backend, tuple(timings[0]), tuple(timings[1])))
    return results
