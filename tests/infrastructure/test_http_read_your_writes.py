"""Read-your-writes on every backend: a read with a command's X-Position sees that command, and
answers 503 projection_behind when the read models cannot get there in time."""

from __future__ import annotations

from creditledger.application.ledger import CreditLedger
from tests.infrastructure.http_app import client_for, purchase_body

PURCHASES = "/v1/namespaces/acme/credit-purchases"


def test_a_list_read_with_the_creates_position_shows_the_new_purchase(
    ledger: CreditLedger,
) -> None:
    with client_for(ledger) as client:
        created = client.post(PURCHASES, json=purchase_body(customer_id="ryw"))
        listed = client.get(
            PURCHASES,
            params={"customer_id": "ryw"},
            headers={"X-Min-Position": created.headers["X-Position"]},
        )
    assert created.status_code == 201
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [created.json()["id"]]
    assert listed.json()["position"] >= int(created.headers["X-Position"])


def test_a_read_whose_read_models_stay_behind_is_503_after_the_timeout(
    ledger: CreditLedger,
) -> None:
    # External projector, and none running: the views never move.
    with client_for(ledger, projector="external", read_your_writes_timeout=0.05) as client:
        created = client.post(PURCHASES, json=purchase_body())
        behind = client.get(PURCHASES, params={"min_position": created.headers["X-Position"]})
        without_waiting = client.get(PURCHASES)
    assert behind.status_code == 503
    assert behind.json()["code"] == "projection_behind"
    assert behind.headers["Retry-After"] == "1"
    assert without_waiting.status_code == 200
    assert without_waiting.json()["items"] == []
