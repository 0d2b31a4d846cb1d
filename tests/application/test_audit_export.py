"""Exports: what they hold, on every backend, and a consistent cut while writers keep writing."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

from creditledger.application.audit.chain import GENESIS_HASH
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.audit.jobs import export_log, take_checkpoint
from creditledger.infrastructure.bootstrap import open_ledger
from tests.application.audit_support import (
    EVENT_COUNT,
    event_index,
    export_lines,
    populate,
    verify_lines,
)
from tests.application.builders import authorize, external_purchase
from tests.clock import START, FixedClock
from tests.stores import sqlite_bypassing_triggers

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _events(lines: list[str]) -> list[dict[str, object]]:
    items = [json.loads(line) for line in lines]
    return [item for item in items if item["kind"] == "event"]


def test_an_empty_store_exports_a_header_and_a_trailer_that_verify(
    ledger: CreditLedger, tmp_path: Path
) -> None:
    lines = export_lines(ledger, tmp_path / "empty.jsonl")
    header, trailer = json.loads(lines[0]), json.loads(lines[-1])
    assert len(lines) == 2
    assert (header["kind"], header["first_position"], header["last_position"]) == (
        "header",
        None,
        0,
    )
    assert trailer == {
        "kind": "trailer",
        "event_count": 0,
        "last_event_position": None,
        "final_hash": GENESIS_HASH,
    }
    report = verify_lines(lines)
    assert report.ok, report.failure
    assert report.summary()["purchases"]["total"] == 0


def test_every_event_is_exported_in_commit_order_with_what_a_replay_needs(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    purchases = populate(ledger, clock)
    events = _events(export_lines(ledger, tmp_path / "export.jsonl"))
    assert [event["position"] for event in events] == list(range(1, EVENT_COUNT + 1))
    grant = events[1]  # A's grant, in the customer's credit wallet
    assert (grant["type"], grant["version"], grant["namespace"]) == ("GrantAdded", 1, "acme")
    assert "purchase_id" not in grant
    assert grant["data"]["purchase_id"] == str(purchases.a.id)  # type: ignore[index]
    second = events[4]
    assert second["purchase_id"] == str(purchases.a.id)
    assert (second["version"], second["type"], second["namespace"]) == (
        2,
        "PaymentAuthorized",
        "acme",
    )
    assert second["recorded_at"] == second["data"]["timestamp"]  # type: ignore[index]
    assert events[0]["data"]["credit_amount"] == "100.12"  # type: ignore[index]


def test_a_fresh_export_of_an_untouched_store_repeats_every_hash(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    populate(ledger, clock)
    first = export_lines(ledger, tmp_path / "first.jsonl")
    second = export_lines(ledger, tmp_path / "second.jsonl")
    assert first[1:] == second[1:]


def test_a_namespace_export_holds_whole_histories_and_says_checkpoints_cannot_be_checked(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    populate(ledger, clock)
    assert take_checkpoint(ledger, NOW) is not None
    lines = export_lines(ledger, tmp_path / "globex.jsonl", namespace="globex")
    events = _events(lines)
    assert [event["position"] for event in events] == [3, 4, 13, 14, 15]
    assert {event["namespace"] for event in events} == {"globex"}
    report = verify_lines(lines)
    assert report.ok, report.failure
    assert report.summary()["purchases"]["by_status"] == {
        "active.payment.authorized": 1,
        "active.payment.pending": 1,
    }
    assert report.checked_checkpoints == []
    assert len(report.unchecked_checkpoints) == 1
    assert "namespace" in report.unchecked_checkpoints[0].reason


def test_an_export_from_a_position_continues_the_whole_logs_chain(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    populate(ledger, clock)
    checkpoint = take_checkpoint(ledger, NOW)
    assert checkpoint is not None
    whole = export_lines(ledger, tmp_path / "whole.jsonl")
    tail = export_lines(ledger, tmp_path / "tail.jsonl", from_position=9)
    assert (
        json.loads(tail[0])["chain_start_hash"] == json.loads(whole[event_index(whole, 8)])["hash"]
    )
    assert tail[1:-1] == whole[event_index(whole, 9) : -1]
    assert json.loads(tail[-1])["final_hash"] == json.loads(whole[-1])["final_hash"]
    report = verify_lines(tail)
    assert report.ok, report.failure
    assert report.checked_checkpoints == [checkpoint]
    # D's history (positions 9 to 11) and E's (13, 14) are whole in the tail; so is cust-e's
    # wallet (15), not cust-a's (its grant of D, at 12, is its version 2).
    assert report.summary()["purchases"]["total"] == 2
    assert report.summary()["purchases"]["partial_history_events"] == 0
    assert report.summary()["wallets"] == {
        "total": 1,
        "open_grants": 1,
        "partial_histories": 1,
        "partial_history_events": 1,
    }


def test_an_export_from_a_position_sets_aside_purchases_that_began_before_it(
    ledger: CreditLedger, clock: FixedClock, tmp_path: Path
) -> None:
    populate(ledger, clock)
    report = verify_lines(export_lines(ledger, tmp_path / "tail.jsonl", from_position=8))
    assert report.ok, report.failure
    assert report.summary()["purchases"]["partial_histories"] == 1  # A, settled at position 8
    assert report.summary()["purchases"]["total"] == 2


def test_an_export_while_writers_run_is_exactly_the_log_up_to_its_cut(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    populate(ledger, clock)
    stop = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            while not stop.is_set():
                purchase = ledger.initiate(external_purchase(customer_id="writer")).purchase
                ledger.authorize(authorize(purchase.id))
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)

    def between_batches(done: int, total: int) -> None:
        # Hold the export until the writers have committed past its cut, every batch.
        del total
        while not failures and (ledger.recorder.max_notification_id() or 0) < done + 6:
            stop.wait(0.001)

    writers = [threading.Thread(target=write) for _ in range(2)]
    for writer in writers:
        writer.start()
    try:
        out = io.StringIO()
        result = export_log(
            ledger, out, store="test", exported_at=START, batch_size=3, on_progress=between_batches
        )
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert not failures
    cut = result.header.last_position
    assert (ledger.recorder.max_notification_id() or 0) > cut  # writers went on past the cut
    lines = out.getvalue().splitlines()
    stored = ledger.recorder.select_notifications(start=1, limit=cut + 100, stop=cut)
    assert [event["position"] for event in _events(lines)] == [n.id for n in stored]
    assert [event.get("purchase_id") or event["wallet_id"] for event in _events(lines)] == [
        str(n.originator_id) for n in stored
    ]
    assert verify_lines(lines).ok


def test_a_sqlite_store_id_in_another_text_form_is_exported_as_its_lowercase_hyphenated_form(
    tmp_path: Path, clock: FixedClock
) -> None:
    # The library stores a UUID as 32 lowercase hex digits; someone with the file may have written
    # it otherwise. The export names every id as str(UUID) does, whichever form the row holds.
    path = tmp_path / "ledger.sqlite"
    with open_ledger(f"sqlite:///{path}", clock=clock) as ledger:
        purchases = populate(ledger, clock)
        before = export_lines(ledger, tmp_path / "before.jsonl")
    a, b = purchases.a.id, purchases.b.id
    with sqlite_bypassing_triggers(path) as connection:
        for stored, rewritten in ((a.hex, a.hex.upper()), (b.hex, str(b))):
            connection.execute(
                "UPDATE stored_events SET originator_id = ? WHERE originator_id = ?",
                (rewritten, stored),
            )
    with open_ledger(f"sqlite:///{path}", clock=clock) as ledger:
        after = export_lines(ledger, tmp_path / "after.jsonl")
    assert {event.get("purchase_id") for event in _events(after)} >= {str(a), str(b)}
    assert after == before
