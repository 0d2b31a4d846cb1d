"""The postings of each lifecycle step, in credit and cash units (credit-lifecycle-design §7).

Credits count at face value (FBO, the open receivable, accrued, breakage, brokerage_credits); cash
counts the money the payment moves (the authorized receivable, wash, brokerage_cash). Every
transaction group sums to zero in each unit; a failure leaves exactly what was consumed owed; the
wash account holds exactly the cash the provider moved.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from decimal import Decimal
from uuid import UUID

import pytest

from creditledger.domain.ledger import Account, Posting, postings_for, unbalanced_groups
from creditledger.domain.status import Unit
from tests.domain.purchases import NOW, Lifecycle

FBO = Account.CUSTOMER_FBO
OPEN = Account.CUSTOMER_RECEIVABLE_OPEN
AUTHORIZED = Account.CUSTOMER_RECEIVABLE_AUTHORIZED
WASH = Account.WASH
ACCRUED = Account.CUSTOMER_ACCRUED
BREAKAGE = Account.BREAKAGE
CREDITS = Account.BROKERAGE_CREDITS
CASH = Account.BROKERAGE_CASH


def entries(postings: list[Posting]) -> Counter[tuple[Account, Decimal]]:
    return Counter((posting.account, posting.amount) for posting in postings)


def booked(lifecycle: Lifecycle, version: int) -> Counter[tuple[Account, Decimal]]:
    """The entries the purchase's event of this version booked."""
    (event,) = [e for e in lifecycle.purchase_events if e.originator_version == version]
    return entries(postings_for(lifecycle.initiated, event))


def sums_per_group_and_unit(postings: list[Posting]) -> dict[tuple[UUID, Unit], Decimal]:
    """An independent check of ``unbalanced_groups``: each group's sum in each unit."""
    sums: dict[tuple[UUID, Unit], Decimal] = {}
    for posting in postings:
        unit = Unit.CASH if posting.account in (AUTHORIZED, WASH, CASH) else Unit.CREDITS
        key = (posting.transaction_group_id, unit)
        sums[key] = sums.get(key, Decimal(0)) + posting.amount
    return sums


def balanced(lifecycle: Lifecycle) -> None:
    postings = lifecycle.postings()
    assert unbalanced_groups(postings) == {}
    assert set(sums_per_group_and_unit(postings).values()) <= {Decimal(0)}
    assert all(posting.amount != 0 for posting in postings)  # zero entries are dropped


def test_each_account_counts_one_unit() -> None:
    assert {account for account in Account if account.unit is Unit.CASH} == {
        AUTHORIZED,
        WASH,
        CASH,
    }
    assert {account for account in Account if account.unit is Unit.CREDITS} == {
        FBO,
        OPEN,
        ACCRUED,
        BREAKAGE,
        CREDITS,
    }


def test_unbalanced_groups_checks_each_unit_on_its_own() -> None:
    lifecycle = Lifecycle.start()
    issued, received = lifecycle.postings()
    assert (issued.account, received.account) == (FBO, OPEN)
    # 100 credits against 100 of cash: zero only if units were (wrongly) added together.
    forged = [issued, replace(received, account=AUTHORIZED)]
    assert unbalanced_groups(forged) == {issued.transaction_group_id: Decimal(100)}


class TestEachStep:
    def test_an_external_grant_issues_credit_against_the_open_receivable(self) -> None:
        lifecycle = Lifecycle.start()

        assert booked(lifecycle, 1) == entries_of((FBO, "100"), (OPEN, "-100"))
        balanced(lifecycle)

    def test_promotional_credit_is_issued_and_paid_for_in_brokerage_credits_with_no_cash(
        self,
    ) -> None:
        lifecycle = Lifecycle.start(settlement_type="promotional", credit_amount="25")

        assert booked(lifecycle, 1) == entries_of(
            (FBO, "25"), (OPEN, "-25"), (OPEN, "25"), (CREDITS, "-25")
        )
        assert lifecycle.balances()[WASH] == 0
        balanced(lifecycle)

    def test_authorization_re_denominates_the_receivable_from_credits_to_cash(self) -> None:
        lifecycle = Lifecycle.start(credit_amount="100.12")  # pays round(50.06) = 50.06
        lifecycle.authorize()

        assert booked(lifecycle, 2) == entries_of(
            (OPEN, "100.12"), (CREDITS, "-100.12"), (CASH, "50.06"), (AUTHORIZED, "-50.06")
        )
        balanced(lifecycle)

    def test_settlement_moves_exactly_the_cash_paid_to_wash(self) -> None:
        lifecycle = Lifecycle.start(credit_amount="1", cost_basis="0.005")  # pays 0.01
        lifecycle.authorize()
        lifecycle.settle()

        assert booked(lifecycle, 3) == entries_of((WASH, "-0.01"), (AUTHORIZED, "0.01"))
        assert lifecycle.balances() == {
            **dict.fromkeys(Account, Decimal(0)),
            FBO: Decimal(1),
            CREDITS: Decimal(-1),
            CASH: Decimal("0.01"),
            WASH: Decimal("-0.01"),
        }
        balanced(lifecycle)

    def test_an_invoice_purchase_books_nothing_until_its_invoice_then_grants(self) -> None:
        lifecycle = Lifecycle.start(settlement_type="invoice")

        assert lifecycle.postings() == []
        lifecycle.invoice()

        assert booked(lifecycle, 2) == entries_of((FBO, "100"), (OPEN, "-100"))
        (grant,) = {p.transaction_group_id for p in lifecycle.postings()}
        assert lifecycle.purchase.granted is not None
        assert grant == lifecycle.purchase.granted[0]
        balanced(lifecycle)

    def test_a_void_forfeits_what_remains_to_breakage(self) -> None:
        lifecycle = Lifecycle.start()
        lifecycle.consume("30")
        lifecycle.void()

        assert booked(lifecycle, 2) == entries_of((FBO, "-70"), (BREAKAGE, "70"))
        balanced(lifecycle)

    def test_a_refund_takes_credits_back_to_brokerage_and_sends_cash_out_through_wash(
        self,
    ) -> None:
        lifecycle = Lifecycle.start(initial_status="settled")
        lifecycle.refund("20")

        assert booked(lifecycle, 4) == entries_of(
            (FBO, "-20"), (CREDITS, "20"), (CASH, "-10.00"), (WASH, "10.00")
        )
        balanced(lifecycle)

    def test_a_refund_that_returns_no_cash_books_only_its_credits(self) -> None:
        lifecycle = Lifecycle.start(credit_amount="1", cost_basis="0.005", initial_status="settled")
        lifecycle.refund("0.5")  # round(0.0025) = 0.00

        assert booked(lifecycle, 4) == entries_of((FBO, "-0.5"), (CREDITS, "0.5"))
        balanced(lifecycle)


class TestFailure:
    def test_a_failure_while_pending_revokes_the_rest_and_leaves_the_consumed_part_owed(
        self,
    ) -> None:
        lifecycle = Lifecycle.start()
        lifecycle.consume("30")
        lifecycle.fail()

        assert booked(lifecycle, 2) == entries_of((FBO, "-70"), (OPEN, "70"))
        assert lifecycle.balances() == {
            **dict.fromkeys(Account, Decimal(0)),
            OPEN: Decimal(-30),
            ACCRUED: Decimal(30),
        }
        balanced(lifecycle)

    def test_a_failure_after_authorization_reverses_it_through_brokerage(self) -> None:
        lifecycle = Lifecycle.start()
        lifecycle.authorize()
        lifecycle.consume("30")
        lifecycle.fail()

        assert booked(lifecycle, 3) == entries_of(
            (AUTHORIZED, "50.00"),
            (CASH, "-50.00"),
            (CREDITS, "100"),
            (OPEN, "-100"),
            (FBO, "-70"),
            (OPEN, "70"),
        )
        # The authorized receivable and both brokerage accounts are back to zero.
        assert lifecycle.balances() == {
            **dict.fromkeys(Account, Decimal(0)),
            OPEN: Decimal(-30),
            ACCRUED: Decimal(30),
        }
        balanced(lifecycle)

    def test_credit_voided_before_the_failure_is_released_from_breakage(self) -> None:
        lifecycle = Lifecycle.start()
        lifecycle.consume("30")
        lifecycle.void()
        lifecycle.fail()

        assert booked(lifecycle, 3) == entries_of((BREAKAGE, "-70"), (OPEN, "70"))
        failure = lifecycle.purchase.failure
        assert failure is not None
        assert (failure.revoked, failure.released, failure.consumed) == (
            Decimal(0),
            Decimal(70),
            Decimal(30),
        )
        assert lifecycle.balances()[OPEN] == -30
        assert lifecycle.balances()[BREAKAGE] == 0
        balanced(lifecycle)

    def test_credit_expired_before_the_failure_is_released_from_breakage(self) -> None:
        lifecycle = Lifecycle.start(expires_at=NOW.replace(year=2027))
        lifecycle.consume("30")
        lifecycle.expire()
        lifecycle.fail()

        failure = lifecycle.purchase.failure
        assert failure is not None
        assert (failure.revoked, failure.released, failure.consumed) == (
            Decimal(0),
            Decimal(70),
            Decimal(30),
        )
        assert lifecycle.balances() == {
            **dict.fromkeys(Account, Decimal(0)),
            OPEN: Decimal(-30),
            ACCRUED: Decimal(30),
        }
        balanced(lifecycle)

    def test_an_invoice_purchase_failing_before_its_invoice_books_nothing(self) -> None:
        lifecycle = Lifecycle.start(settlement_type="invoice")
        lifecycle.fail()

        assert lifecycle.postings() == []

    def test_an_invoice_failing_after_approval_leaves_the_consumed_part_owed(self) -> None:
        lifecycle = Lifecycle.start(settlement_type="invoice")
        lifecycle.invoice()
        lifecycle.authorize()
        lifecycle.consume("100")
        lifecycle.fail()

        failure = lifecycle.purchase.failure
        assert failure is not None
        assert (failure.revoked, failure.consumed, failure.reversed_authorization) == (
            Decimal(0),
            Decimal(100),
            Decimal("50.00"),
        )
        assert lifecycle.balances() == {
            **dict.fromkeys(Account, Decimal(0)),
            OPEN: Decimal(-100),
            ACCRUED: Decimal(100),
        }
        balanced(lifecycle)


@pytest.mark.parametrize(
    "steps",
    [
        ["consume 30", "fail"],
        ["authorize", "consume 12.5", "void", "fail"],
        ["settle", "consume 30", "refund 20", "consume 10", "refund"],
        ["settle", "refund 33.33", "refund 33.33", "refund 33.34"],
        ["authorize", "consume 100", "settle"],
    ],
    ids=["fail", "void-then-fail", "refunds", "refund-all-in-thirds", "spent"],
)
def test_fbo_is_what_was_granted_less_what_became_of_it(steps: list[str]) -> None:
    lifecycle = Lifecycle.start()
    for step in steps:
        verb, _, amount = step.partition(" ")
        if verb in ("consume", "refund"):
            getattr(lifecycle, verb)(amount or None)
        else:
            getattr(lifecycle, verb)()

    grant = lifecycle.wallet.grants[lifecycle.purchase.id]
    balances = lifecycle.balances()
    assert balances[FBO] == (
        grant.amount - grant.consumed - grant.expired - grant.voided - grant.revoked
    )
    assert balances[FBO] == grant.remaining >= 0
    assert balances[ACCRUED] == grant.consumed
    if lifecycle.purchase.failure is not None:
        assert balances[OPEN] == -grant.consumed
    # Wash holds the cash settled less the cash refunded, never a credit amount.
    payment = lifecycle.purchase.payment
    settled = payment.amount if payment is not None and payment.settled else Decimal(0)
    assert balances[WASH] == lifecycle.purchase.refunded_cash - settled
    balanced(lifecycle)


def entries_of(*pairs: tuple[Account, str]) -> Counter[tuple[Account, Decimal]]:
    return Counter((account, Decimal(amount)) for account, amount in pairs)
