"""Namespaces isolate tenants: another tenant's purchase is indistinguishable from a missing one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.purchase_view import PurchaseView
from creditledger.domain.errors import CreditPurchaseNotFoundError, ValidationFailedError
from tests.application.builders import authorize, external_purchase, nothing_written, settle
from tests.clock import START

OTHER = "globex"

Attempt = Callable[[CreditLedger, PurchaseView], object]

ATTEMPTS: dict[str, Attempt] = {
    "get": lambda ledger, p: ledger.get_purchase(OTHER, p.id),
    "get at a version": lambda ledger, p: ledger.get_purchase(OTHER, p.id, version=1),
    "get as of a time": lambda ledger, p: ledger.get_purchase(OTHER, p.id, as_of=START),
    "history": lambda ledger, p: ledger.purchase_history(OTHER, p.id),
    "authorize": lambda ledger, p: ledger.authorize(authorize(p.id, namespace=OTHER)),
    "settle": lambda ledger, p: ledger.settle(settle(p.id, namespace=OTHER)),
}


@pytest.mark.parametrize("attempt", ATTEMPTS.values(), ids=ATTEMPTS.keys())
def test_another_namespace_cannot_see_or_change_a_purchase(
    ledger: CreditLedger, attempt: Attempt
) -> None:
    purchase = ledger.initiate(external_purchase()).purchase

    with nothing_written(ledger, purchase), pytest.raises(CreditPurchaseNotFoundError) as refused:
        attempt(ledger, purchase)

    assert refused.value.code == "credit_purchase_not_found"
    assert str(purchase.namespace) not in str(refused.value)


def test_each_namespace_sees_its_own_purchases(ledger: CreditLedger) -> None:
    ours = ledger.initiate(external_purchase()).purchase
    theirs = ledger.initiate(external_purchase(namespace=OTHER)).purchase

    assert ledger.get_purchase(ours.namespace, ours.id) == ours
    assert ledger.get_purchase(OTHER, theirs.id) == theirs
    with pytest.raises(CreditPurchaseNotFoundError):
        ledger.get_purchase(OTHER, ours.id)


def test_a_key_that_blurs_into_another_namespace_never_replays_that_tenants_purchase(
    ledger: CreditLedger,
) -> None:
    # ("a", "b/c") and ("a/b", "c") derive the same purchase id; "a/b" is no valid namespace.
    theirs = ledger.initiate(external_purchase(namespace="a", idempotency_key="b/c")).purchase

    with nothing_written(ledger, theirs), pytest.raises(ValidationFailedError) as refused:
        ledger.initiate(external_purchase(namespace="a/b", idempotency_key="c"))

    assert refused.value.codes == {"invalid_namespace"}
