"""Read-your-writes: a caller can wait, with a timeout, until the views reflect its write."""

from __future__ import annotations

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.bootstrap import open_read_models
from tests.readmodels_support import initiate, read_models


def test_a_caller_waits_until_the_in_process_projector_has_applied_its_write(
    ledger: CreditLedger,
) -> None:
    with open_read_models(ledger) as service:
        purchase = initiate(ledger)
        assert service.read_models.wait_until(timeout=10)
        assert [item.id for item in service.read_models.list_purchases("acme").items] == [
            purchase.id
        ]
        # The purchase's Initiated and its wallet's GrantAdded.
        assert service.read_models.position() == service.read_models.head() == 2


def test_waiting_for_views_nobody_feeds_times_out_and_says_so(ledger: CreditLedger) -> None:
    with read_models(ledger) as service:
        initiate(ledger)
        assert not service.read_models.wait_until(timeout=0.05)
        assert service.read_models.list_purchases("acme").items == []
        service.runner.catch_up()
        assert service.read_models.wait_until(1, timeout=0.05)


def test_a_caller_can_wait_for_a_given_position(ledger: CreditLedger) -> None:
    with open_read_models(ledger) as service:
        initiate(ledger)
        initiate(ledger, initial_status="settled")
        # 2 + 4 events: each initiate wrote its GrantAdded too.
        assert service.read_models.wait_until(6, timeout=10)
        assert service.read_models.positions() == {
            "purchases": 6,
            "ledger": 6,
            "receivables": 6,
            "settled_revenue": 6,
        }
        assert not service.read_models.wait_until(7, timeout=0.05)


def test_the_projector_thread_stops_with_the_service(ledger: CreditLedger) -> None:
    service = open_read_models(ledger)
    assert service.projector_running
    service.close()
    assert not service.projector_running
