"""The state machine against a real ledger on the in-memory store: the most examples, fastest.

``HYPOTHESIS_PROFILE=thorough`` runs 10,000 histories; the ``ci`` profile 500.
"""

from __future__ import annotations

from hypothesis.stateful import run_state_machine_as_test

from creditledger.application.ledger import CreditLedger
from creditledger.application.testing import CreditPurchaseMachine, settings_for
from creditledger.infrastructure.bootstrap import open_ledger


class InMemoryLedgerMachine(CreditPurchaseMachine):
    def make_ledger(self) -> CreditLedger:
        return open_ledger("memory://", clock=self.clock, ids=self.ids)


def test_the_ledger_in_memory_behaves_as_the_reference_model_says() -> None:
    run_state_machine_as_test(InMemoryLedgerMachine, settings=settings_for("memory"))
