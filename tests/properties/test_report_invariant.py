"""How a user adds an invariant of their own: a credit report checked after every step.

The report is the user's code (here, a few lines over the ledger's public queries): credits
granted and not taken back per namespace, customer and currency, summed from purchase histories:
what ``Initiated`` (or an invoice purchase's ``InvoiceCreated``) granted, less what a failed
payment took back or released and what refunds took back. The subclass adds one
``@invariant()``: the report equals the same sum over the model's purchases, and equals what the
double-entry ledger holds for the customer in FBO (spendable) plus what left it, consumed
(customer_accrued) or forfeited (breakage).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from uuid import UUID

from hypothesis import settings
from hypothesis.stateful import invariant, run_state_machine_as_test

from creditledger.application.ledger import CreditLedger
from creditledger.application.testing import CreditPurchaseMachine, check, settings_for
from creditledger.application.testing.profiles import budget_for
from creditledger.domain.ledger import Account, balances
from creditledger.infrastructure.bootstrap import open_ledger

CustomerCurrency = tuple[str, str, str]
"""(namespace, customer, currency)"""
CREDIT_ACCOUNTS = (Account.CUSTOMER_FBO, Account.CUSTOMER_ACCRUED, Account.BREAKAGE)
"""Where granted credit is: still spendable, consumed, or forfeited (expired or voided)."""


def granted_credit_report(
    ledger: CreditLedger, purchases: Iterable[tuple[str, UUID]]
) -> dict[CustomerCurrency, Decimal]:
    """The user's report: credits granted and not taken back, per customer and currency, from
    the histories."""
    totals: dict[CustomerCurrency, Decimal] = {}
    for namespace, purchase_id in purchases:
        history = ledger.purchase_history(namespace, purchase_id)
        terms = history[0].data
        key = (namespace, terms["customer_id"], terms["currency"])
        for entry in history:
            change = Decimal(0)
            if entry.type in ("Initiated", "InvoiceCreated") and entry.data.get("granted_at"):
                change = Decimal(terms["credit_amount"])
            elif entry.type == "PaymentFailed":
                change = -Decimal(entry.data["revoked"]) - Decimal(entry.data["released"])
            elif entry.type == "PaymentRefunded":
                change = -Decimal(entry.data["amount"])
            totals[key] = totals.get(key, Decimal(0)) + change
    return {key: total for key, total in totals.items() if total}


class GrantedCreditReportMachine(CreditPurchaseMachine):
    def make_ledger(self) -> CreditLedger:
        return open_ledger("memory://", clock=self.clock, ids=self.ids)

    @invariant()
    def the_granted_credit_report_matches_the_events_and_the_ledger(self) -> None:
        purchases = self.model.purchases.values()
        report = granted_credit_report(self.ledger, [(p.namespace, p.id) for p in purchases])
        granted: dict[CustomerCurrency, Decimal] = {}
        for purchase in purchases:
            if purchase.granted_version() is None:
                continue
            state = purchase.state()
            failure = state.failure
            released = failure.released if failure is not None else Decimal(0)
            key = (purchase.namespace, purchase.customer_id, purchase.currency)
            kept = purchase.credit_amount - state.revoked - released - state.refunded
            granted[key] = granted.get(key, Decimal(0)) + kept
        granted = {key: total for key, total in granted.items() if total}
        issued: dict[CustomerCurrency, Decimal] = {}
        for (namespace, customer, currency, account), balance in balances(self.postings).items():
            if account in CREDIT_ACCOUNTS:
                key = (namespace, customer, currency)
                issued[key] = issued.get(key, Decimal(0)) + balance
        issued = {key: total for key, total in issued.items() if total}
        check(report == granted, f"report {report} != granted {granted}")
        check(issued == granted, f"FBO + accrued + breakage {issued} != granted {granted}")


def test_the_granted_credit_report_agrees_with_every_history() -> None:
    # A fifth of the in-memory budget: this invariant reads every history after every step.
    examples = max(budget_for("memory").examples // 5, 10)
    run_state_machine_as_test(
        GrantedCreditReportMachine,
        settings=settings(settings_for("memory"), max_examples=examples),
    )
