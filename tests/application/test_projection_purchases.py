"""The purchases read model: one row per purchase, listed by namespace, customer and status."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.purchase_view import PurchaseView
from creditledger.application.readmodels import MAX_LIMIT
from creditledger.domain.errors import ValidationFailedError
from creditledger.infrastructure.projections.service import ReadModelService
from tests.clock import FixedClock
from tests.readmodels_support import authorize, initiate, read_models, settle


@pytest.fixture
def views(ledger: CreditLedger) -> Iterator[ReadModelService]:
    with read_models(ledger) as service:
        yield service


def listed(views: ReadModelService, **filters: object) -> list[PurchaseView]:
    views.runner.catch_up()
    return views.read_models.list_purchases("acme", **filters).items  # type: ignore[arg-type]


def test_a_listed_purchase_is_the_purchase_the_ledger_shows(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    pending = initiate(ledger, amount="100.123")
    clock.advance(5)
    authorized = authorize(ledger, initiate(ledger, customer="cust-2"))
    clock.advance(5)
    final = settle(ledger, authorize(ledger, initiate(ledger)))
    settled_at_once = initiate(ledger, initial_status="settled")
    promotional = initiate(ledger, settlement="promotional", amount="25")

    items = listed(views)

    assert items == [
        ledger.get_purchase("acme", purchase.id)
        for purchase in (pending, authorized, final, settled_at_once, promotional)
    ]
    assert items[0].credit_amount == Decimal("100.12")
    assert [item.status for item in items] == [
        "active.payment.pending",
        "active.payment.authorized",
        "final",
        "final",
        "final",
    ]


def test_purchases_are_filtered_by_customer_and_status(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    one = initiate(ledger, customer="cust-1")
    two = authorize(ledger, initiate(ledger, customer="cust-2"))
    three = initiate(ledger, customer="cust-2")
    initiate(ledger, namespace="globex", customer="cust-2")

    assert [p.id for p in listed(views, customer_id="cust-2")] == [two.id, three.id]
    assert [p.id for p in listed(views, status="active.payment.pending")] == [one.id, three.id]
    assert [
        p.id for p in listed(views, customer_id="cust-2", status="active.payment.authorized")
    ] == [two.id]
    assert listed(views, customer_id="nobody") == []


def test_pages_follow_one_another_without_gaps_or_repeats(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    created = [initiate(ledger).id for _ in range(7)]
    views.runner.catch_up()
    read = views.read_models

    first = read.list_purchases("acme", limit=3)
    second = read.list_purchases("acme", limit=3, cursor=first.next_cursor)
    # Purchases created while a client pages through come after its cursor, never before it.
    created.append(initiate(ledger).id)
    views.runner.catch_up()
    third = read.list_purchases("acme", limit=3, cursor=second.next_cursor)

    pages = [first, second, third]
    assert [p.id for page in pages for p in page.items] == created
    assert first.next_cursor is not None
    assert second.next_cursor is not None
    assert third.next_cursor is None


def test_a_page_that_ends_exactly_at_the_last_purchase_has_no_next_cursor(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    for _ in range(2):
        initiate(ledger)
    views.runner.catch_up()
    page = views.read_models.list_purchases("acme", limit=2)
    assert len(page.items) == 2
    assert page.next_cursor is None


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"limit": 0}, "limit_out_of_range"),
        ({"limit": MAX_LIMIT + 1}, "limit_out_of_range"),
        ({"status": "paid"}, "invalid_status"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"cursor": "cDE6LTE"}, "invalid_cursor"),
    ],
)
def test_a_bad_listing_request_is_refused_with_its_problem(
    views: ReadModelService, arguments: dict[str, object], code: str
) -> None:
    with pytest.raises(ValidationFailedError) as refused:
        views.read_models.list_purchases("acme", **arguments)  # type: ignore[arg-type]
    assert refused.value.codes == {code}


def test_every_problem_of_a_listing_request_is_reported_at_once(views: ReadModelService) -> None:
    with pytest.raises(ValidationFailedError) as refused:
        views.read_models.list_purchases("acme", limit=5000, status="nope", cursor="!")
    assert refused.value.codes == {"limit_out_of_range", "invalid_status", "invalid_cursor"}


def test_the_page_says_which_position_of_the_log_it_reflects(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    initiate(ledger)
    initiate(ledger, initial_status="settled")
    views.runner.catch_up()
    # Each initiate also wrote its GrantAdded: 2 + 4 events.
    assert views.read_models.list_purchases("acme").position == 6
