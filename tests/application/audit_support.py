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
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from psycopg import sql

from creditledger.application.audit.canonical import canonical_bytes, parse_json
from creditledger.application.audit.chain import GENESIS_HASH, next_hash
from creditledger.application.audit.records import Checkpoint
from creditledger.application.audit.verify import ExportVerifier, VerificationReport
from creditledger.application.commands import (
    CreateInvoice,
    FailPayment,
    RefundPayment,
    SettlementInput,
)
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


# -- invoices, failed payments and refunds (export format 3) --------------------------------------

INVOICE_CUSTOMER = "cust-i"
REFUND_CUSTOMER = "cust-r"
FAILING_CUSTOMER = "cust-f"


@dataclass(frozen=True)
class CreditChanges:
    i: PurchaseView
    """Invoice, 100.12 credits: invoiced, 30 consumed, payment failed (70.12 revoked)."""
    j: PurchaseView
    """Invoice, failed before its invoice existed: nothing granted, nothing owed."""
    r: PurchaseView
    """External, settled at once: 10 consumed, refunded 20 then the remaining 70.12."""
    f1: PurchaseView
    """External, authorized at once, expiring: 40 consumed, expired (60.12), payment failed."""
    f2: PurchaseView
    """External, pending, same wallet as f1: payment failed after f1's expiry was due."""


def populate_credit_changes(ledger: CreditLedger, clock: FixedClock) -> CreditChanges:
    """Every event of the credit's later life, a command a second (position: event):

     1 Initiated I (invoice)       2 InvoiceCreated I        3 GrantAdded I (cust-i v1)
     4 CreditsConsumed 30 (v2)
     5 PaymentFailed I (revoked 70.12, consumed 30)          6 GrantRevoked I 70.12 (v3)
     7 Initiated J (invoice)       8 PaymentFailed J (nothing granted: no wallet event)
     9 Initiated R  10 PaymentAuthorized R  11 PaymentSettled R  12 GrantAdded R (cust-r v1)
    13 CreditsConsumed 10 (v2)
    14 PaymentRefunded R 20 (cash 10.00)                     15 GrantRevoked R 20 (v3)
    16 PaymentRefunded R 70.12 (cash 35.06)                  17 GrantRevoked R 70.12 (v4)
    18 Initiated F1  19 PaymentAuthorized F1  20 GrantAdded F1 (cust-f v1)
    21 Initiated F2  22 GrantAdded F2 (v2)
    23 CreditsConsumed 40 from F1 (v3)
    24 PaymentFailed F2 (revoked 100.12)   25 GrantExpired F1 60.12 (v4, recorded by the
       revocation)                         26 GrantRevoked F2 100.12 (v5)
    27 PaymentFailed F1 (revoked 0, released 60.12, consumed 40: no wallet event)
    """

    def tick() -> None:
        clock.advance(1)

    invoice = SettlementInput(type="invoice")
    i = ledger.initiate(external_purchase(customer_id=INVOICE_CUSTOMER, settlement=invoice))
    tick()
    ledger.create_invoice(create_invoice(i.purchase.id))
    tick()
    ledger.consume(consume("30", customer_id=INVOICE_CUSTOMER))
    tick()
    ledger.fail_payment(fail_payment(i.purchase.id))
    tick()
    j = ledger.initiate(external_purchase(customer_id=INVOICE_CUSTOMER, settlement=invoice))
    tick()
    ledger.fail_payment(fail_payment(j.purchase.id, reason="invoice cancelled"))
    tick()
    r = ledger.initiate(external_purchase(customer_id=REFUND_CUSTOMER, initial_status="settled"))
    tick()
    ledger.consume(consume("10", customer_id=REFUND_CUSTOMER))
    tick()
    ledger.refund(refund(r.purchase.id, "20"))
    tick()
    ledger.refund(refund(r.purchase.id))
    tick()
    expires_at = clock.now() + timedelta(seconds=EXPIRES_AFTER)
    f1 = ledger.initiate(
        external_purchase(
            customer_id=FAILING_CUSTOMER, initial_status="authorized", expires_at=expires_at
        )
    )
    tick()
    f2 = ledger.initiate(external_purchase(customer_id=FAILING_CUSTOMER))
    tick()
    ledger.consume(consume("40", customer_id=FAILING_CUSTOMER))
    clock.set(expires_at + timedelta(seconds=1))
    ledger.fail_payment(fail_payment(f2.purchase.id))
    tick()
    ledger.fail_payment(fail_payment(f1.purchase.id))
    tick()
    return CreditChanges(
        ledger.get_purchase(NAMESPACE, i.purchase.id),
        ledger.get_purchase(NAMESPACE, j.purchase.id),
        ledger.get_purchase(NAMESPACE, r.purchase.id),
        ledger.get_purchase(NAMESPACE, f1.purchase.id),
        ledger.get_purchase(NAMESPACE, f2.purchase.id),
    )


def create_invoice(purchase_id: UUID, namespace: str = NAMESPACE) -> CreateInvoice:
    return CreateInvoice(
        namespace=namespace, purchase_id=purchase_id, invoice_id="inv-1", line_id="line-1"
    )


def fail_payment(
    purchase_id: UUID, reason: str = "card declined", namespace: str = NAMESPACE
) -> FailPayment:
    return FailPayment(namespace=namespace, purchase_id=purchase_id, reason=reason)


def refund(
    purchase_id: UUID, amount: str | None = None, namespace: str = NAMESPACE
) -> RefundPayment:
    return RefundPayment.model_validate(
        {"namespace": namespace, "purchase_id": purchase_id, "amount": amount}
    )
