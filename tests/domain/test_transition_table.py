"""Every row of the transition table, allowed and refused, on the table and on the aggregate.

``EXPECTED`` is the table written out by hand from the issue (invoice settlement, payment
failure, refunds): for every status a purchase of each settlement type can rest in, what each
command does. It is checked against ``rule_for`` (the data) and against ``CreditPurchase`` (the
code that follows the data), so a row changed in either place, or a row added without its
expectation, fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from uuid import uuid4

import pytest

from creditledger.domain.errors import STATE_ERRORS, LedgerError, ValidationFailedError
from creditledger.domain.events import Initiated, InvoiceCreated
from creditledger.domain.purchase import CreditPurchase
from creditledger.domain.rules import RULES, initiation_plan, rule_for
from creditledger.domain.status import (
    RESTING_STATUSES,
    Command,
    EventType,
    InitialPaymentStatus,
    PurchaseStatus,
    SettlementType,
)
from tests.domain.purchases import AT_NOW, intent, purchase_in, snapshot, whole_grant

EXTERNAL = SettlementType.EXTERNAL
PROMOTIONAL = SettlementType.PROMOTIONAL
INVOICE = SettlementType.INVOICE
CREATED = PurchaseStatus.CREATED
PENDING = PurchaseStatus.PAYMENT_PENDING
AUTHORIZED = PurchaseStatus.PAYMENT_AUTHORIZED
FINAL = PurchaseStatus.FINAL
FAILED = PurchaseStatus.PAYMENT_FAILED

AUTHORIZE = (EventType.PAYMENT_AUTHORIZED,)
SETTLE = (EventType.PAYMENT_SETTLED,)
VOID = (EventType.PURCHASE_VOIDED,)
FAIL = (EventType.PAYMENT_FAILED,)
REFUND = (EventType.PAYMENT_REFUNDED,)
INVOICE_CREATED = (EventType.INVOICE_CREATED,)

Outcome = str | tuple[tuple[EventType, ...], PurchaseStatus]
"""An error code, or the events recorded (in order) and the status the purchase rests in."""

ALREADY_FAILED: dict[Command, Outcome] = dict.fromkeys(
    (
        Command.INVOICE_CREATED,
        Command.AUTHORIZE,
        Command.SETTLE,
        Command.VOID,
        Command.FAIL,
        Command.REFUND,
    ),
    "payment_already_failed",
)

EXPECTED: dict[tuple[SettlementType, PurchaseStatus], dict[Command, Outcome]] = {
    (EXTERNAL, PENDING): {
        Command.INVOICE_CREATED: "invalid_transition",
        Command.AUTHORIZE: (AUTHORIZE, AUTHORIZED),
        Command.SETTLE: (AUTHORIZE + SETTLE, FINAL),
        Command.VOID: (VOID, PENDING),
        Command.FAIL: (FAIL, FAILED),
        Command.REFUND: "payment_not_settled",
    },
    (EXTERNAL, AUTHORIZED): {
        Command.INVOICE_CREATED: "invalid_transition",
        Command.AUTHORIZE: "payment_already_authorized",
        Command.SETTLE: (SETTLE, FINAL),
        Command.VOID: (VOID, AUTHORIZED),
        Command.FAIL: (FAIL, FAILED),
        Command.REFUND: "payment_not_settled",
    },
    (EXTERNAL, FINAL): {
        Command.INVOICE_CREATED: "invalid_transition",
        Command.AUTHORIZE: "payment_already_authorized",
        Command.SETTLE: "payment_already_settled",
        Command.VOID: (VOID, FINAL),
        Command.FAIL: "payment_already_settled",
        Command.REFUND: (REFUND, FINAL),
    },
    (EXTERNAL, FAILED): ALREADY_FAILED,
    (PROMOTIONAL, FINAL): {
        Command.INVOICE_CREATED: "invalid_transition",
        Command.AUTHORIZE: "invalid_transition",
        Command.SETTLE: "invalid_transition",
        Command.VOID: (VOID, FINAL),
        Command.FAIL: "invalid_transition",
        Command.REFUND: "invalid_transition",
    },
    (INVOICE, CREATED): {
        Command.INVOICE_CREATED: (INVOICE_CREATED, PENDING),
        Command.AUTHORIZE: "invoice_not_created",
        Command.SETTLE: "invoice_not_created",
        Command.VOID: "credits_not_granted",
        Command.FAIL: (FAIL, FAILED),
        Command.REFUND: "payment_not_settled",
    },
    (INVOICE, PENDING): {
        Command.INVOICE_CREATED: "invoice_already_created",
        Command.AUTHORIZE: (AUTHORIZE, AUTHORIZED),
        # No direct-paid shortcut for invoices: settle needs the authorization first.
        Command.SETTLE: "cannot_settle_not_authorized_payment",
        Command.VOID: (VOID, PENDING),
        Command.FAIL: (FAIL, FAILED),
        Command.REFUND: "payment_not_settled",
    },
    (INVOICE, AUTHORIZED): {
        Command.INVOICE_CREATED: "invoice_already_created",
        Command.AUTHORIZE: "payment_already_authorized",
        Command.SETTLE: (SETTLE, FINAL),
        Command.VOID: (VOID, AUTHORIZED),
        Command.FAIL: (FAIL, FAILED),
        Command.REFUND: "payment_not_settled",
    },
    (INVOICE, FINAL): {
        Command.INVOICE_CREATED: "invoice_already_created",
        Command.AUTHORIZE: "payment_already_authorized",
        Command.SETTLE: "payment_already_settled",
        Command.VOID: (VOID, FINAL),
        Command.FAIL: "payment_already_settled",
        Command.REFUND: (REFUND, FINAL),
    },
    (INVOICE, FAILED): ALREADY_FAILED,
}

CELLS = [
    (settlement, status, command, outcome)
    for (settlement, status), row in EXPECTED.items()
    for command, outcome in row.items()
]


def _cell_id(cell: tuple[SettlementType, PurchaseStatus, Command, Outcome]) -> str:
    settlement, status, command, _ = cell
    return f"{settlement.value}-{status.value}-{command.value}"


def run(purchase: CreditPurchase, command: Command) -> None:
    """Send ``command`` to the purchase, with what its wallet would say of an untouched grant."""
    remaining = purchase.intent.credit_amount - purchase.refunded
    actions: dict[Command, Callable[[], None]] = {
        Command.INVOICE_CREATED: lambda: purchase.create_invoice("inv-2", "line-2", AT_NOW),
        Command.AUTHORIZE: lambda: purchase.authorize_payment(AT_NOW),
        Command.SETTLE: lambda: purchase.settle_payment(AT_NOW),
        Command.VOID: lambda: purchase.void(remaining, AT_NOW),
        Command.FAIL: lambda: purchase.fail_payment(whole_grant(purchase), "declined", AT_NOW),
        Command.REFUND: lambda: purchase.refund(None, remaining, AT_NOW, None),
    }
    actions[command]()


@pytest.mark.parametrize("cell", CELLS, ids=[_cell_id(cell) for cell in CELLS])
def test_the_table_says_what_the_issue_says(
    cell: tuple[SettlementType, PurchaseStatus, Command, Outcome],
) -> None:
    settlement, status, command, outcome = cell

    rule = rule_for(settlement, status, command)

    if isinstance(outcome, str):
        assert (rule.error, rule.events) == (outcome, ())
        # Every code the table names is a typed error with exactly that code.
        assert STATE_ERRORS[outcome].code == outcome
    else:
        events, target = outcome
        assert (rule.error, rule.events, rule.target) == (None, events, target)


@pytest.mark.parametrize("cell", CELLS, ids=[_cell_id(cell) for cell in CELLS])
def test_the_aggregate_does_what_the_table_says(
    cell: tuple[SettlementType, PurchaseStatus, Command, Outcome],
) -> None:
    settlement, status, command, outcome = cell
    purchase = purchase_in(settlement, status)
    before, version = snapshot(purchase), purchase.version

    if isinstance(outcome, str):
        with pytest.raises(LedgerError) as refused:
            run(purchase, command)
        assert refused.value.code == outcome
        assert purchase.collect_events() == []
        assert snapshot(purchase) == before
    else:
        events, target = outcome
        run(purchase, command)
        recorded = purchase.collect_events()
        assert tuple(event.TYPE for event in recorded) == events
        assert [event.originator_version for event in recorded] == [
            version + n for n in range(1, len(events) + 1)
        ]
        assert purchase.status is target


def test_every_row_of_a_resting_status_has_its_expectation_here() -> None:
    rows = {
        (rule.settlement, rule.status, rule.command)
        for rule in RULES
        if rule.status is not None and rule.command is not Command.INITIATE
    }
    expected = {(settlement, status, command) for settlement, status, command, _ in CELLS}
    assert rows <= expected
    # Each status a purchase can rest in is covered, for each settlement type that reaches it.
    assert {status for _, status in EXPECTED} == set(RESTING_STATUSES)


class TestInitiation:
    @pytest.mark.parametrize(
        ("settlement", "initial", "events", "target"),
        [
            (EXTERNAL, None, (EventType.INITIATED,), PENDING),
            (
                EXTERNAL,
                InitialPaymentStatus.AUTHORIZED,
                (EventType.INITIATED, EventType.PAYMENT_AUTHORIZED),
                AUTHORIZED,
            ),
            (
                EXTERNAL,
                InitialPaymentStatus.SETTLED,
                (EventType.INITIATED, EventType.PAYMENT_AUTHORIZED, EventType.PAYMENT_SETTLED),
                FINAL,
            ),
            (PROMOTIONAL, None, (EventType.INITIATED,), FINAL),
            # An invoice purchase waits, nothing granted, until its invoice exists.
            (INVOICE, None, (EventType.INITIATED,), CREATED),
        ],
    )
    def test_initiating_records_the_plans_events_and_rests_in_its_status(
        self,
        settlement: SettlementType,
        initial: InitialPaymentStatus | None,
        events: tuple[EventType, ...],
        target: PurchaseStatus,
    ) -> None:
        plan = initiation_plan(settlement, initial)
        assert tuple(event for rule in plan for event in rule.events) == events
        assert plan[-1].target is target
        overrides: dict[str, object] = {"settlement_type": settlement.value}
        if initial is not None:
            overrides["initial_status"] = initial.value

        purchase = CreditPurchase.initiate(uuid4(), intent(**overrides), AT_NOW)

        assert tuple(event.TYPE for event in purchase.collect_events()) == events
        assert purchase.status is target

    def test_an_invoice_purchase_grants_nothing_until_its_invoice_exists(self) -> None:
        purchase = CreditPurchase.initiate(uuid4(), intent(settlement_type="invoice"), AT_NOW)
        (initiated,) = purchase.collect_events()
        assert isinstance(initiated, Initiated)
        assert initiated.credit_grant_transaction_group_id is None
        assert initiated.granted_at is None
        assert purchase.granted is None
        # The payment amount is known from the start: the invoice line bills it.
        assert purchase.payment_amount == Decimal("50.00")

        purchase.create_invoice("inv-1", "line-1", AT_NOW)

        (invoiced,) = purchase.collect_events()
        assert isinstance(invoiced, InvoiceCreated)
        assert (invoiced.invoice_id, invoiced.line_id) == ("inv-1", "line-1")
        assert purchase.granted == (invoiced.credit_grant_transaction_group_id, invoiced.granted_at)

    def test_an_invoice_purchase_has_no_initial_payment_status(self) -> None:
        with pytest.raises(ValidationFailedError) as refused:
            intent(settlement_type="invoice", initial_status="settled")
        assert refused.value.codes == {"invalid_initial_status"}
