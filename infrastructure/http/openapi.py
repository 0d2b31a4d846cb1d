"""The OpenAPI 3.1 document: every error response documented, with examples.

The committed copy lives in ``docs/openapi.json``; a test fails when it drifts from the app.
Regenerate it with ``.venv/bin/python -m creditledger.infrastructure.http.openapi_file
docs/openapi.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute

from creditledger.domain.errors import (
    STATE_ERRORS,
    ConcurrentModificationError,
    CreditGrantExpiredError,
    CreditPurchaseNotFoundError,
    CreditsNotGrantedError,
    IdempotencyKeyReusedError,
    InsufficientCreditError,
    LedgerError,
    NothingToRefundError,
    NothingToVoidError,
    RefundExceedsRemainingError,
    ValidationFailedError,
    VersionMismatchError,
)
from creditledger.infrastructure.http.errors import (
    HTTP_TITLES,
    PROBLEM_MEDIA_TYPE,
    PROBLEM_TYPE_PREFIX,
    status_of,
)
from creditledger.infrastructure.http.openapi_examples import (
    AUTHORIZED_PURCHASE_EXAMPLE,
    CONSUME_EXAMPLES,
    CONSUMPTION_EXAMPLE,
    CREATE_EXAMPLES,
    CREDIT_HISTORY_EXAMPLE,
    CREDITS_EXAMPLE,
    EXPIRED_PURCHASE_EXAMPLE,
    FAIL_EXAMPLES,
    FAILED_PURCHASE_EXAMPLE,
    FEED_EXAMPLE,
    FINAL_PURCHASE_EXAMPLE,
    HISTORY_EXAMPLE,
    INVOICE_EXAMPLES,
    INVOICE_PURCHASE_EXAMPLE,
    INVOICED_PURCHASE_EXAMPLE,
    PAYMENT_EXAMPLES,
    PENDING_PURCHASE_EXAMPLE,
    PURCHASE_ID,
    REFUND_EXAMPLES,
    REFUNDED_PURCHASE_EXAMPLE,
    SPLIT_CONSUMPTION_EXAMPLE,
    VOID_EXAMPLES,
    VOIDED_PURCHASE_EXAMPLE,
)
from creditledger.infrastructure.http.schemas import FieldProblem, Problem

TITLE = "creditledger"
API_VERSION = "1.0.0"
DESCRIPTION = (
    "Event-sourced ledger of prepaid credit purchases. Decimals travel as JSON strings, times as "
    "RFC 3339 UTC strings, ids as strings. Every error is application/problem+json with a stable "
    "`code`. Choices the contract leaves open are listed in docs/http.md."
)
TAGS = [
    {
        "name": "credit purchases",
        "description": "Initiate, authorize, settle, void and read purchases.",
    },
    {
        "name": "credits",
        "description": "Spend a customer's credit; its spendable grants and its history, read "
        "from the customer's credit wallet in the event log (exact, no projection lag).",
    },
    {"name": "ledger", "description": "Balances per customer, from the ledger read model."},
    {"name": "reports", "description": "Receivables and settled revenue, from the read models."},
    {"name": "events", "description": "The namespace's events in commit order, for consumers."},
    {"name": "service", "description": "Liveness, readiness and metrics (no token needed)."},
]

_PROBLEM_EXAMPLES: dict[str, tuple[str, list[dict[str, str]]]] = {
    "validation_failed": (
        "cost_basis: cost basis must be positive; currency: 'XYZ' is not an ISO 4217 currency "
        'code (e.g. "USD")',
        [
            {
                "field": "cost_basis",
                "code": "cost_basis_not_positive",
                "message": "cost basis must be positive",
            },
            {
                "field": "currency",
                "code": "invalid_currency",
                "message": "'XYZ' is not an ISO 4217 currency code (e.g. \"USD\")",
            },
        ],
    ),
    "payment_already_authorized": ("the payment is already authorized", []),
    "payment_already_settled": ("the payment is already settled", []),
    "cannot_settle_not_authorized_payment": ("the payment was never authorized", []),
    "invalid_transition": ("a promotional purchase has no payment to authorize or settle", []),
    "idempotency_key_reused": ("idempotency key 'order-A-1' was used for a different request", []),
    "concurrent_modification": (f"purchase {PURCHASE_ID} kept changing; try again", []),
    "version_mismatch": ("purchase is at version 2, not 1", []),
    "credit_purchase_not_found": (f"credit purchase {PURCHASE_ID} not found", []),
    "not_found": ("Not found", []),
    "unauthenticated": ("send Authorization: Bearer <token>", []),
    "forbidden": ("the admin token may read every namespace, never write", []),
    "request_too_large": ("the request body is larger than 262144 bytes", []),
    "unsupported_media_type": ("send the body as application/json", []),
    "store_unavailable": ("the event store could not be reached", []),
    "not_ready": ("store: unreachable", []),
    "projection_behind": ("the read models did not reach position 42 within 5 seconds", []),
    "insufficient_credit": ("12.50 USD requested, 7.50 available for feature 'api_calls'", []),
    "credit_grant_expired": (
        f"the credit of purchase {PURCHASE_ID} expired at 2026-02-01 00:00:00+00:00",
        [],
    ),
    "nothing_to_void": (f"the credit of purchase {PURCHASE_ID} is already voided", []),
    "credits_not_granted": (f"purchase {PURCHASE_ID} has no credit granted yet", []),
    "payment_already_failed": (
        f"cannot settle external purchase in status final.payment_failed [id={PURCHASE_ID}]",
        [],
    ),
    "payment_not_settled": (
        f"cannot refund external purchase in status active.payment.authorized [id={PURCHASE_ID}]",
        [],
    ),
    "invoice_already_created": (
        f"cannot invoice_created invoice purchase in status active.payment.pending "
        f"[id={PURCHASE_ID}]",
        [],
    ),
    "invoice_not_created": (
        f"cannot authorize invoice purchase in status created [id={PURCHASE_ID}]",
        [],
    ),
    "nothing_to_refund": (f"nothing remains of the credit of purchase {PURCHASE_ID}", []),
    "refund_exceeds_remaining": (
        f"a refund of 10.00 USD exceeds the 4.00 that remains unconsumed [id={PURCHASE_ID}]",
        [],
    ),
}
_PROBLEM_MEMBERS: dict[str, dict[str, str]] = {
    "insufficient_credit": {"available": "7.50"},
    "refund_exceeds_remaining": {"remaining": "4.00"},
}
"""The extension members of a code's example (see errors.members_of)."""

_LEDGER_ERRORS: tuple[type[LedgerError], ...] = (
    *STATE_ERRORS.values(),
    ConcurrentModificationError,
    IdempotencyKeyReusedError,
    VersionMismatchError,
    ValidationFailedError,
    CreditPurchaseNotFoundError,
    InsufficientCreditError,
    CreditGrantExpiredError,
    NothingToVoidError,
    CreditsNotGrantedError,
    NothingToRefundError,
    RefundExceedsRemainingError,
)
_LEDGER_TITLES = {error.code: error.title for error in _LEDGER_ERRORS}

_STATUS_DESCRIPTIONS = {
    401: "No valid bearer token (`unauthenticated`); header WWW-Authenticate says why.",
    403: "The admin token tried to write (`forbidden`).",
    404: "Nothing there for this caller: missing, another namespace's, or an id that cannot exist.",
    409: "The purchase's state, the customer's credit or an earlier request with the same key "
    "refuses the command; nothing was written.",
    412: "If-Match named another version (`version_mismatch`).",
    413: "The body is larger than the server's limit.",
    415: "A body that is not application/json.",
    422: "The input had problems: `errors` lists every one of them.",
    503: "The store could not be reached, or (projection_behind) the read models did not reach "
    "the asked position in time; nothing was applied, retry later (Retry-After).",
}


def problem_example(code: str) -> dict[str, Any]:
    detail, errors = _PROBLEM_EXAMPLES[code]
    return {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": _LEDGER_TITLES.get(code) or HTTP_TITLES[code],
        "status": status_of(code),
        "code": code,
        "detail": detail,
        "errors": errors,
        "request_id": "5b0f2f6de3a74c4c8f0a8f0a2d4c1e77",
        **_PROBLEM_MEMBERS.get(code, {}),
    }


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these problem codes, grouped by status, one example per code."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(status_of(code), []).append(code)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, status_codes in sorted(by_status.items()):
        names = ", ".join(f"`{code}`" for code in status_codes)
        headers: dict[str, Any] = {}
        if status == 401:
            headers["WWW-Authenticate"] = {
                "description": 'Bearer realm="creditledger"',
                "schema": {"type": "string"},
            }
        if status == 503:
            headers["Retry-After"] = _string_header("Seconds to wait before retrying.")
        response: dict[str, Any] = {
            "description": f"{_STATUS_DESCRIPTIONS.get(status, '')} Codes: {names}.".strip(),
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": _PROBLEM_REF,
                    "examples": {code: {"value": problem_example(code)} for code in status_codes},
                }
            },
        }
        if headers:
            response["headers"] = headers
        responses[status] = response
    return responses


def _string_header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


PURCHASE_HEADERS = {
    "ETag": _string_header('The purchase version of this body, e.g. "1": send it as If-Match.'),
    "Idempotent-Replayed": _string_header(
        "true when this answer replays an earlier request with the same Idempotency-Key; absent "
        "otherwise."
    ),
    "X-Position": _string_header(
        "A log position at or after this command's last event: pass it as min_position (or "
        "X-Min-Position) to a list, balance or report read to see this write there."
    ),
}
LOCATION_HEADER = {"Location": _string_header("The purchase's URL (a relative reference).")}
CONSUMPTION_HEADERS = {
    "Idempotent-Replayed": PURCHASE_HEADERS["Idempotent-Replayed"],
    "X-Position": _string_header(
        "A log position at or after this consumption's event: pass it as min_position (or "
        "X-Min-Position) to a read-model read to see it there."
    ),
}


def purchase_response(description: str, *, location: bool = False) -> dict[str, Any]:
    headers = {**PURCHASE_HEADERS, **(LOCATION_HEADER if location else {})}
    return {"description": description, "headers": headers}


def consumption_response(description: str) -> dict[str, Any]:
    return {"description": description, "headers": CONSUMPTION_HEADERS}


_RESPONSE_EXAMPLES: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("createCreditPurchase", "201"): {
        "pending": PENDING_PURCHASE_EXAMPLE,
        "invoice_waits_for_its_invoice": INVOICE_PURCHASE_EXAMPLE,
    },
    ("createCreditPurchase", "200"): {"pending": PENDING_PURCHASE_EXAMPLE},
    ("authorizePayment", "200"): {"authorized": AUTHORIZED_PURCHASE_EXAMPLE},
    ("settlePayment", "200"): {"final": FINAL_PURCHASE_EXAMPLE},
    ("getCreditPurchase", "200"): {
        "final": FINAL_PURCHASE_EXAMPLE,
        "at_version_1": PENDING_PURCHASE_EXAMPLE,
        "expired": EXPIRED_PURCHASE_EXAMPLE,
        "payment_failed": FAILED_PURCHASE_EXAMPLE,
        "refunded": REFUNDED_PURCHASE_EXAMPLE,
    },
    ("getCreditPurchaseHistory", "200"): {"final": HISTORY_EXAMPLE},
    ("voidCreditPurchase", "200"): {"voided": VOIDED_PURCHASE_EXAMPLE},
    ("createInvoice", "200"): {"invoiced": INVOICED_PURCHASE_EXAMPLE},
    ("failPayment", "200"): {"failed_after_a_consumption": FAILED_PURCHASE_EXAMPLE},
    ("refundPayment", "200"): {"partly_refunded": REFUNDED_PURCHASE_EXAMPLE},
    ("consumeCredits", "201"): {
        "one_grant": CONSUMPTION_EXAMPLE,
        "two_grants": SPLIT_CONSUMPTION_EXAMPLE,
    },
    ("consumeCredits", "200"): {"one_grant": CONSUMPTION_EXAMPLE},
    ("getCustomerCredits", "200"): {"one_grant": CREDITS_EXAMPLE},
    ("getCustomerCreditHistory", "200"): {"granted_consumed_expired": CREDIT_HISTORY_EXAMPLE},
    ("getEventFeed", "200"): {"purchase_and_wallet_events": FEED_EXAMPLE},
}
_REQUEST_EXAMPLES: dict[str, dict[str, dict[str, Any]]] = {
    "createCreditPurchase": CREATE_EXAMPLES,
    "authorizePayment": PAYMENT_EXAMPLES,
    "settlePayment": PAYMENT_EXAMPLES,
    "voidCreditPurchase": VOID_EXAMPLES,
    "createInvoice": INVOICE_EXAMPLES,
    "failPayment": FAIL_EXAMPLES,
    "refundPayment": REFUND_EXAMPLES,
    "consumeCredits": CONSUME_EXAMPLES,
}


def _attach_examples(document: dict[str, Any]) -> None:
    """Add the body examples after FastAPI's encoding, which would drop their null values."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation_id = operation.get("operationId")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and operation_id in _REQUEST_EXAMPLES:
                body["examples"] = _REQUEST_EXAMPLES[operation_id]
            for status, response in operation.get("responses", {}).items():
                examples = _RESPONSE_EXAMPLES.get((operation_id, status))
                content = response.get("content", {}).get("application/json")
                if examples is not None and content is not None:
                    content["examples"] = {
                        name: {"value": value} for name, value in examples.items()
                    }


_PURCHASE_AMOUNTS = {
    "remaining": "Credit left to spend: what was granted (nothing while an invoice purchase "
    "waits for its invoice) - consumed - expired - voided - revoked - refunded.",
    "consumed": "Credit spent by consumptions, drawn from this purchase's grant.",
    "expired": "What remained at expires_at, forfeited (booked to breakage); counted from "
    "expires_at on, even before the expiry is recorded.",
    "voided": "What remained when the purchase was voided, forfeited (booked to breakage).",
    "revoked": "Credit taken back when the payment failed: what remained unconsumed then.",
    "refunded": "Credit taken back by refunds after settlement (the money returned is in "
    "realizations.refunds.cash_amount).",
}
_PURCHASE_REALIZATIONS = {
    "void": "Set once the purchase is voided: the ledger entry, when, how much and why.",
    "expiry": "Set once the grant's expires_at has passed with credit left: when it took "
    "effect (expires_at), how much, and whether its event is recorded yet (the amounts are "
    "exact either way).",
    "credit_grant": "The grant's ledger entry and time; null while an invoice purchase waits "
    "for its invoice.",
    "external_payment": "An external purchase's payment once authorized (status authorized, "
    "settled or failed); null otherwise.",
    "invoice": "An invoice purchase's invoice line (POST .../invoice), once created.",
    "invoice_payment": "An invoice purchase's payment, shaped as external_payment.",
    "payment_failure": "Set once the payment failed: the ledger entry, when, why, the credit "
    "revoked (unconsumed then), released (forfeited earlier: expired or voided) and owed "
    "(consumed: still owed, an open receivable).",
    "refunds": "Every refund so far, summed: how many, the credit taken back (amount), the "
    "money returned (cash_amount: exactly the payment once every credit is refunded), and the "
    "last one's ledger entry and time.",
}
_DESCRIPTIONS = {
    "PurchaseView": _PURCHASE_AMOUNTS,
    "RealizationsView": _PURCHASE_REALIZATIONS,
}


def _describe_purchase_amounts(document: dict[str, Any]) -> None:
    """Describe the purchase body's credit fields (the application's view carries no OpenAPI
    text of its own)."""
    schemas = document.get("components", {}).get("schemas", {})
    for name, notes in _DESCRIPTIONS.items():
        properties = schemas.get(name, {}).get("properties", {})
        for field, note in notes.items():
            if field in properties:
                properties[field]["description"] = note


def _drop_fastapi_validation_errors(document: dict[str, Any]) -> None:
    """Remove the 422 FastAPI adds by itself where no parameter can fail validation (the gate
    answers bad paths with 404), and its schemas: every 422 here is a Problem."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                del responses["422"]
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _parameters_are_never_null(document: dict[str, Any]) -> None:
    """An optional query parameter or header is absent, never null: ``anyOf [X, null]`` -> X.

    (FastAPI writes an ``Optional`` parameter's schema as a union with null; a client generated
    from that would send the text "null".)
    """
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                variants = schema.get("anyOf")
                if not isinstance(variants, list):
                    continue
                kept = [variant for variant in variants if variant != {"type": "null"}]
                if len(kept) == 1 and len(kept) < len(variants):
                    del schema["anyOf"]
                    schema.update(kept[0])


def build_openapi(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The document FastAPI derives from the routes, plus the problem schema they refer to."""
    document = get_openapi(
        title=TITLE,
        version=API_VERSION,
        description=DESCRIPTION,
        routes=routes,
        tags=TAGS,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["FieldProblem"] = FieldProblem.model_json_schema()
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["Problem"].pop("$defs", None)
    _attach_examples(document)
    _describe_purchase_amounts(document)
    _drop_fastapi_validation_errors(document)
    _parameters_are_never_null(document)
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
