"""The state machine against a real ledger on the in-memory store: the most examples, fastest.

``HYPOTHESIS_PROFILE=thorough`` runs 10,000 histories; the ``ci`` profile 500.

Each history also ends provable by replay: whatever the machine did (purchases of every
settlement, payments, failures, refunds, voids, consumptions drawing on grants of tied
priorities, expiries and feature filters, the clock moving), the export of its log verifies
offline, and the balances verification recomputes are exactly those of the postings the live
events book. And a consumption's draw is checked against the burn-down order, not merely against
what each grant holds: each consumption that drew on two or more grants is forged to list them in
the other order (every grant still holds what is drawn, every balance still adds up, the hash
chain is recomputed), and verification must refuse it at that line.
"""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis.stateful import run_state_machine_as_test

from creditledger.application.audit.state import BalanceKey
from creditledger.application.ledger import CreditLedger
from creditledger.application.testing import CreditPurchaseMachine, settings_for
from creditledger.infrastructure.bootstrap import open_ledger
from tests.application.audit_support import edit_event, export_lines, rehash, verify_lines

_FORGERIES_PER_HISTORY = 3
"""Forged consumptions verified per history (each verification reads the whole export)."""

_forged: list[str] = []
"""The failure codes of every forged export, over the run (the test fails if there was none)."""


class InMemoryLedgerMachine(CreditPurchaseMachine):
    def make_ledger(self) -> CreditLedger:
        return open_ledger("memory://", clock=self.clock, ids=self.ids)

    def teardown(self) -> None:
        try:
            with tempfile.TemporaryDirectory() as directory:
                lines = export_lines(self.ledger, Path(directory) / "export.jsonl")
            self._verifies(lines)
            self._forged_draws_are_refused(lines)
        finally:
            super().teardown()

    def _verifies(self, lines: list[str]) -> None:
        report = verify_lines(lines)
        assert report.ok, report.failure
        booked: dict[BalanceKey, Decimal] = {}
        for posting in self.postings:
            key = BalanceKey(
                posting.namespace, posting.customer_id, posting.currency, posting.account.value
            )
            booked[key] = booked.get(key, Decimal(0)) + posting.amount
        assert report.ledger.balances == booked

    @staticmethod
    def _forged_draws_are_refused(lines: list[str]) -> None:
        draws = [
            item
            for item in map(json.loads, lines[1:-1])
            if item["type"] == "CreditsConsumed" and len(item["data"]["allocations"]) > 1
        ]
        for item in draws[:_FORGERIES_PER_HISTORY]:
            position = item["position"]
            reversed_draw = item["data"]["allocations"][::-1]
            forged = rehash(edit_event(lines, position, data={"allocations": reversed_draw}))
            report = verify_lines(forged)
            assert report.failure is not None, f"a reversed draw at {position} verified"
            assert (report.failure.code, report.failure.position) == (
                "allocation_mismatch",
                position,
            ), report.failure
            _forged.append(report.failure.code)


def test_the_ledger_in_memory_behaves_as_the_reference_model_says() -> None:
    _forged.clear()
    run_state_machine_as_test(InMemoryLedgerMachine, settings=settings_for("memory"))
    assert _forged, "no history drew on two grants: the forged draw was never tried"
