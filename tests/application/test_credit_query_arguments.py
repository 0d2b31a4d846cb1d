"""The credit queries refuse what no credit wallet can be asked about, every problem at once, on
every store: a customer or currency no wallet can have is the caller's mistake, not "no credit"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import ValidationFailedError
from tests.application.builders import consume, external_purchase


def _problems(query: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailedError) as refused:
        query()
    return [(error.field, error.code) for error in refused.value.errors]


def test_both_queries_list_every_bad_argument_together(ledger: CreditLedger) -> None:
    naive = datetime(2026, 1, 1, 12, 0)  # no offset: the mistake under test
    expected = [
        ("namespace", "invalid_namespace"),
        ("customer_id", "customer_id_required"),
        ("currency", "invalid_currency"),
        ("as_of", "timezone_required"),
    ]

    credits = _problems(lambda: ledger.customer_credits("-", " ", "usd", as_of=naive))
    history = _problems(lambda: ledger.credit_history("-", " ", "usd", as_of=naive))

    assert credits == history == expected


def test_a_valid_query_of_a_customer_without_credit_is_empty(ledger: CreditLedger) -> None:
    ledger.initiate(external_purchase(feature_filters=[]))
    ledger.consume(consume("1"))

    assert ledger.customer_credits("acme", "cust-2", "USD").grants == []
    assert ledger.customer_credits("acme", "cust-1", "EUR").balance == 0
    assert ledger.credit_history("acme", "cust-1", "EUR") == []
    assert [entry.type for entry in ledger.credit_history("acme", "cust-1", "USD")] == [
        "granted",
        "consumed",
    ]
