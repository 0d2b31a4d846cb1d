"""An idempotency key names one request: change any one field of a keyed request and the ledger
answers ``idempotency_key_reused``, for every command and for a line of an import.

The changes are made on the request as written, and each is a change by construction (an amount
plus one, another currency, one more feature key...), so nothing here asks the fingerprint
whether two requests differ. Fields that name another purchase (the namespace, the purchase id)
or only say when to apply the command (``expected_version``) are not part of a request's
identity and are left alone.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditledger.application.bulk_import import import_purchases
from creditledger.application.commands import AuthorizePayment, InitiatePurchase, SettlePayment
from creditledger.application.ledger import CreditLedger
from creditledger.application.testing import settings_for
from creditledger.application.testing.profiles import Target
from creditledger.application.testing.strategies import external_references, valid_initiations
from creditledger.domain.errors import IdempotencyKeyReusedError
from creditledger.domain.money import parse_decimal
from creditledger.infrastructure.bootstrap import open_ledger
from creditledger.infrastructure.cli.imports import answer, read_lines

Body = dict[str, Any]
Change = Callable[[Body], None]

_CURRENCIES = ("USD", "EUR", "JPY", "BHD")
_STATUSES = (None, "created", "authorized", "settled")


def _plus_one(written: object) -> str:
    number = parse_decimal(written, "amount")
    assert isinstance(number, Decimal)  # a valid request's amount parses
    return str(number + 1)


def _other(values: tuple[Any, ...], current: Any) -> Any:
    return next(value for value in values if value != current)


def _later(written: object) -> object:
    if written is None:
        return "2100-01-01T00:00:00Z"
    moment = datetime.fromisoformat(written) if isinstance(written, str) else written
    assert isinstance(moment, datetime)
    return moment + timedelta(days=1)


def _set(field: str, new: Callable[[Any], Any]) -> Change:
    def change(body: Body) -> None:
        body[field] = new(body.get(field))

    return change


def _set_settlement(field: str, new: Callable[[Any], Any]) -> Change:
    def change(body: Body) -> None:
        body["settlement"][field] = new(body["settlement"].get(field))

    return change


def _other_settlement_type(body: Body) -> None:
    body["settlement"]["type"] = _other(("external", "promotional"), body["settlement"]["type"])


def _one_more_label(body: Body) -> None:
    labels = dict(body.get("metadata") or {})
    labels["extra"] = labels.get("extra", "") + "1"
    body["metadata"] = labels


BODY_CHANGES: dict[str, Change] = {
    "customer_id": _set("customer_id", lambda old: old + "-2"),
    "currency": _set("currency", lambda old: _other(_CURRENCIES, old)),
    "credit_amount": _set("credit_amount", _plus_one),
    "cost_basis": _set("cost_basis", lambda old: "1" if old is None else _plus_one(old)),
    "settlement.type": _other_settlement_type,
    "settlement.initial_status": _set_settlement(
        "initial_status", lambda old: _other(_STATUSES, old)
    ),
    "priority": _set("priority", lambda old: _other((7, 8), old)),
    "expires_at": _set("expires_at", _later),
    "feature_filters": _set("feature_filters", lambda old: [*(old or []), "zz-one-more"]),
    "name": _set("name", lambda old: (old or "") + "!"),
    "metadata": _one_more_label,
}
"""Every field of an initiate body, each changed in a way that is a change by construction."""

COMMAND_CHANGES: dict[str, Change] = {
    **BODY_CHANGES,
    "settlement.currency": _set_settlement(
        "currency", lambda old: _other((None, *_CURRENCIES), old)
    ),
}
"""An ``InitiatePurchase`` has one field more than an HTTP body or an import line."""


@pytest.fixture
def keyed_ledger(store_url: str, backend: str) -> Iterator[tuple[CreditLedger, settings]]:
    """One ledger per backend for all examples (each uses its own key), and that backend's
    Hypothesis budget."""
    with open_ledger(store_url) as ledger:
        yield ledger, settings_for(cast(Target, backend))


def _keyed_initiations() -> st.SearchStrategy[InitiatePurchase]:
    return valid_initiations(keys=st.none()).map(
        lambda request: request.model_copy(update={"idempotency_key": f"key-{uuid4()}"})
    )


def test_changing_any_field_of_a_keyed_initiate_is_a_reused_key(
    keyed_ledger: tuple[CreditLedger, settings],
) -> None:
    ledger, budget = keyed_ledger

    @budget
    @given(request=_keyed_initiations(), field=st.sampled_from(sorted(COMMAND_CHANGES)))
    def check(request: InitiatePurchase, field: str) -> None:
        ledger.initiate(request)
        body = request.model_dump(mode="python")
        COMMAND_CHANGES[field](body)
        changed = InitiatePurchase.model_validate(body)

        with pytest.raises(IdempotencyKeyReusedError):
            ledger.initiate(changed)

    check()


def test_changing_the_command_or_the_reference_of_a_keyed_payment_is_a_reused_key(
    keyed_ledger: tuple[CreditLedger, settings],
) -> None:
    ledger, budget = keyed_ledger

    @budget
    @given(
        request=_keyed_initiations(),
        first=st.sampled_from((AuthorizePayment, SettlePayment)),
        reference=external_references(),
        field=st.sampled_from(("command", "external_reference")),
    )
    def check(
        request: InitiatePurchase,
        first: type[AuthorizePayment | SettlePayment],
        reference: str | None,
        field: str,
    ) -> None:
        purchase = ledger.initiate(
            request.model_copy(
                update={
                    "settlement": request.settlement.model_copy(
                        update={"type": "external", "initial_status": "created"}
                    ),
                    "cost_basis": request.cost_basis or "1",
                }
            )
        ).purchase
        key = f"pay-{uuid4()}"
        common = {
            "namespace": purchase.namespace,
            "purchase_id": purchase.id,
            "idempotency_key": key,
        }
        _pay(ledger, first(**common, external_reference=reference))
        if field == "command":
            other = SettlePayment if first is AuthorizePayment else AuthorizePayment
            changed: AuthorizePayment | SettlePayment = other(
                **common, external_reference=reference
            )
        else:
            changed = first(**common, external_reference=(reference or "") + "-2")

        with pytest.raises(IdempotencyKeyReusedError):
            _pay(ledger, changed)

    check()


def test_changing_any_field_of_an_import_line_is_a_reused_key(
    keyed_ledger: tuple[CreditLedger, settings],
) -> None:
    ledger, budget = keyed_ledger

    @budget
    @given(request=_keyed_initiations(), field=st.sampled_from(sorted(BODY_CHANGES)))
    def check(request: InitiatePurchase, field: str) -> None:
        body = request.model_dump(mode="json", exclude={"namespace"})
        body["settlement"].pop("currency")
        first = _import(ledger, body, request.namespace)
        assert first["result"] == "created", first
        BODY_CHANGES[field](body)

        again = _import(ledger, json.loads(json.dumps(body, default=str)), request.namespace)

        assert again["result"] == "refused"
        assert again["problem"]["code"] == "idempotency_key_reused", again

    check()


def _pay(ledger: CreditLedger, command: AuthorizePayment | SettlePayment) -> None:
    if isinstance(command, AuthorizePayment):
        ledger.authorize(command)
    else:
        ledger.settle(command)


def _import(ledger: CreditLedger, body: Body, namespace: str) -> dict[str, Any]:
    """One line through the importer, as ``creditledger purchase import`` reads and answers it."""
    source = io.StringIO(json.dumps(body, default=str) + "\n")
    (result,) = import_purchases(ledger, read_lines(source, namespace), workers=1)
    return answer(result)
