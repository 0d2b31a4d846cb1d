"""schemathesis against the app's OpenAPI document: no 5xx, and every response as documented.

The cases are generated from ``docs/openapi.json`` (which ``test_openapi_document`` keeps equal to
what the app serves) and sent to the app in-process, over one in-memory ledger that fills up as
the run goes on.

The checks are the ones this document can promise: no server error, and every status, media
type, header and body as documented. Two kinds of built-in check are left out on purpose:
- acceptance of "schema-valid" data: the schema cannot say every domain rule (a currency that
  matches ``^[A-Z]{3}$`` may still not exist; an entity tag may name another version), so a 422,
  404 or 412 for such data is the right answer;
- enforcement of the bearer scheme: the app runs open (no token configured) so that every
  generated namespace and body reaches the ledger; the end-to-end tests cover the tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from creditledger.infrastructure.bootstrap import open_ledger
from creditledger.infrastructure.http.app import create_app
from tests.infrastructure.http_app import TestClient
from tests.infrastructure.http_app import settings as app_settings

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"

schema = schemathesis.openapi.from_path(DOCUMENT)

EXAMPLES_PER_OPERATION = 200
"""With the explicit examples and schemathesis's coverage cases, over 1,000 requests in all
(measured: 1,400 requests; 650 at 50 per operation), in about a minute on an idle machine."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def app() -> Iterator[FastAPI]:
    with open_ledger("memory://") as ledger:
        served = create_app(app_settings(), ledger=ledger)
        # The test client runs the lifespan (read models, projector); the cases reach the app
        # directly.
        with TestClient(served):
            yield served


FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck)
)


def _answers_as_documented(app: FastAPI, case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(app=app, checks=CHECKS)


# One test per operation, rather than one ``schema.parametrize()`` over all of them: under
# pytest 9 its items would share one node id, and pytest-xdist would then run only one of them.


@schema.include(operation_id="createCreditPurchase").parametrize()
@FUZZ
def test_creating_a_purchase_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="authorizePayment").parametrize()
@FUZZ
def test_authorizing_a_payment_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="settlePayment").parametrize()
@FUZZ
def test_settling_a_payment_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="voidCreditPurchase").parametrize()
@FUZZ
def test_voiding_a_purchase_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="createInvoice").parametrize()
@FUZZ
def test_creating_an_invoice_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="failPayment").parametrize()
@FUZZ
def test_failing_a_payment_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="refundPayment").parametrize()
@FUZZ
def test_refunding_a_payment_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="consumeCredits").parametrize()
@FUZZ
def test_consuming_credits_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="getCustomerCredits").parametrize()
@FUZZ
def test_reading_a_customers_credits_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="getCustomerCreditHistory").parametrize()
@FUZZ
def test_reading_a_customers_credit_history_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="getCreditPurchase").parametrize()
@FUZZ
def test_reading_a_purchase_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="getCreditPurchaseHistory").parametrize()
@FUZZ
def test_reading_a_history_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="listCreditPurchases").parametrize()
@FUZZ
def test_listing_purchases_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="getCustomerBalances").parametrize()
@FUZZ
def test_reading_balances_answers_as_documented(app: FastAPI, case: schemathesis.Case[Any]) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="getReceivables").parametrize()
@FUZZ
def test_the_receivables_report_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="getSettledRevenue").parametrize()
@FUZZ
def test_the_settled_revenue_report_answers_as_documented(
    app: FastAPI, case: schemathesis.Case[Any]
) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="getEventFeed").parametrize()
@FUZZ
def test_the_event_feed_answers_as_documented(app: FastAPI, case: schemathesis.Case[Any]) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="health").parametrize()
@FUZZ
def test_liveness_answers_as_documented(app: FastAPI, case: schemathesis.Case[Any]) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="readiness").parametrize()
@FUZZ
def test_readiness_answers_as_documented(app: FastAPI, case: schemathesis.Case[Any]) -> None:
    _answers_as_documented(app, case)


@schema.include(operation_id="metrics").parametrize()
@FUZZ
def test_metrics_answer_as_documented(app: FastAPI, case: schemathesis.Case[Any]) -> None:
    _answers_as_documented(app, case)


def test_every_operation_of_the_document_is_fuzzed_above() -> None:
    fuzzed = {
        "createCreditPurchase",
        "authorizePayment",
        "settlePayment",
        "voidCreditPurchase",
        "createInvoice",
        "failPayment",
        "refundPayment",
        "consumeCredits",
        "getCustomerCredits",
        "getCustomerCreditHistory",
        "getCreditPurchase",
        "getCreditPurchaseHistory",
        "listCreditPurchases",
        "getCustomerBalances",
        "getReceivables",
        "getSettledRevenue",
        "getEventFeed",
        "health",
        "readiness",
        "metrics",
    }
    document = json.loads(DOCUMENT.read_text())
    assert {
        operation["operationId"]
        for operations in document["paths"].values()
        for operation in operations.values()
    } == fuzzed
