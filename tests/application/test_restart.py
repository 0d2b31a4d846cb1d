"""A restarted service reads back exactly what the previous one wrote."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from creditledger.application.ledger import CreditLedger
from tests.application.builders import (
    authorize,
    external_purchase,
    promotional_purchase,
    settle,
)
from tests.clock import FixedClock


def test_after_a_restart_every_purchase_and_history_reads_back_identically(
    backend: str, open_store: Callable[[], CreditLedger], clock: FixedClock
) -> None:
    if backend == "memory":
        pytest.skip("an in-memory store does not outlive its ledger: restart is meaningless")
    before = open_store()
    pending = before.initiate(external_purchase(feature_filters=["b", "a"])).purchase
    clock.advance(1)
    authorized = before.initiate(external_purchase(initial_status="authorized")).purchase
    clock.advance(1)
    settled_later = before.initiate(external_purchase(idempotency_key="order-1")).purchase
    before.authorize(authorize(settled_later.id, external_reference="psp-1"))
    clock.advance(1)
    before.settle(settle(settled_later.id, idempotency_key="settle-1"))
    settled_at_once = before.initiate(
        external_purchase(currency="JPY", credit_amount="1000.5", cost_basis="0.33")
    ).purchase
    before.settle(settle(settled_at_once.id))
    promotional = before.initiate(
        promotional_purchase(metadata={"campaign": "spring"}, name="Gift")
    ).purchase
    purchases = [pending, authorized, settled_later, settled_at_once, promotional]
    written = {
        p.id: (
            before.get_purchase(p.namespace, p.id),
            before.purchase_history(p.namespace, p.id),
        )
        for p in purchases
    }
    before.close()

    after = open_store()
    reread = {
        p.id: (after.get_purchase(p.namespace, p.id), after.purchase_history(p.namespace, p.id))
        for p in purchases
    }

    assert reread == written
    assert [view.status for view, _ in reread.values()] == [
        "active.payment.pending",
        "active.payment.authorized",
        "final",
        "final",
        "final",
    ]
