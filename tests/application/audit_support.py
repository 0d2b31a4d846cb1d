"""A small real ledger to audit, its export as lines, and the tools of someone tampering with it.

``populate`` writes the same fifteen events on every backend, in this order (position: event).
Each initiate also adds the grant to the customer's credit wallet (``GrantAdded``), in the same
transaction, after the purchase's own events of that command:

    1 acme   external    Initiated          (purchase A)
    2 acme               GrantAdded         (A, wallet of cust-a v1)
    3 globex external    Initiated          (purchase B, stays pending)
    4 globex             GrantAdded         (B, wallet of cust-b v1)
    5 acme   external    PaymentAuthorized  (A)
    6 acme   promotional Initiated          (purchase C, final at once)
    7 acme               GrantAdded         (C, wallet of cust-c v1)
    8 acme   external    PaymentSettled     (A, final)
    9 acme   external    Initiated          (purchase D, initial status settled: 3 events)
   10 acme   external    PaymentAuthorized  (D)
   11 acme   external    PaymentSettled     (D)
   12 acme               GrantAdded         (D, wallet of cust-a v2)
   13 globex external    Initiated          (purchase E)
   14 globex external    PaymentAuthorized  (E)
   15 globex             GrantAdded         (E, wallet of cust-e v1)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from eventsourcing.persistence import StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from psycopg import sql

from creditledger.application.audit.canonical import canonical_bytes, parse_json
from creditledger.application.audit.chain import GENESIS_HASH, next_hash
from creditledger.application.audit.records import Checkpoint
from creditledger.application.audit.verify import ExportVerifier, VerificationReport
from creditledger.application.ledger import CreditLedger
from creditledger.application.purchase_view import PurchaseView
from creditledger.domain.money import payment_amount
from creditledger.infrastructure.audit.jobs import export_to_file
from tests.application.builders import (
    NAMESPACE,
    authorize,
    consume,
    external_purchase,
    promotional_purchase,
    settle,
    void,
)
from tests.clock import START, FixedClock
from tests.stores import bypassing_triggers, sqlite_bypassing_triggers

EVENT_COUNT = 15


@dataclass(frozen=True)
class Purchases:
    a: PurchaseView
    b: PurchaseView
    c: PurchaseView
    d: PurchaseView
    e: PurchaseView


def populate(ledger: CreditLedger, clock: FixedClock) -> Purchases:
    """The fifteen events of the module docstring, a command a second."""

    def tick() -> None:
        clock.advance(1)

    a = ledger.initiate(external_purchase(customer_id="cust-a")).purchase
    tick()
    b = ledger.initiate(external_purchase(namespace="globex", customer_id="cust-b")).purchase
    tick()
    ledger.authorize(authorize(a.id, external_reference="psp-a"))
    tick()
    c = ledger.initiate(promotional_purchase(customer_id="cust-c", credit_amount="25")).purchase
    tick()
    ledger.settle(settle(a.id, external_reference="psp-a"))
    tick()
    d = ledger.initiate(
        external_purchase(customer_id="cust-a", credit_amount="30", initial_status="settled")
    ).purchase
    tick()
    e = ledger.initiate(
        external_purchase(namespace="globex", customer_id="cust-e", initial_status="authorized")
    ).purchase
    tick()
    return Purchases(a, b, c, d, e)


def export_lines(ledger: CreditLedger, path: Path, **options: Any) -> list[str]:
    """Export the store to ``path`` and return the file's lines."""
    export_to_file(ledger, str(path), store="test", exported_at=START, **options)
    return path.read_text(encoding="utf-8").splitlines()


def verify_lines(
    lines: list[str], checkpoints: list[Checkpoint] | None = None
) -> VerificationReport:
    verifier = ExportVerifier(checkpoints or [])
    for line in lines:
        verifier.feed(line)
    return verifier.finish()


def event_index(lines: list[str], position: int) -> int:
    """The index in ``lines`` of the event line at ``position``."""
    for index, line in enumerate(lines):
        item = json.loads(line)
        if item.get("kind") == "event" and item["position"] == position:
            return index
    msg = f"no event line at position {position}"
    raise LookupError(msg)


def rehash(lines: list[str]) -> list[str]:
    """What a careful forger does after editing events: recompute every hash and the trailer."""
    header = json.loads(lines[0])
    chain_hash = header["chain_start_hash"]
    result = [lines[0]]
    count, last = 0, None
    for line in lines[1:]:
        item = parse_json(line)
        if item.get("kind") != "event":
            continue
        item.pop("hash")
        chain_hash = next_hash(chain_hash, canonical_bytes(item))
        item["hash"] = chain_hash
        result.append(json.dumps(item))
        count, last = count + 1, item["position"]
    result.append(
        json.dumps(
            {
                "kind": "trailer",
                "event_count": count,
                "last_event_position": last,
                "final_hash": chain_hash or GENESIS_HASH,
            }
        )
    )
    return result


def without_checkpoints(lines: list[str]) -> list[str]:
    """The forger also removes the checkpoints the export carries in its header."""
    header = json.loads(lines[0])
    header["checkpoints"] = []
    return [json.dumps(header), *lines[1:]]


def edit_event(lines: list[str], position: int, **members: Any) -> list[str]:
    """Replace members of the event at ``position`` (``data`` members via ``data=``)."""
    index = event_index(lines, position)
    item = json.loads(lines[index])
    data = members.pop("data", None)
    item.update(members)
    if data:
        item["data"].update(data)
    return [*lines[:index], json.dumps(item), *lines[index + 1 :]]


def regrant(lines: list[str], initiated: int, granted: int, amount: str) -> list[str]:
    """A forger's change of a purchase's credit amount (its ``Initiated`` at ``initiated``),
    made alike in its wallet's ``GrantAdded`` (at ``granted``) so that the pair agrees, and in
    its payment's authorization (the amount the new credit costs, as the domain prices it), so
    that the purchase replays."""
    changed = edit_event(lines, initiated, data={"credit_amount": amount})
    terms = json.loads(changed[event_index(changed, initiated)])
    data = terms["data"]
    for line in changed:
        item = json.loads(line)
        if (item.get("purchase_id"), item.get("type")) == (
            terms["purchase_id"],
            "PaymentAuthorized",
        ):
            cost = payment_amount(Decimal(amount), Decimal(data["cost_basis"]), data["currency"])
            changed = edit_event(changed, item["position"], data={"amount": str(cost)})
    return edit_event(changed, granted, data={"amount": amount})


# -- tampering with the store itself -------------------------------------------------------------


def tamper_stored_event(
    ledger: CreditLedger, store_url: str, position: int, change: dict[str, Any] | None
) -> None:
    """Change the stored JSON of the event at ``position`` (or delete it, ``change=None``),
    behind the ledger's back, as someone with write access to the database could."""
    recorder = ledger.recorder
    if isinstance(recorder, POPOApplicationRecorder):
        _tamper_memory(recorder, position, change)
    elif store_url.startswith("sqlite"):
        _tamper_sqlite(Path(store_url.removeprefix("sqlite:///")), position, change)
    else:
        _tamper_postgres(store_url, position, change)


def _changed(state: bytes, change: dict[str, Any]) -> bytes:
    data = json.loads(state)
    data.update(change)
    return json.dumps(data, separators=(",", ":")).encode()


def _tamper_memory(
    recorder: POPOApplicationRecorder, position: int, change: dict[str, Any] | None
) -> None:
    # The in-memory store's log is a list indexed by position - 1.
    events: list[StoredEvent] = recorder._stored_events
    stored = events[position - 1]
    if change is None:
        del events[position - 1]
        return
    events[position - 1] = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=_changed(stored.state, change),
    )


def _tamper_sqlite(path: Path, position: int, change: dict[str, Any] | None) -> None:
    # The events table is append-only: a tamperer with the file drops its triggers first.
    with sqlite_bypassing_triggers(path) as connection:
        if change is None:
            connection.execute("DELETE FROM stored_events WHERE rowid = ?", (position,))
            return
        (state,) = connection.execute(
            "SELECT state FROM stored_events WHERE rowid = ?", (position,)
        ).fetchone()
        connection.execute(
            "UPDATE stored_events SET state = ? WHERE rowid = ?",
            (_changed(state, change), position),
        )


def _tamper_postgres(store_url: str, position: int, change: dict[str, Any] | None) -> None:
    schema = parse_qs(urlsplit(store_url).query)["schema"][0]
    table = sql.Identifier(schema, "creditledger_events")
    # The events table is append-only: only a superuser bypassing its triggers can tamper.
    with bypassing_triggers() as connection:
        if change is None:
            connection.execute(
                sql.SQL("DELETE FROM {} WHERE notification_id = %s").format(table), (position,)
            )
            return
        row = connection.execute(
            sql.SQL("SELECT state FROM {} WHERE notification_id = %s").format(table), (position,)
        ).fetchone()
        assert row is not None
        connection.execute(
            sql.SQL("UPDATE {} SET state = %s WHERE notification_id = %s").format(table),
            (_changed(bytes(row[0]), change), position),
        )


# -- a wallet that moves both ways ---------------------------------------------------------------

WALLET_CUSTOMER = "cust-w"
EXPIRES_AFTER = 10
"""Seconds from the start to grant P's expiry."""


@dataclass(frozen=True)
class WalletPurchases:
    p: PurchaseView
    """External, 100.12 credits, expiring: 30 and 50 consumed, 20.12 expired."""
    q: PurchaseView
    """Promotional, 25 credits, no expiry: 5 consumed, 20 voided."""


def populate_wallet(ledger: CreditLedger, clock: FixedClock) -> WalletPurchases:
    """One customer's wallet through every wallet event, a command a second (position: event):

    1 Initiated P         2 GrantAdded P (wallet v1)
    3 Initiated Q         4 GrantAdded Q (v2)
    5 CreditsConsumed 30 from P (v3)
    6 CreditsConsumed 50 from P (v4)
    7 GrantExpired P 20.12, effective at its expires_at (v5)
    8 CreditsConsumed 5 from Q (v6)
    9 PurchaseVoided Q 20    10 GrantVoided Q 20 (v7)
    """
    expires_at = clock.now() + timedelta(seconds=EXPIRES_AFTER)
    p = ledger.initiate(
        external_purchase(customer_id=WALLET_CUSTOMER, expires_at=expires_at)
    ).purchase
    clock.advance(1)
    q = ledger.initiate(promotional_purchase(customer_id=WALLET_CUSTOMER)).purchase
    clock.advance(1)
    ledger.consume(consume("30", customer_id=WALLET_CUSTOMER))
    clock.advance(1)
    ledger.consume(consume("50", customer_id=WALLET_CUSTOMER))
    clock.set(expires_at + timedelta(seconds=1))
    expired = ledger.expire_due(NAMESPACE, WALLET_CUSTOMER, "USD")
    assert [event.amount for event in expired] == [Decimal("20.12")]
    clock.advance(1)
    ledger.consume(consume("5", customer_id=WALLET_CUSTOMER))
    clock.advance(1)
    ledger.void(void(q.id))
    clock.advance(1)
    return WalletPurchases(p, q)
