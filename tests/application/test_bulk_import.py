"""A bulk import: many initiates at once, each line answered in order with its own outcome."""

from __future__ import annotations

import pytest

from creditledger.application.bulk_import import ImportLine, import_purchases
from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import FieldError, ValidationFailedError
from tests.application.builders import NAMESPACE, external_purchase


def _stored_events(ledger: CreditLedger) -> int:
    return len(ledger.recorder.select_notifications(start=None, limit=100_000))


def _lines(count: int) -> list[ImportLine]:
    lines = [
        ImportLine(n, command=external_purchase(customer_id=f"cust-{n}", idempotency_key=f"k-{n}"))
        for n in range(1, count + 1)
    ]
    # A line that never became a command, and a key used again with another request.
    lines.insert(3, ImportLine(4_000, error=ValidationFailedError([FieldError("line", "x", "y")])))
    lines.append(
        ImportLine(5_000, command=external_purchase(customer_id="other", idempotency_key="k-1"))
    )
    return lines


def test_every_line_is_answered_in_order_and_a_refused_line_stops_nobody(
    ledger: CreditLedger,
) -> None:
    lines = _lines(120)
    results = list(import_purchases(ledger, lines, workers=16))

    assert [r.number for r in results] == [line.number for line in lines]
    by_number = {r.number: r for r in results}
    assert by_number[4_000].result == "refused"
    assert by_number[4_000].error is lines[3].error
    refused_reuse = by_number[5_000]
    assert refused_reuse.error is not None
    assert refused_reuse.error.code == "idempotency_key_reused"
    created = [r for r in results if r.result == "created"]
    assert len(created) == 120
    # Each created line is its own purchase, stored once, with the customer its line named.
    for result in created:
        assert result.outcome is not None
        purchase = ledger.get_purchase(NAMESPACE, result.outcome.purchase.id)
        assert purchase.customer_id == f"cust-{result.number}"
    assert len({r.outcome.purchase.id for r in created if r.outcome}) == 120
    assert _stored_events(ledger) == 240  # each purchase's Initiated and its GrantAdded


def test_importing_the_same_lines_again_replays_them_and_writes_nothing(
    ledger: CreditLedger,
) -> None:
    lines = _lines(40)
    first = list(import_purchases(ledger, lines, workers=8))
    stored = _stored_events(ledger)

    again = list(import_purchases(ledger, lines, workers=8))

    assert [r.result for r in again] == [
        "replayed" if r.result == "created" else "refused" for r in first
    ]
    assert [r.outcome.purchase for r in again if r.outcome] == [
        r.outcome.purchase for r in first if r.outcome
    ]
    assert _stored_events(ledger) == stored


def test_at_least_one_worker_is_needed(ledger: CreditLedger) -> None:
    with pytest.raises(ValueError, match="workers"):
        list(import_purchases(ledger, _lines(1), workers=0))
