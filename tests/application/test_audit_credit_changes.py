"""The audit covers a credit's later life: invoices, failed payments, refunds (format 3).

Every case starts from a real export of a real store (memory, SQLite, PostgreSQL) holding the
27 events of ``tests.application.audit_support.populate_credit_changes``. Each purchase event of
this life comes with its wallet's (an ``InvoiceCreated`` with its ``GrantAdded``, a
``PaymentFailed`` that took credit back and a ``PaymentRefunded`` with their ``GrantRevoked``);
a forger who recomputes every hash (``rehash``) is refused by the replay, at a precise position.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from creditledger.application.audit.records import EVENT_TYPES_SINCE, FORMAT_VERSION
from creditledger.application.audit.state import BalanceKey
from creditledger.application.ledger import CreditLedger
from creditledger.domain.events import EVENT_CLASSES
from creditledger.domain.status import PaymentStatus, PurchaseStatus
from creditledger.infrastructure.audit.jobs import compare_with_live
from creditledger.infrastructure.audit.live import StoreLiveLedger
from tests.application.audit_support import (
    FAILING_CUSTOMER,
    INVOICE_CUSTOMER,
    REFUND_CUSTOMER,
    CreditChanges,
    edit_event,
    event_index,
    export_lines,
    populate,
    populate_credit_changes,
    rehash,
    verify_lines,
)
from tests.clock import FixedClock

EVENTS = 27


@pytest.fixture
def changes(ledger: CreditLedger, clock: FixedClock) -> CreditChanges:
    return populate_credit_changes(ledger, clock)


@pytest.fixture
def lines(ledger: CreditLedger, changes: CreditChanges, tmp_path: Path) -> list[str]:
    return export_lines(ledger, tmp_path / "export.jsonl")


def _failure(lines: list[str]) -> tuple[str, int]:
    report = verify_lines(lines)
    assert report.failure is not None, "verification passed a forged history"
    assert report.failure.position is not None
    return report.failure.code, report.failure.position


def _message(lines: list[str]) -> str:
    report = verify_lines(lines)
    assert report.failure is not None
    return report.failure.message


def _data(lines: list[str], position: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(lines[event_index(lines, position)])["data"]
    return data


def _deleted(lines: list[str], position: int) -> list[str]:
    return [line for index, line in enumerate(lines) if index != event_index(lines, position)]


def _appended(lines: list[str], item: dict[str, Any]) -> list[str]:
    """An event line added after the last one; the header's cut moves with it."""
    header = json.loads(lines[0])
    header["last_position"] = item["position"]
    return rehash([json.dumps(header), *lines[1:-1], json.dumps(item), lines[-1]])


def _balance(summary_balances: dict[BalanceKey, Decimal], customer: str, account: str) -> Decimal:
    return summary_balances.get(BalanceKey("acme", customer, "USD", account), Decimal(0))


def test_the_export_is_format_3_and_holds_every_new_event_type(lines: list[str]) -> None:
    header = json.loads(lines[0])
    assert header["format_version"] == FORMAT_VERSION == 3
    types = {json.loads(line)["type"] for line in lines[1:-1]}
    assert {"InvoiceCreated", "PaymentFailed", "PaymentRefunded", "GrantRevoked"} <= types
    assert len(lines) == EVENTS + 2


def test_every_event_type_of_the_domain_says_which_format_version_brought_it() -> None:
    # A new event type must be given a format version, or verify reads it as an older one's.
    assert {cls.TYPE.value for cls in EVENT_CLASSES.values()} == set(EVENT_TYPES_SINCE)


def test_an_untouched_export_verifies_with_what_failures_leave_owed(lines: list[str]) -> None:
    report = verify_lines(lines)
    assert report.ok, report.failure
    summary = report.summary()
    assert summary["purchases"]["by_status"] == {"final": 1, "final.payment_failed": 4}
    # I owes the 30 it consumed, F1 the 40; J (never invoiced) and F2 (nothing consumed) nothing.
    assert summary["purchases"]["failed_payments"] == 4
    assert summary["purchases"]["owed_after_failures"] == {"USD": "70.00"}
    assert summary["wallets"]["open_grants"] == 0
    assert report.currencies_balanced()
    units = {row["account"]: row["unit"] for row in summary["balances"]["totals"]}
    assert units["wash"] == units["brokerage_cash"] == "cash"
    assert units["customer_fbo"] == units["brokerage_credits"] == "credits"


def test_balances_follow_the_domains_postings_per_unit(lines: list[str]) -> None:
    report = verify_lines(lines)
    assert report.ok, report.failure
    balances = report.ledger.balances
    for customer in (INVOICE_CUSTOMER, REFUND_CUSTOMER, FAILING_CUSTOMER):
        assert _balance(balances, customer, "customer_fbo") == 0  # everything taken back
    # After a failure the open receivable is minus what was consumed (and authorized cash is
    # moved back): I consumed 30, F1 40 (its 60.12 expired first), F2 nothing.
    assert _balance(balances, INVOICE_CUSTOMER, "customer_receivable_open") == Decimal("-30.00")
    assert _balance(balances, FAILING_CUSTOMER, "customer_receivable_open") == Decimal("-40.00")
    assert _balance(balances, FAILING_CUSTOMER, "customer_receivable_authorized") == 0
    # R paid 50.06 and got back 10.00 + 35.06: the cash kept pays for the 10 credits consumed.
    assert _balance(balances, REFUND_CUSTOMER, "wash") == Decimal("-5.00")


def test_the_live_event_store_agrees_row_by_row(ledger: CreditLedger, lines: list[str]) -> None:
    report = verify_lines(lines)
    assert report.ok, report.failure
    comparison = compare_with_live(report, StoreLiveLedger(ledger))
    assert comparison.differences == []
    assert comparison.purchases == 5
    assert comparison.balances_compared


def test_the_replayed_purchases_carry_the_invoice_failure_and_refund_fields(
    lines: list[str], changes: CreditChanges
) -> None:
    report = verify_lines(lines)
    assert report.ok, report.failure
    states = report.ledger.snapshot(EVENTS).purchases
    invoiced = states[changes.i.id]
    assert (invoiced.invoice_id, invoiced.line_id) == ("inv-1", "line-1")
    assert (invoiced.status, invoiced.failure_reason) == (
        PurchaseStatus.PAYMENT_FAILED,
        "card declined",
    )
    assert invoiced.owed == Decimal("30.00")
    assert states[changes.j.id].credit_grant_transaction_group_id is None
    refunded = states[changes.r.id]
    assert (refunded.refunded, refunded.refunded_cash, refunded.refunds) == (
        Decimal("90.12"),
        Decimal("45.06"),
        2,
    )
    assert states[changes.f1.id].payment_status is PaymentStatus.FAILED


class TestAForgedInvoice:
    def test_an_invoice_moved_before_its_initiation(self, lines: list[str]) -> None:
        first, second = event_index(lines, 1), event_index(lines, 2)
        initiated, invoiced = json.loads(lines[first]), json.loads(lines[second])
        initiated["position"], invoiced["position"] = 2, 1
        lines[first], lines[second] = json.dumps(invoiced), json.dumps(initiated)
        assert _failure(rehash(lines)) == ("event_sequence_broken", 1)

    def test_an_invoice_removed_leaves_its_grant_unmatched(self, lines: list[str]) -> None:
        assert _failure(rehash(_deleted(lines, 2))) == ("grant_unmatched", 3)

    def test_an_invoices_grant_removed(self, lines: list[str]) -> None:
        assert _failure(rehash(_deleted(lines, 3))) == ("grant_missing", 2)

    def test_a_grant_at_another_time_than_the_invoice(self, lines: list[str]) -> None:
        forged = edit_event(lines, 3, data={"granted_at": _data(lines, 1)["timestamp"]})
        assert _failure(rehash(forged)) == ("grant_mismatch", 3)


class TestAForgedFailure:
    def test_consumed_and_revoked_edited_alike(self, lines: list[str]) -> None:
        # The amounts still add up to the grant; the wallet's grant consumed 30, not 20.
        forged = edit_event(lines, 5, data={"consumed": "20.00", "revoked": "80.12"})
        assert _failure(rehash(forged)) == ("failure_mismatch", 5)
        assert "20.00 was consumed, its wallet's grant says 30.00" in _message(rehash(forged))

    def test_consumed_edited_alone(self, lines: list[str]) -> None:
        forged = edit_event(lines, 5, data={"consumed": "20.00"})
        assert _failure(rehash(forged)) == ("event_sequence_broken", 5)

    def test_a_failure_of_a_closed_grant_says_another_consumption(self, lines: list[str]) -> None:
        # F1's grant expired (25) before its failure (27): the wallet no longer holds it open,
        # and still the failure must agree with what it consumed.
        forged = edit_event(lines, 27, data={"consumed": "30.00", "released": "70.12"})
        assert _failure(rehash(forged)) == ("failure_mismatch", 27)

    def test_a_failure_that_no_longer_undoes_the_authorization(self, lines: list[str]) -> None:
        forged = edit_event(lines, 27, data={"reversed_authorization": None})
        assert _failure(rehash(forged)) == ("event_sequence_broken", 27)

    def test_its_revocation_removed(self, lines: list[str]) -> None:
        assert _failure(rehash(_deleted(lines, 6))) == ("revoke_missing", 5)

    def test_its_revocation_removed_after_the_expiries_it_recorded(self, lines: list[str]) -> None:
        # F2's failure (24) records F1's due expiry (25) before its revocation (26).
        assert _failure(rehash(_deleted(lines, 26))) == ("revoke_missing", 24)

    def test_its_revocation_of_another_amount(self, lines: list[str]) -> None:
        forged = edit_event(lines, 6, data={"amount": "60.12"})
        assert _failure(rehash(forged)) == ("revoke_mismatch", 6)

    def test_a_revocation_for_a_failure_that_took_nothing_back(
        self, lines: list[str], changes: CreditChanges
    ) -> None:
        # F1's failure (27) revoked nothing: the wallet wrote nothing with it.
        revocation = json.loads(lines[event_index(lines, 26)])
        revocation["position"], revocation["version"] = 28, 6
        revocation["data"].update(purchase_id=str(changes.f1.id), amount="1.00")
        assert _failure(_appended(lines, revocation)) == ("revoke_unmatched", 28)


class TestAForgedRefund:
    def test_its_cash_amount_changed(self, lines: list[str]) -> None:
        assert _data(lines, 14)["cash_amount"] == "10.00"
        forged = edit_event(lines, 14, data={"cash_amount": "12.00"})
        assert _failure(rehash(forged)) == ("event_sequence_broken", 14)
        assert "returns the wrong amount" in _message(rehash(forged))

    def test_its_amounts_changed_alike(self, lines: list[str]) -> None:
        # 25 credits at 0.5 are 12.50: the purchase replays, its wallet took back 20.
        forged = edit_event(lines, 14, data={"amount": "25.00", "cash_amount": "12.50"})
        assert _failure(rehash(forged)) == ("revoke_mismatch", 15)

    def test_its_revocation_for_another_cause(self, lines: list[str]) -> None:
        forged = edit_event(lines, 15, data={"cause": "payment_failed"})
        assert _failure(rehash(forged)) == ("revoke_mismatch", 15)

    def test_its_revocation_removed(self, lines: list[str]) -> None:
        assert _failure(rehash(_deleted(lines, 17))) == ("revoke_missing", 16)

    def test_its_revocation_duplicated(self, lines: list[str]) -> None:
        copy = json.loads(lines[event_index(lines, 17)])
        copy["position"], copy["version"] = 28, 5
        assert _failure(_appended(lines, copy)) == ("revoke_unmatched", 28)

    def test_a_refund_beyond_what_was_paid_for(self, lines: list[str]) -> None:
        # 20 refunded first: the forger makes the second refund take back 90.12 of the 100.12.
        forged = edit_event(lines, 16, data={"amount": "90.12", "cash_amount": "45.06"})
        forged = edit_event(forged, 17, data={"amount": "90.12"})
        assert _failure(rehash(forged)) == ("refund_exceeds_remaining", 16)


class TestOlderFormats:
    """Postings are not in the file: they follow from the events, by the verifier's rules."""

    @staticmethod
    def _as_version(lines: list[str], version: int) -> list[str]:
        header = json.loads(lines[0])
        header["format_version"] = version
        return [json.dumps(header), *lines[1:]]

    def test_a_version_2_file_verifies_with_the_current_posting_rules(
        self, ledger: CreditLedger, clock: FixedClock, tmp_path: Path
    ) -> None:
        populate(ledger, clock)  # only event types format 2 knows
        lines = export_lines(ledger, tmp_path / "export.jsonl")
        current, older = verify_lines(lines), verify_lines(self._as_version(lines, 2))
        assert older.ok, older.failure
        # The same balances, units and brokerage included, and a note that says so.
        assert older.ledger.balances == current.ledger.balances
        assert any("brokerage" in account for _, _, _, account in older.ledger.balances)
        assert any("format version 2" in note for note in older.notes)
        assert not any("format version" in note for note in current.notes)
        comparison = compare_with_live(older, StoreLiveLedger(ledger))
        assert comparison.differences == []

    def test_a_version_2_file_cannot_hold_an_invoice_purchase(self, lines: list[str]) -> None:
        assert _failure(self._as_version(lines, 2)) == ("invalid_event_data", 1)

    def test_a_version_2_file_cannot_hold_the_new_event_types(
        self, ledger: CreditLedger, changes: CreditChanges, tmp_path: Path
    ) -> None:
        # From R's initiation on: external purchases only, then R's first refund at 14.
        lines = export_lines(ledger, tmp_path / "tail.jsonl", from_position=9)
        assert verify_lines(lines).ok
        assert _failure(self._as_version(lines, 2)) == ("unknown_event_type", 14)


@pytest.mark.parametrize("start", [6, 9, 21, 22, 25, 27])
def test_an_export_starting_inside_a_transaction_sets_its_halves_aside(
    ledger: CreditLedger, changes: CreditChanges, tmp_path: Path, start: int
) -> None:
    # 6 and 26 are revocations whose failures lie before the start (5, 24); 25 an expiry the
    # revocation at 26 recorded first; from 21 or 22, F2 is whole but its wallet is set aside.
    lines = export_lines(ledger, tmp_path / "tail.jsonl", from_position=start)
    report = verify_lines(lines)
    assert report.ok, report.failure
    comparison = compare_with_live(report, StoreLiveLedger(ledger))
    assert comparison.differences == []
