"""A stored event whose fields break its schema (written behind the ledger's back) is a corrupt
history, on SQLite and PostgreSQL, for a process that starts on the changed store: the live path
names it as ``event_sequence_broken`` (HTTP 500, the event and every problem in the detail),
never as the caller's ``validation_failed``, and ``verify --against-live`` reports the purchase
missing from the live state with that reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import EventSequenceError
from creditledger.infrastructure.audit.jobs import compare_with_live
from creditledger.infrastructure.audit.live import StoreLiveLedger
from tests.application.audit_support import export_lines, tamper_stored_event, verify_lines
from tests.application.builders import NAMESPACE, external_purchase
from tests.infrastructure.http_app import client_for

BROKEN = {"amount": "forty", "cost_basis": "half"}


def test_a_grant_that_breaks_its_schema_is_a_broken_history_not_a_validation_failure(
    backend: str, open_store: Callable[[], CreditLedger], store_url: str, tmp_path: Path
) -> None:
    if backend == "memory":
        pytest.skip("an in-memory store belongs to one ledger: no second process can read it")
    writer = open_store()
    purchase = writer.initiate(external_purchase()).purchase
    report = verify_lines(export_lines(writer, tmp_path / "export.jsonl"))
    assert report.ok, report.failure
    tamper_stored_event(writer, store_url, 2, BROKEN)  # the wallet's GrantAdded
    # A process that starts on the changed store (the writer holds the wallet it wrote).
    ledger = open_store()

    with pytest.raises(EventSequenceError) as raised:
        ledger.get_purchase(NAMESPACE, purchase.id)
    assert raised.value.code == "event_sequence_broken"
    assert "GrantAdded" in raised.value.detail
    assert "amount: " in raised.value.detail
    assert "cost_basis: " in raised.value.detail

    with client_for(ledger) as client:
        answer = client.get(f"/v1/namespaces/{NAMESPACE}/credit-purchases/{purchase.id}")
    assert answer.status_code == 500
    assert answer.json()["code"] == "event_sequence_broken"
    assert "amount: " in answer.json()["detail"]

    live = StoreLiveLedger(ledger)
    comparison = compare_with_live(report, live)
    assert [(d.key, d.detail) for d in comparison.differences if d.kind == "purchase"] == [
        (str(purchase.id), "missing from the live state")
    ]
    assert live.unreadable[purchase.id].startswith("event_sequence_broken: ")
