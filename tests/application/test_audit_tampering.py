"""Tampering with an export, or with the store behind it, fails verification at its position.

Every case starts from a real export of a real store (memory, SQLite, PostgreSQL) holding the
fifteen events listed in ``tests.application.audit_support``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from creditledger.application.audit.findings import VerificationFailedError
from creditledger.application.audit.records import Checkpoint
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.audit.jobs import take_checkpoint
from tests.application.audit_support import (
    EVENT_COUNT,
    edit_event,
    event_index,
    export_lines,
    populate,
    regrant,
    rehash,
    tamper_stored_event,
    verify_lines,
    without_checkpoints,
)
from tests.clock import FixedClock

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def lines(ledger: CreditLedger, clock: FixedClock, tmp_path: Path) -> list[str]:
    populate(ledger, clock)
    return export_lines(ledger, tmp_path / "export.jsonl")


def _failure(lines: list[str], checkpoints: list[Checkpoint] | None = None) -> tuple[str, int]:
    report = verify_lines(lines, checkpoints)
    assert report.failure is not None, "verification passed a tampered export"
    assert report.failure.position is not None
    return report.failure.code, report.failure.position


def test_an_untouched_export_passes(lines: list[str]) -> None:
    report = verify_lines(lines)
    assert report.ok, report.failure
    assert report.events == EVENT_COUNT
    assert report.summary()["purchases"]["by_status"] == {
        "active.payment.authorized": 1,
        "active.payment.pending": 1,
        "final": 3,
    }
    assert report.currencies_balanced()


class TestEditingTheFile:
    def test_changing_one_byte_of_an_events_data_fails_at_that_event(
        self, lines: list[str]
    ) -> None:
        index = event_index(lines, 9)
        assert '"credit_amount":"30.00"' in lines[index]
        lines[index] = lines[index].replace('"credit_amount":"30.00"', '"credit_amount":"80.00"')
        assert _failure(lines) == ("hash_mismatch", 9)

    def test_a_lone_surrogate_in_a_string_is_a_malformed_line(self, lines: list[str]) -> None:
        # JSON escapes one, the standard parser reads it; it has no UTF-8 bytes to hash (this
        # raised UnicodeEncodeError out of verification, found by test_audit_trusted_payments).
        index = event_index(lines, 10)
        lines[index] = lines[index].replace(
            '"external_reference":null', '"external_reference":"\\ud800"'
        )
        assert '"\\ud800"' in lines[index]
        assert _failure(lines) == ("malformed_line", 10)

    def test_changing_an_events_type_fails_at_that_event(self, lines: list[str]) -> None:
        index = event_index(lines, 10)
        lines[index] = lines[index].replace('"type":"PaymentAuthorized"', '"type":"PaymentSettled"')
        assert _failure(lines) == ("hash_mismatch", 10)

    def test_deleting_an_event_fails_at_the_event_after_it(self, lines: list[str]) -> None:
        del lines[event_index(lines, 6)]
        assert _failure(lines) == ("hash_mismatch", 7)

    def test_inserting_an_event_fails_at_the_inserted_line(self, lines: list[str]) -> None:
        copied = lines[event_index(lines, 3)]
        lines.insert(event_index(lines, 11) + 1, copied)
        report = verify_lines(lines)
        assert report.failure is not None
        assert (report.failure.code, report.failure.position) == ("hash_mismatch", 3)
        assert report.failure.line == event_index(lines, 11) + 2  # 1-based: the inserted line

    def test_swapping_two_events_fails_at_the_first_line_out_of_place(
        self, lines: list[str]
    ) -> None:
        fifth, sixth = event_index(lines, 5), event_index(lines, 6)
        lines[fifth], lines[sixth] = lines[sixth], lines[fifth]
        assert _failure(lines) == ("hash_mismatch", 6)

    def test_truncating_the_export_after_a_checkpoint_fails_there(
        self, ledger: CreditLedger, clock: FixedClock, tmp_path: Path
    ) -> None:
        populate(ledger, clock)
        checkpoint = take_checkpoint(ledger, NOW)
        assert checkpoint is not None
        populate(ledger, clock)
        lines = export_lines(ledger, tmp_path / "export.jsonl")
        truncated = lines[: event_index(lines, checkpoint.position) + 1]
        assert _failure(truncated) == ("truncated", checkpoint.position)

    def test_truncating_and_writing_a_matching_trailer_still_fails(self, lines: list[str]) -> None:
        # The header's cut is always an event: an export that stops short of it lost its tail
        # (here also purchase D's GrantAdded, at 12: the truncation is what is reported).
        assert _failure(rehash(lines[: event_index(lines, 11) + 1])) == ("truncated", 11)

    def test_a_line_that_is_not_json_fails_after_the_last_good_position(
        self, lines: list[str]
    ) -> None:
        index = event_index(lines, 8)
        lines[index] = lines[index][:40]
        assert _failure(lines) == ("malformed_line", 7)


class TestForgingAConsistentChain:
    """A forger who also recomputes every hash is caught by the replay or by checkpoints."""

    def test_deleting_an_event_in_the_middle_of_a_purchase_is_a_version_gap(
        self, lines: list[str]
    ) -> None:
        del lines[event_index(lines, 10)]  # purchase D's authorization: its settlement follows
        assert _failure(rehash(lines)) == ("event_sequence_broken", 11)

    def test_swapping_an_authorization_and_its_settlement_is_refused_by_the_purchase(
        self, lines: list[str]
    ) -> None:
        tenth, eleventh = event_index(lines, 10), event_index(lines, 11)
        authorized, settled = json.loads(lines[tenth]), json.loads(lines[eleventh])
        authorized["position"], settled["position"] = 11, 10
        lines[tenth], lines[eleventh] = json.dumps(settled), json.dumps(authorized)
        assert _failure(rehash(lines)) == ("event_sequence_broken", 10)

    def test_changing_an_amount_is_caught_by_the_checkpoint_in_the_export(
        self, ledger: CreditLedger, clock: FixedClock, tmp_path: Path
    ) -> None:
        populate(ledger, clock)
        checkpoint = take_checkpoint(ledger, NOW)
        assert checkpoint is not None
        lines = export_lines(ledger, tmp_path / "export.jsonl")
        forged = rehash(regrant(lines, 9, 12, "80.00"))
        assert _failure(forged) == ("checkpoint_mismatch", checkpoint.position)

    def test_removing_the_exports_checkpoints_is_caught_by_the_auditors_own_copy(
        self, ledger: CreditLedger, clock: FixedClock, tmp_path: Path
    ) -> None:
        populate(ledger, clock)
        checkpoint = take_checkpoint(ledger, NOW)
        assert checkpoint is not None
        lines = export_lines(ledger, tmp_path / "export.jsonl")
        forged = without_checkpoints(rehash(regrant(lines, 9, 12, "80.00")))
        assert verify_lines(forged).ok  # nothing in the file itself gives it away...
        assert _failure(forged, [checkpoint]) == ("checkpoint_mismatch", checkpoint.position)

    def test_a_second_authorization_of_one_purchase_is_refused_by_the_replay(
        self, lines: list[str]
    ) -> None:
        forged = edit_event(lines, 11, type="PaymentAuthorized")
        item = json.loads(forged[event_index(forged, 11)])
        item["data"]["amount"] = "15.00"
        forged[event_index(forged, 11)] = json.dumps(item)
        assert _failure(rehash(forged)) == ("payment_already_authorized", 11)


class TestTamperingWithTheStore:
    """Someone edits the database itself; a fresh export is made afterwards."""

    @pytest.mark.parametrize(
        "tampers",
        [
            # A careful tamperer changes the purchase and its wallet's grant alike (else the
            # replay already refuses the pair: see the tests below).
            pytest.param(
                [(3, {"credit_amount": "999.00"}), (4, {"amount": "999.00"})],
                id="an amount changed",
            ),
            # The wallet's event first: on the in-memory store a deletion moves later events down.
            pytest.param([(4, None), (3, None)], id="an event deleted"),
        ],
    )
    def test_a_re_export_fails_at_the_checkpoint_after_the_change(
        self,
        ledger: CreditLedger,
        clock: FixedClock,
        store_url: str,
        tmp_path: Path,
        tampers: list[tuple[int, dict[str, str] | None]],
    ) -> None:
        populate(ledger, clock)
        checkpoint = take_checkpoint(ledger, NOW)
        assert checkpoint is not None
        assert verify_lines(export_lines(ledger, tmp_path / "before.jsonl")).ok
        for position, change in tampers:  # purchase B's only event and its grant
            tamper_stored_event(ledger, store_url, position, change)
        lines = export_lines(ledger, tmp_path / "after.jsonl")
        code, position = _failure(lines)
        assert position == checkpoint.position
        assert code in {"checkpoint_mismatch", "checkpoint_beyond_log"}

    @pytest.mark.parametrize(
        "case",
        [
            pytest.param(({"credit_amount": "999.00"}, "grant_mismatch"), id="amount changed"),
            pytest.param((None, "grant_unmatched"), id="Initiated deleted"),
        ],
    )
    def test_a_purchase_changed_without_its_grant_is_refused_by_the_replay(
        self,
        ledger: CreditLedger,
        clock: FixedClock,
        store_url: str,
        tmp_path: Path,
        case: tuple[dict[str, str] | None, str],
    ) -> None:
        change, expected = case
        populate(ledger, clock)
        tamper_stored_event(ledger, store_url, 3, change)  # purchase B's Initiated alone
        code, position = _failure(export_lines(ledger, tmp_path / "after.jsonl"))
        # B's grant, at 4, is named; on the in-memory store a deletion moved it down to 3.
        grant_position = 3 if change is None and ledger.recorder.max_notification_id() == 14 else 4
        assert (code, position) == (expected, grant_position)

    def test_no_new_checkpoint_is_recorded_over_a_changed_log(
        self, ledger: CreditLedger, clock: FixedClock, store_url: str
    ) -> None:
        populate(ledger, clock)
        checkpoint = take_checkpoint(ledger, NOW)
        assert checkpoint is not None
        tamper_stored_event(ledger, store_url, 5, {"amount": "1.00"})  # A's authorization
        with pytest.raises(VerificationFailedError) as raised:
            take_checkpoint(ledger, NOW)
        assert raised.value.finding.code == "checkpoint_mismatch"
        assert raised.value.finding.position == checkpoint.position
