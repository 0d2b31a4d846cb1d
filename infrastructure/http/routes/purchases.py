"""``/v1/namespaces/{namespace}/credit-purchases``: initiate, the payment and credit commands
(authorize, settle, void, invoice, fail, refund), get, history.

Each route builds one command or query from the request, hands it to the ledger, and shapes the
answer (status, ``ETag``, ``Location``, ``Idempotent-Replayed``, ``X-Position``). The list reads
the purchases read model instead. Rules live in the domain; errors
become problem documents in ``errors.py``. Routes are sync: the event store blocks, so FastAPI
runs them in its threadpool.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query, Request, Response, Security

from creditledger.application.commands import (
    AuthorizePayment,
    CreateInvoice,
    FailPayment,
    RefundPayment,
    SettlePayment,
    VoidPurchase,
)
from creditledger.application.errors import StoreUnavailableError
from creditledger.application.input_types import AwareTimestamp, StorableText
from creditledger.application.ledger import CreditLedger, Outcome
from creditledger.application.purchase_view import PurchaseView
from creditledger.application.readmodels import DEFAULT_LIMIT, MAX_LIMIT
from creditledger.domain.errors import CreditPurchaseNotFoundError
from creditledger.domain.rules import RULES
from creditledger.domain.status import Command, PurchaseStatus
from creditledger.infrastructure.http.deps import (
    IdempotencyKeyHeader,
    IfMatchHeader,
    LedgerDep,
    MetricsDep,
    ReadModelsDep,
    bearer_scheme,
    entity_tag,
    expected_version,
)
from creditledger.infrastructure.http.gate import LedgerRoute
from creditledger.infrastructure.http.openapi import problem_responses, purchase_response
from creditledger.infrastructure.http.schemas import (
    NAMESPACE_PATTERN,
    FailRequest,
    HistoryPage,
    InvoiceRequest,
    PaymentUpdate,
    PurchaseCreate,
    PurchaseList,
    RefundRequest,
    VoidRequest,
)

PREFIX = "/v1/namespaces/{namespace}/credit-purchases"

router = APIRouter(
    prefix=PREFIX,
    tags=["credit purchases"],
    route_class=LedgerRoute,
    dependencies=[Security(bearer_scheme)],
)

NamespacePath = Annotated[
    str,
    Path(
        description="The tenant. A token for another namespace gets 404 here.",
        pattern=NAMESPACE_PATTERN,
        examples=["acme"],
    ),
]
PurchaseIdPath = Annotated[
    str,
    Path(
        description="The purchase id (a UUID; anything else is 404 credit_purchase_not_found).",
        json_schema_extra={"format": "uuid"},
        examples=["52733707-5a1f-5aee-ae67-54ec12970035"],
    ),
]

_READ_ERRORS = ("unauthenticated", "credit_purchase_not_found", "validation_failed")
_WRITE_ERRORS = (
    "unauthenticated",
    "forbidden",
    "request_too_large",
    "unsupported_media_type",
    "validation_failed",
    "store_unavailable",
)


def state_errors(command: Command) -> tuple[str, ...]:
    """The codes the transition table can refuse ``command`` with, in table order; a situation
    the table has no row for is ``invalid_transition`` (``rule_for``)."""
    codes = [rule.error for rule in RULES if rule.command is command and rule.error is not None]
    return tuple(dict.fromkeys([*codes, "invalid_transition"]))


_COMMAND_ERRORS = (
    *_WRITE_ERRORS,
    "credit_purchase_not_found",
    "idempotency_key_reused",
    "concurrent_modification",
    "version_mismatch",
)
"""What any command about one purchase can be refused with, whatever its rules."""


def _errors(command: Command, *credit_errors: str) -> tuple[str, ...]:
    """A purchase command's problem codes: its rows of the table, then what the customer's credit
    can refuse it with (the table cannot tell), then the common ones."""
    return (*state_errors(command), *credit_errors, *_COMMAND_ERRORS)


_AUTHORIZE_ERRORS = _errors(Command.AUTHORIZE)
_SETTLE_ERRORS = _errors(Command.SETTLE)
_VOID_ERRORS = _errors(Command.VOID, "nothing_to_void", "credit_grant_expired")
_INVOICE_ERRORS = _errors(Command.INVOICE_CREATED)
_FAIL_ERRORS = _errors(Command.FAIL)
_REFUND_ERRORS = _errors(Command.REFUND, "nothing_to_refund", "refund_exceeds_remaining")


def purchase_location(namespace: str, purchase_id: UUID) -> str:
    return f"{PREFIX.format(namespace=namespace)}/{purchase_id}"


def _purchase_id(raw: str) -> UUID:
    """The path's purchase id; text that is no UUID names no purchase (and says nothing more)."""
    try:
        return UUID(raw)
    except ValueError:
        raise CreditPurchaseNotFoundError(f"credit purchase {raw[:64]} not found") from None


def _purchase_command(
    namespace: str, purchase_id: str, idempotency_key: str | None, if_match: str | None
) -> dict[str, Any]:
    """The fields every command about one purchase takes from the path and the headers."""
    return {
        "namespace": namespace,
        "purchase_id": _purchase_id(purchase_id),
        "idempotency_key": idempotency_key,
        "expected_version": expected_version(if_match),
    }


def _payment_fields(
    namespace: str,
    purchase_id: str,
    idempotency_key: str | None,
    if_match: str | None,
    body: PaymentUpdate | None,
) -> dict[str, Any]:
    """What an authorize or a settle request says, as the payment command's fields."""
    return {
        **_purchase_command(namespace, purchase_id, idempotency_key, if_match),
        "external_reference": body.external_reference if body else None,
    }


def _answer(
    outcome: Outcome,
    ledger: CreditLedger,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The command's answer: the purchase as JSON, with ``ETag``, ``X-Position`` and, for a
    replay, ``Idempotent-Replayed``."""
    answer = {**(headers or {}), "ETag": entity_tag(outcome.purchase.version)}
    position = outcome.position
    if position is None:
        # A replay wrote nothing (or a store did not report positions): the log's head is at or
        # past the original write, which is what read-your-writes needs. The answer stands even
        # if the head cannot be read.
        with contextlib.suppress(StoreUnavailableError):
            position = ledger.head_position()
    if position is not None:
        answer["X-Position"] = str(position)
    if outcome.replayed:
        answer["Idempotent-Replayed"] = "true"
    # Serialized once, here: returned as a model, the view would be dumped, validated against
    # the response model and serialized again by FastAPI, about a tenth of the server's CPU per
    # command (py-spy). The declared response_model still documents it in the OpenAPI.
    return Response(
        outcome.purchase.model_dump_json(),
        status_code=status_code,
        headers=answer,
        media_type="application/json",
    )


def _outcome(outcome: Outcome) -> str:
    if outcome.replayed:
        return "replayed"
    return "created" if outcome.created else "applied"


@router.post(
    "",
    status_code=201,
    response_model=PurchaseView,
    operation_id="createCreditPurchase",
    summary="Initiate a credit purchase",
    responses={
        201: purchase_response(
            "Created: the credits are granted. Location names the purchase.", location=True
        ),
        200: {
            **purchase_response(
                "A replay: the same Idempotency-Key and body as an earlier create, answered with "
                "that purchase (Idempotent-Replayed: true); nothing new was written.",
                location=True,
            ),
            "model": PurchaseView,
        },
        **problem_responses(*_WRITE_ERRORS, "not_found", "idempotency_key_reused"),
    },
)
def create_purchase(
    *,
    namespace: NamespacePath,
    body: Annotated[PurchaseCreate, Body()],
    ledger: LedgerDep,
    metrics: MetricsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    command = body.command(namespace, idempotency_key)
    outcome = metrics.run_command("initiate", lambda: ledger.initiate(command), _outcome)
    return _answer(
        outcome,
        ledger,
        status_code=200 if outcome.replayed else 201,
        headers={"Location": purchase_location(namespace, outcome.purchase.id)},
    )


@router.get(
    "",
    response_model=PurchaseList,
    operation_id="listCreditPurchases",
    summary="List credit purchases, oldest first, a page at a time",
    description="From the purchases read model, which follows the event log: pass min_position "
    "(a command's X-Position) to read your own writes.",
    responses=problem_responses(
        "unauthenticated", "not_found", "validation_failed", "projection_behind"
    ),
)
def list_purchases(
    *,
    namespace: NamespacePath,
    read_models: ReadModelsDep,
    customer_id: Annotated[
        StorableText | None,
        Query(description="Only this customer's purchases.", examples=["cust-1"]),
    ] = None,
    status: Annotated[
        str | None,
        Query(
            description="Only purchases in this status (invalid_status otherwise).",
            json_schema_extra={"enum": [s.value for s in PurchaseStatus]},
        ),
    ] = None,
    limit: Annotated[
        int,
        Query(
            description=f"Items per page, 1 to {MAX_LIMIT} (limit_out_of_range otherwise).",
            json_schema_extra={"minimum": 1, "maximum": MAX_LIMIT},
        ),
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(description="The next_cursor of the previous page (invalid_cursor otherwise)."),
    ] = None,
) -> PurchaseList:
    # limit, status and cursor are judged together by the read models, so a request with
    # several problems hears of all of them in one 422.
    page = read_models.list_purchases(
        namespace, customer_id=customer_id, status=status, limit=limit, cursor=cursor
    )
    return PurchaseList(items=page.items, next_cursor=page.next_cursor, position=page.position)


def record_payment(
    *,
    request: Request,
    namespace: NamespacePath,
    purchase_id: PurchaseIdPath,
    ledger: LedgerDep,
    metrics: MetricsDep,
    idempotency_key: IdempotencyKeyHeader = None,
    if_match: IfMatchHeader = None,
    body: Annotated[PaymentUpdate | None, Body()] = None,
) -> Response:
    # One function serves /authorize and /settle (registered below): the path says which.
    fields = _payment_fields(namespace, purchase_id, idempotency_key, if_match, body)
    if request.url.path.endswith("/settle"):
        settlement = SettlePayment(**fields)
        outcome = metrics.run_command("settle", lambda: ledger.settle(settlement), _outcome)
    else:
        authorization = AuthorizePayment(**fields)
        outcome = metrics.run_command(
            "authorize", lambda: ledger.authorize(authorization), _outcome
        )
    return _answer(outcome, ledger)


router.post(
    "/{purchase_id}/authorize",
    response_model=PurchaseView,
    operation_id="authorizePayment",
    summary="Record that the external payment was authorized",
    responses={
        200: purchase_response(
            "The purchase after the authorization (or, with Idempotent-Replayed: true, as the "
            "earlier request with this key left it)."
        ),
        **problem_responses(*_AUTHORIZE_ERRORS),
    },
)(record_payment)
router.post(
    "/{purchase_id}/settle",
    response_model=PurchaseView,
    operation_id="settlePayment",
    summary="Record that the external payment settled",
    description="From active.payment.pending an external purchase is authorized, then "
    "settled: two events, in that order. An invoice purchase must be authorized first "
    "(cannot_settle_not_authorized_payment).",
    responses={
        200: purchase_response(
            "The purchase after the settlement (or, with Idempotent-Replayed: true, as the "
            "earlier request with this key left it)."
        ),
        **problem_responses(*_SETTLE_ERRORS),
    },
)(record_payment)


@router.post(
    "/{purchase_id}/void",
    response_model=PurchaseView,
    operation_id="voidCreditPurchase",
    summary="Forfeit what remains of the purchase's credit",
    description="What remains of the grant now is forfeited (booked to breakage) and shown as "
    "voided in the purchase; what was consumed stays consumed and the payment is untouched "
    "(still owed, authorized or settled as before). The status does not change. Refused when "
    "the credit has expired (credit_grant_expired), when nothing remains or it was voided "
    "already (nothing_to_void), or when no credit was granted yet (credits_not_granted).",
    responses={
        200: purchase_response(
            "The purchase after the void (or, with Idempotent-Replayed: true, as the earlier "
            "request with this key left it)."
        ),
        **problem_responses(*_VOID_ERRORS),
    },
)
def void_purchase(
    *,
    namespace: NamespacePath,
    purchase_id: PurchaseIdPath,
    ledger: LedgerDep,
    metrics: MetricsDep,
    idempotency_key: IdempotencyKeyHeader = None,
    if_match: IfMatchHeader = None,
    body: Annotated[VoidRequest | None, Body()] = None,
) -> Response:
    command = VoidPurchase(
        **_purchase_command(namespace, purchase_id, idempotency_key, if_match),
        reason=body.reason if body else None,
    )
    outcome = metrics.run_command("void", lambda: ledger.void(command), _outcome)
    return _answer(outcome, ledger)


def _replayed_or_after(what: str) -> dict[str, Any]:
    return purchase_response(
        f"The purchase after the {what} (or, with Idempotent-Replayed: true, as the earlier "
        "request with this key left it)."
    )


@router.post(
    "/{purchase_id}/invoice",
    response_model=PurchaseView,
    operation_id="createInvoice",
    summary="Record the invoice that bills an invoice purchase: its credits are granted",
    description="Invoice purchases only (settlement.type invoice), once: the purchase moves "
    "from created to active.payment.pending and its credit is granted now (the ledger books "
    "it, realizations.credit_grant and realizations.invoice are set). Then authorize when the "
    "invoice is approved and settle when it is paid. Refused as invoice_already_created after "
    "the first, invalid_transition for other settlement types, payment_already_failed after a "
    "failure.",
    responses={200: _replayed_or_after("invoice"), **problem_responses(*_INVOICE_ERRORS)},
)
def create_invoice(
    *,
    namespace: NamespacePath,
    purchase_id: PurchaseIdPath,
    body: Annotated[InvoiceRequest, Body()],
    ledger: LedgerDep,
    metrics: MetricsDep,
    idempotency_key: IdempotencyKeyHeader = None,
    if_match: IfMatchHeader = None,
) -> Response:
    command = CreateInvoice(
        **_purchase_command(namespace, purchase_id, idempotency_key, if_match),
        invoice_id=body.invoice_id,
        line_id=body.line_id,
    )
    outcome = metrics.run_command("invoice", lambda: ledger.create_invoice(command), _outcome)
    return _answer(outcome, ledger)


@router.post(
    "/{purchase_id}/fail",
    response_model=PurchaseView,
    operation_id="failPayment",
    summary="Record that the payment failed: the unconsumed credit is taken back",
    description="From any status before settlement (an invoice purchase's even before its "
    "invoice): the purchase moves to final.payment_failed and no payment command is accepted "
    "any more (payment_already_failed). What remains of the credit is taken back "
    '("revoked"); what was consumed stays owed (realizations.payment_failure.owed, an open '
    "receivable); an authorization is reversed. After settlement money goes back by refund "
    "instead (payment_already_settled).",
    responses={200: _replayed_or_after("failure"), **problem_responses(*_FAIL_ERRORS)},
)
def fail_payment(
    *,
    namespace: NamespacePath,
    purchase_id: PurchaseIdPath,
    body: Annotated[FailRequest, Body()],
    ledger: LedgerDep,
    metrics: MetricsDep,
    idempotency_key: IdempotencyKeyHeader = None,
    if_match: IfMatchHeader = None,
) -> Response:
    command = FailPayment(
        **_purchase_command(namespace, purchase_id, idempotency_key, if_match),
        reason=body.reason,
        external_reference=body.external_reference,
    )
    outcome = metrics.run_command("fail", lambda: ledger.fail_payment(command), _outcome)
    return _answer(outcome, ledger)


@router.post(
    "/{purchase_id}/refund",
    response_model=PurchaseView,
    operation_id="refundPayment",
    summary="Give back part or all of a settled payment",
    description="After settlement only (payment_not_settled before; fail the payment instead). "
    "amount credits are taken back from what remains unconsumed (null: all of it) and the "
    "money they were paid for goes back: realizations.refunds sums every refund (credit "
    "amount and cash_amount; refunding everything returns exactly the payment). Several "
    "refunds may follow one another; the status stays final. Refused with "
    "refund_exceeds_remaining (its problem has a remaining member) and nothing_to_refund.",
    responses={200: _replayed_or_after("refund"), **problem_responses(*_REFUND_ERRORS)},
)
def refund_payment(
    *,
    namespace: NamespacePath,
    purchase_id: PurchaseIdPath,
    body: Annotated[RefundRequest, Body()],
    ledger: LedgerDep,
    metrics: MetricsDep,
    idempotency_key: IdempotencyKeyHeader = None,
    if_match: IfMatchHeader = None,
) -> Response:
    command = RefundPayment(
        **_purchase_command(namespace, purchase_id, idempotency_key, if_match),
        amount=body.amount,
        reason=body.reason,
        external_reference=body.external_reference,
    )
    outcome = metrics.run_command("refund", lambda: ledger.refund(command), _outcome)
    return _answer(outcome, ledger)


@router.get(
    "/{purchase_id}",
    response_model=PurchaseView,
    operation_id="getCreditPurchase",
    summary="A credit purchase: now, at a version, or as of a time",
    responses={
        200: {
            "description": "The purchase; ETag is the version shown.",
            "headers": {"ETag": {"description": 'e.g. "3"', "schema": {"type": "string"}}},
        },
        **problem_responses(*_READ_ERRORS, "store_unavailable"),
    },
)
def get_purchase(
    *,
    namespace: NamespacePath,
    purchase_id: PurchaseIdPath,
    ledger: LedgerDep,
    response: Response,
    version: Annotated[
        int | None,
        Query(
            ge=1,
            description="The purchase as it was at this version (404 if it never reached it).",
        ),
    ] = None,
    as_of: Annotated[
        AwareTimestamp | None,
        Query(
            description="The purchase as it stood at this time, inclusive (RFC 3339 with an "
            "offset; 404 if it did not exist yet). With version too, both apply.",
        ),
    ] = None,
) -> PurchaseView:
    purchase = ledger.get_purchase(
        namespace, _purchase_id(purchase_id), version=version, as_of=as_of
    )
    response.headers["ETag"] = entity_tag(purchase.version)
    return purchase


@router.get(
    "/{purchase_id}/events",
    response_model=HistoryPage,
    operation_id="getCreditPurchaseHistory",
    summary="A credit purchase's events, oldest first",
    responses={
        200: {
            "description": "Every event, with the status it left the purchase in.",
        },
        **problem_responses("unauthenticated", "credit_purchase_not_found", "store_unavailable"),
    },
)
def purchase_history(
    namespace: NamespacePath, purchase_id: PurchaseIdPath, ledger: LedgerDep
) -> HistoryPage:
    return HistoryPage(items=ledger.purchase_history(namespace, _purchase_id(purchase_id)))
