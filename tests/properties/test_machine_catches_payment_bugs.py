"""The machine finds bugs in invoices, failed payments and refunds (issue 13): each test plants
one in the real code for the length of the test (``monkeypatch``: commands, queries and replays
alike run the mutant, as a real bug would) and expects the in-memory machine to fail on it.

Derandomized and without shrinking, like the wallet bugs (``test_machine_catches_wallet_bugs.py``,
which says why the budget is a bound with a wide margin: the examples drawn depend on what the
pytest process has imported): the point is that it fails, not how small the example gets.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

import creditledger.domain.ledger as postings_module
import creditledger.domain.purchase as purchase_module
from creditledger.application.ledger import CreditLedger
from creditledger.application.testing import CreditPurchaseMachine, InvariantViolation
from creditledger.domain import rules
from creditledger.domain.events import GrantRevoked, PaymentFailed
from creditledger.domain.ledger import Entry
from creditledger.domain.money import payment_amount
from creditledger.domain.purchase import CreditPurchase
from creditledger.domain.rules import Rule
from creditledger.domain.status import (
    Command,
    EventType,
    PurchaseStatus,
    RevocationCause,
    SettlementType,
)
from creditledger.domain.wallet import CreditWallet, WalletContext
from creditledger.infrastructure.bootstrap import open_ledger

HUNT = settings(
    max_examples=1000,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
)

Plant = Callable[[pytest.MonkeyPatch], None]


def refund_cash_rounded_per_refund(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each refund's cash rounded on its own: parts of a payment no longer add up to it."""

    def per_refund(self: CreditPurchase, amount: Decimal) -> Decimal:
        basis = self.intent.cost_basis or Decimal(0)
        return payment_amount(amount, basis, self.intent.currency)

    monkeypatch.setattr(CreditPurchase, "_refund_cash", per_refund)


def failure_without_revocation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed payment that forgets to take the unconsumed credit back from the wallet."""
    revoke = CreditWallet.revoke

    def forgetful(
        self: CreditWallet,
        purchase_id: UUID,
        amount: Decimal | None,
        cause: RevocationCause,
        context: WalletContext,
    ) -> GrantRevoked | None:
        if cause is RevocationCause.PAYMENT_FAILED:
            return None
        return revoke(self, purchase_id, amount, cause, context)

    monkeypatch.setattr(CreditWallet, "revoke", forgetful)


def settle_wins_after_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A settlement that races a failure and wins: the failed status accepts a settle."""
    rule_for = rules.rule_for  # what domain.purchase imported by name, replaced there

    def lenient(
        settlement: SettlementType, status: PurchaseStatus | None, command: Command
    ) -> Rule:
        rule = rule_for(settlement, status, command)
        if status is PurchaseStatus.PAYMENT_FAILED and command is Command.SETTLE:
            return Rule(rule.settlement, rule.status, command, events=(EventType.PAYMENT_SETTLED,))
        return rule

    monkeypatch.setattr(purchase_module, "rule_for", lenient)
    monkeypatch.setattr(CreditPurchase, "_refuse_after_failure", lambda self: None)


def failure_keeps_the_authorization(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed payment's postings that leave the authorized receivable standing (balanced: the
    group check is silent; only the model's own postings show it)."""
    fail = postings_module._fail

    def partial(event: PaymentFailed, credit_amount: Decimal) -> list[Entry]:
        return fail(event.model_copy(update={"reversed_authorization": None}), credit_amount)

    monkeypatch.setattr(postings_module, "_fail", partial)


class InMemory(CreditPurchaseMachine):
    def make_ledger(self) -> CreditLedger:
        return open_ledger("memory://", clock=self.clock, ids=self.ids)


@pytest.mark.parametrize(
    "plant",
    [
        refund_cash_rounded_per_refund,
        failure_without_revocation,
        settle_wins_after_a_failure,
        failure_keeps_the_authorization,
    ],
)
def test_the_machine_finds_a_planted_payment_bug(
    plant: Plant, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant(monkeypatch)
    # Rounding each refund on its own shows only when two refunds of one payment both round
    # (odd cents at a cost basis of 0.5, say): rarer than the other bugs, so a longer hunt. Found
    # within 393 examples in each of 17 import orders and within 673 in each of 30 random seeds
    # (before ``refund_a_settled_payment`` drew accepted parts only, one order took 1,974: over
    # the budget of 1,500 it had then).
    hunt = settings(HUNT, max_examples=3000) if plant is refund_cash_rounded_per_refund else HUNT
    with pytest.raises(InvariantViolation):
        run_state_machine_as_test(InMemory, settings=hunt)
