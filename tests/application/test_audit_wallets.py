"""The audit proves what a credit wallet did: a forged wallet history fails at its position.

Every case starts from a real export of a real store (memory, SQLite, PostgreSQL) holding the ten
events of ``tests.application.audit_support.populate_wallet``; the forger recomputes every hash
(``rehash``), so only the replay can tell.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.audit.jobs import verify_file
from tests.application.audit_support import (
    EVENT_COUNT,
    WalletPurchases,
    edit_event,
    event_index,
    export_lines,
    populate,
    populate_wallet,
    rehash,
    verify_lines,
)
from tests.clock import FixedClock


@pytest.fixture
def wallet(ledger: CreditLedger, clock: FixedClock) -> WalletPurchases:
    return populate_wallet(ledger, clock)


@pytest.fixture
def lines(ledger: CreditLedger, wallet: WalletPurchases, tmp_path: Path) -> list[str]:
    return export_lines(ledger, tmp_path / "export.jsonl")


def _failure(lines: list[str]) -> tuple[str, int]:
    report = verify_lines(lines)
    assert report.failure is not None, "verification passed a forged wallet history"
    assert report.failure.position is not None
    return report.failure.code, report.failure.position


def _data(lines: list[str], position: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(lines[event_index(lines, position)])["data"]
    return data


def _deleted(lines: list[str], position: int) -> list[str]:
    return [line for index, line in enumerate(lines) if index != event_index(lines, position)]


def test_an_untouched_wallet_history_verifies_and_balances(lines: list[str]) -> None:
    report = verify_lines(lines)
    assert report.ok, report.failure
    summary = report.summary()
    assert summary["wallets"] == {
        "total": 1,
        "open_grants": 0,
        "partial_histories": 0,
        "partial_history_events": 0,
    }
    totals = {row["account"]: Decimal(row["balance"]) for row in summary["balances"]["totals"]}
    # 30 + 50 + 5 consumed; 20.12 expired and 20 voided; nothing left to spend.
    assert totals["customer_accrued"] == Decimal("85.00")
    assert totals["breakage"] == Decimal("40.12")
    assert totals["customer_fbo"] == 0
    assert report.currencies_balanced()


def test_wallet_lines_name_their_wallet_and_purchase_lines_keep_their_shape(
    lines: list[str],
) -> None:
    header = json.loads(lines[0])
    assert header["format_version"] == 3
    events = [json.loads(line) for line in lines[1:-1]]
    wallet_lines = [event for event in events if "wallet_id" in event]
    assert [event["type"] for event in wallet_lines] == [
        "GrantAdded",
        "GrantAdded",
        "CreditsConsumed",
        "CreditsConsumed",
        "GrantExpired",
        "CreditsConsumed",
        "GrantVoided",
    ]
    assert {event["namespace"] for event in wallet_lines} == {"acme"}
    assert all("purchase_id" not in event for event in wallet_lines)
    assert [event["position"] for event in events] == list(range(1, 11))


class TestAForgedWalletHistory:
    def test_a_consumption_drawing_more_than_the_grant_holds(self, lines: list[str]) -> None:
        # P holds 70.12 after the first consumption; the forger draws 80 from it.
        allocation = _data(lines, 6)["allocations"][0]
        forged = edit_event(
            lines,
            6,
            data={
                "amount": "80.00",
                "allocations": [{**allocation, "amount": "80.00"}],
                "balance_after": "15.12",
            },
        )
        assert _failure(rehash(forged)) == ("insufficient_credit", 6)

    def test_a_deleted_grant_leaves_its_purchase_without_it(self, lines: list[str]) -> None:
        # Q's GrantAdded (4) removed: Q's Initiated (3) is named.
        assert _failure(rehash(_deleted(lines, 4))) == ("grant_missing", 3)

    def test_a_grant_without_its_purchase(self, lines: list[str]) -> None:
        assert _failure(rehash(_deleted(lines, 3))) == ("grant_unmatched", 4)

    def test_an_expiry_forfeiting_another_amount(self, lines: list[str]) -> None:
        assert _data(lines, 7)["amount"] == "20.12"
        forged = edit_event(lines, 7, data={"amount": "25.00"})
        assert _failure(rehash(forged)) == ("event_sequence_broken", 7)

    def test_an_expiry_at_another_time(self, lines: list[str]) -> None:
        forged = edit_event(lines, 7, data={"effective_at": "2026-01-01T12:00:09Z"})
        assert _failure(rehash(forged)) == ("event_sequence_broken", 7)

    def test_a_consumption_after_the_recorded_expiry(
        self, lines: list[str], wallet: WalletPurchases
    ) -> None:
        # The consumption at 8 drew from Q; the forger makes it draw from P, expired at 7.
        allocation = {"purchase_id": str(wallet.p.id), "amount": "5.00"}
        forged = edit_event(lines, 8, data={"allocations": [allocation]})
        code, position = _failure(rehash(forged))
        assert (code, position) == ("event_sequence_broken", 8)
        report = verify_lines(rehash(forged))
        assert report.failure is not None
        assert str(wallet.p.id) in report.failure.message

    def test_a_consumption_at_the_expiry_not_yet_recorded(self, lines: list[str]) -> None:
        # P expires at 12:00:10; a consumption then may not draw from it, recorded or not.
        moment = "2026-01-01T12:00:10Z"
        forged = edit_event(
            lines, 6, recorded_at=moment, data={"timestamp": moment, "consumed_at": moment}
        )
        assert _failure(rehash(forged)) == ("credit_grant_expired", 6)

    def test_a_grant_of_another_amount_than_its_purchase(self, lines: list[str]) -> None:
        forged = edit_event(lines, 2, data={"amount": "200.00"})
        assert _failure(rehash(forged)) == ("grant_mismatch", 2)

    def test_a_grant_without_its_purchases_expiry(self, lines: list[str]) -> None:
        forged = edit_event(lines, 2, data={"expires_at": None})
        assert _failure(rehash(forged)) == ("grant_mismatch", 2)

    def test_a_wallet_void_of_another_amount_than_the_purchases(self, lines: list[str]) -> None:
        forged = edit_event(lines, 10, data={"amount": "19.00"})
        assert _failure(rehash(forged)) == ("void_mismatch", 10)

    def test_a_purchase_void_without_the_wallets(self, lines: list[str]) -> None:
        # The wallet's void was the last event: the forger also moves the header's cut.
        forged = _deleted(lines, 10)
        header = json.loads(forged[0])
        header["last_position"] = 9
        assert _failure(rehash([json.dumps(header), *forged[1:]])) == ("void_missing", 9)

    def test_a_consumption_stating_another_balance_left(self, lines: list[str]) -> None:
        forged = edit_event(lines, 8, data={"balance_after": "21.00"})
        assert _failure(rehash(forged)) == ("balance_after_mismatch", 8)

    def test_a_consumption_drawing_from_a_later_grant_first(
        self, lines: list[str], wallet: WalletPurchases
    ) -> None:
        # The 30 at 5 came from P (expiring, so first in burn-down order); the forger takes 20 of
        # it from Q (no expiry). Every grant holds what is drawn, every balance adds up.
        p, q = str(wallet.p.id), str(wallet.q.id)
        forged = edit_event(
            lines,
            5,
            data={
                "allocations": [
                    {"purchase_id": q, "amount": "20.00"},
                    {"purchase_id": p, "amount": "10.00"},
                ]
            },
        )
        report = verify_lines(rehash(forged))
        assert report.failure is not None
        assert (report.failure.code, report.failure.position) == ("allocation_mismatch", 5)
        assert f"burn-down order draws [30.00 from {p}]" in report.failure.message

    def test_a_draw_out_of_order_is_refused_alike_in_two_processes(
        self, lines: list[str], wallet: WalletPurchases, tmp_path: Path
    ) -> None:
        # verify_file's halves replay the wallet in a child process: the child refuses, and the
        # verification in order that follows names the same line and code.
        p, q = str(wallet.p.id), str(wallet.q.id)
        draw = [{"purchase_id": q, "amount": "20.00"}, {"purchase_id": p, "amount": "10.00"}]
        forged = rehash(edit_event(lines, 5, data={"allocations": draw}))
        path = tmp_path / "forged.jsonl"
        path.write_text("\n".join(forged) + "\n", encoding="utf-8")
        report = verify_file(str(path), split=True)
        assert report.failure is not None
        assert (report.failure.code, report.failure.position) == ("allocation_mismatch", 5)
        assert report.failure == verify_lines(forged).failure

    def test_a_consumption_drawing_its_grant_in_two_parts(
        self, lines: list[str], wallet: WalletPurchases
    ) -> None:
        p = str(wallet.p.id)
        halves = [{"purchase_id": p, "amount": "15.00"}, {"purchase_id": p, "amount": "15.00"}]
        forged = edit_event(lines, 5, data={"allocations": halves})
        assert _failure(rehash(forged)) == ("allocation_mismatch", 5)

    def test_a_consumption_drawing_from_a_grant_its_feature_excludes(
        self, lines: list[str]
    ) -> None:
        # P's purchase and grant both say "reports" only: the 30 at 5 (no feature) could only
        # come from Q, which holds less, so no draw was possible.
        only_reports = {"feature_filters": ["reports"]}
        forged = edit_event(edit_event(lines, 1, data=only_reports), 2, data=only_reports)
        report = verify_lines(rehash(forged))
        assert report.failure is not None
        assert (report.failure.code, report.failure.position) == ("allocation_mismatch", 5)
        assert "the burn-down order draws nothing" in report.failure.message

    def test_the_same_draw_stated_with_other_digits_is_no_forgery(self, lines: list[str]) -> None:
        # An amount is a number: 30 and 30.00 are the same draw.
        allocation = _data(lines, 5)["allocations"][0]
        forged = edit_event(lines, 5, data={"allocations": [{**allocation, "amount": "30"}]})
        assert verify_lines(rehash(forged)).ok

    def test_a_wallet_event_of_another_customer(self, lines: list[str]) -> None:
        forged = edit_event(lines, 5, data={"customer_id": "someone-else"})
        assert _failure(rehash(forged)) == ("wallet_mismatch", 5)


class TestVersionOneFiles:
    """Exports written before wallets existed (format 1: purchase lines only) still verify."""

    @staticmethod
    def _as_version_one(lines: list[str]) -> list[str]:
        header = json.loads(lines[0])
        header["format_version"] = 1
        kept = [line for line in lines[1:-1] if '"wallet_id"' not in line]
        return rehash([json.dumps(header), *kept, lines[-1]])

    def test_a_version_one_file_verifies_without_wallets(
        self, ledger: CreditLedger, clock: FixedClock, tmp_path: Path
    ) -> None:
        populate(ledger, clock)
        lines = self._as_version_one(export_lines(ledger, tmp_path / "export.jsonl"))
        header = json.loads(lines[0])
        header["last_position"] = json.loads(lines[-2])["position"]
        lines[0] = json.dumps(header)
        report = verify_lines(lines)
        assert report.ok, report.failure
        assert report.events == EVENT_COUNT - 5  # the five GrantAdded lines are not in it
        assert report.summary()["wallets"]["total"] == 0

    def test_a_version_one_file_holding_a_wallet_line_is_refused(self, lines: list[str]) -> None:
        header = json.loads(lines[0])
        header["format_version"] = 1
        assert _failure(rehash([json.dumps(header), *lines[1:]])) == ("malformed_line", 2)
