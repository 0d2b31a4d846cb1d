"""Examples of the OpenAPI document: request and response bodies (problem examples live with the
problem responses in ``openapi.py``).

Plain dicts, attached after FastAPI's encoding, which would drop their null values. The values
are what the app answers for the scenario each one names (ids and times made up).
"""

from __future__ import annotations

from typing import Any

PURCHASE_ID = "52733707-5a1f-5aee-ae67-54ec12970035"
_GRANT = {
    "transaction_group_id": "5c548527-387a-5ef2-a843-a03c55a0960e",
    "granted_at": "2026-01-01T12:00:00Z",
}
_UNTOUCHED_CREDIT = {
    "remaining": "100.12",
    "consumed": "0",
    "expired": "0",
    "voided": "0",
    "revoked": "0",
    "refunded": "0",
}
PENDING_PURCHASE_EXAMPLE: dict[str, Any] = {
    "id": PURCHASE_ID,
    "namespace": "acme",
    "customer_id": "cust-1",
    "currency": "USD",
    "credit_amount": "100.12",
    "cost_basis": "0.5",
    "payment_amount": "50.06",
    "settlement": {"type": "external", "initial_status": "created"},
    "priority": 10,
    "expires_at": None,
    "feature_filters": ["api_calls"],
    "name": "Top-up",
    "metadata": {"order": "A-1"},
    "status": "active.payment.pending",
    "meta_status": "active",
    **_UNTOUCHED_CREDIT,
    "realizations": {
        "credit_grant": _GRANT,
        "external_payment": None,
        "invoice": None,
        "invoice_payment": None,
        "void": None,
        "expiry": None,
        "payment_failure": None,
        "refunds": None,
    },
    "version": 1,
    "created_at": "2026-01-01T12:00:00Z",
    "updated_at": "2026-01-01T12:00:00Z",
}
_AUTHORIZED_REF = {
    "transaction_group_id": "4f0f9a80-95b8-52b4-9082-b7644a77563c",
    "at": "2026-01-01T12:01:00Z",
    "external_reference": "psp-123",
}
_SETTLED_REF = {
    "transaction_group_id": "fb6838cd-3ee0-5795-a44a-915798ab0eb2",
    "at": "2026-01-01T12:02:00Z",
    "external_reference": "psp-123",
}
AUTHORIZED_PURCHASE_EXAMPLE: dict[str, Any] = {
    **PENDING_PURCHASE_EXAMPLE,
    "status": "active.payment.authorized",
    "realizations": {
        **PENDING_PURCHASE_EXAMPLE["realizations"],
        "external_payment": {
            "status": "authorized",
            "amount": "50.06",
            "authorized": _AUTHORIZED_REF,
            "settled": None,
        },
    },
    "version": 2,
    "updated_at": "2026-01-01T12:01:00Z",
}
FINAL_PURCHASE_EXAMPLE: dict[str, Any] = {
    **PENDING_PURCHASE_EXAMPLE,
    "status": "final",
    "meta_status": "final",
    "realizations": {
        **PENDING_PURCHASE_EXAMPLE["realizations"],
        "external_payment": {
            "status": "settled",
            "amount": "50.06",
            "authorized": _AUTHORIZED_REF,
            "settled": _SETTLED_REF,
        },
    },
    "version": 3,
    "updated_at": "2026-01-01T12:02:00Z",
}
_CONSUMPTION_ID = "904f54dc-fe22-527d-a9f9-d4238e25fb1e"
VOIDED_PURCHASE_EXAMPLE: dict[str, Any] = {
    **FINAL_PURCHASE_EXAMPLE,
    "remaining": "0.00",
    "consumed": "12.50",
    "voided": "87.62",
    "realizations": {
        **FINAL_PURCHASE_EXAMPLE["realizations"],
        "void": {
            "transaction_group_id": "870fdad4-820c-5543-ae18-b201da87af49",
            "at": "2026-01-02T09:00:00Z",
            "amount": "87.62",
            "reason": "granted by mistake",
        },
    },
    "version": 4,
    "updated_at": "2026-01-02T09:00:00Z",
}
EXPIRED_PURCHASE_EXAMPLE: dict[str, Any] = {
    **FINAL_PURCHASE_EXAMPLE,
    "expires_at": "2026-02-01T00:00:00Z",
    "remaining": "0.00",
    "consumed": "12.50",
    "expired": "87.62",
    "realizations": {
        **FINAL_PURCHASE_EXAMPLE["realizations"],
        "expiry": {"at": "2026-02-01T00:00:00Z", "amount": "87.62", "recorded": True},
    },
}
INVOICE_PURCHASE_EXAMPLE: dict[str, Any] = {
    **PENDING_PURCHASE_EXAMPLE,
    "settlement": {"type": "invoice", "initial_status": None},
    "status": "created",
    "meta_status": "created",
    "remaining": "0.00",
    "realizations": {**PENDING_PURCHASE_EXAMPLE["realizations"], "credit_grant": None},
}
INVOICED_PURCHASE_EXAMPLE: dict[str, Any] = {
    **INVOICE_PURCHASE_EXAMPLE,
    "status": "active.payment.pending",
    "meta_status": "active",
    "remaining": "100.12",
    "realizations": {
        **PENDING_PURCHASE_EXAMPLE["realizations"],
        "credit_grant": {**_GRANT, "granted_at": "2026-01-01T12:05:00Z"},
        "invoice": {
            "invoice_id": "inv-2026-0042",
            "line_id": "line-1",
            "created_at": "2026-01-01T12:05:00Z",
        },
    },
    "version": 2,
    "updated_at": "2026-01-01T12:05:00Z",
}
FAILED_PURCHASE_EXAMPLE: dict[str, Any] = {
    **AUTHORIZED_PURCHASE_EXAMPLE,
    "status": "final.payment_failed",
    "meta_status": "final",
    "remaining": "0.00",
    "consumed": "12.50",
    "revoked": "87.62",
    "realizations": {
        **AUTHORIZED_PURCHASE_EXAMPLE["realizations"],
        "external_payment": {
            "status": "failed",
            "amount": "50.06",
            "authorized": _AUTHORIZED_REF,
            "settled": None,
        },
        "payment_failure": {
            "transaction_group_id": "91b60015-3416-53c1-8194-8b2743dc6250",
            "at": "2026-01-01T13:00:00Z",
            "reason": "card declined",
            "revoked": "87.62",
            "released": "0.00",
            "owed": "12.50",
            "external_reference": "psp-123",
        },
    },
    "version": 3,
    "updated_at": "2026-01-01T13:00:00Z",
}
REFUNDED_PURCHASE_EXAMPLE: dict[str, Any] = {
    **FINAL_PURCHASE_EXAMPLE,
    "remaining": "77.62",
    "consumed": "12.50",
    "refunded": "10.00",
    "realizations": {
        **FINAL_PURCHASE_EXAMPLE["realizations"],
        "refunds": {
            "count": 1,
            "amount": "10.00",
            "cash_amount": "5.00",
            "last_transaction_group_id": "27208e27-7b7a-500d-9c4f-60fb7d9d7f06",
            "last_at": "2026-01-02T09:00:00Z",
        },
    },
    "version": 4,
    "updated_at": "2026-01-02T09:00:00Z",
}
CONSUMPTION_EXAMPLE: dict[str, Any] = {
    "id": _CONSUMPTION_ID,
    "namespace": "acme",
    "customer_id": "cust-1",
    "currency": "USD",
    "amount": "12.50",
    "feature": "api_calls",
    "reference": "usage-evt-1",
    "allocations": [{"purchase_id": PURCHASE_ID, "amount": "12.50"}],
    "balance_after": "87.62",
    "consumed_at": "2026-01-01T13:00:00Z",
    "sequence": 2,
}
SPLIT_CONSUMPTION_EXAMPLE: dict[str, Any] = {
    **CONSUMPTION_EXAMPLE,
    "amount": "120.00",
    "allocations": [
        {"purchase_id": PURCHASE_ID, "amount": "100.12"},
        {"purchase_id": "0b4d8f5e-6f57-5b1c-9b34-2f6f3c1f9a10", "amount": "19.88"},
    ],
    "balance_after": "30.12",
    "sequence": 3,
}
CREDITS_EXAMPLE: dict[str, Any] = {
    "namespace": "acme",
    "customer_id": "cust-1",
    "currency": "USD",
    "as_of": "2026-01-01T13:00:00Z",
    "balance": "87.62",
    "grants": [
        {
            "purchase_id": PURCHASE_ID,
            "amount": "100.12",
            "remaining": "87.62",
            "consumed": "12.50",
            "priority": 10,
            "expires_at": None,
            "feature_filters": ["api_calls"],
            "granted_at": "2026-01-01T12:00:00Z",
        }
    ],
}
_ENTRY: dict[str, Any] = {
    "purchase_id": None,
    "consumption_id": None,
    "allocations": [],
}
CREDIT_HISTORY_EXAMPLE: dict[str, Any] = {
    "items": [
        {
            **_ENTRY,
            "sequence": 1,
            "type": "granted",
            "amount": "100.12",
            "balance_before": "0",
            "balance_after": "100.12",
            "purchase_id": PURCHASE_ID,
            "effective_at": "2026-01-01T12:00:00Z",
            "recorded_at": "2026-01-01T12:00:00Z",
        },
        {
            **_ENTRY,
            "sequence": 2,
            "type": "consumed",
            "amount": "12.50",
            "balance_before": "100.12",
            "balance_after": "87.62",
            "consumption_id": _CONSUMPTION_ID,
            "allocations": [{"purchase_id": PURCHASE_ID, "amount": "12.50"}],
            "effective_at": "2026-01-01T13:00:00Z",
            "recorded_at": "2026-01-01T13:00:00Z",
        },
        {
            **_ENTRY,
            "sequence": 3,
            "type": "expired",
            "amount": "87.62",
            "balance_before": "87.62",
            "balance_after": "0.00",
            "purchase_id": PURCHASE_ID,
            "effective_at": "2026-02-01T00:00:00Z",
            "recorded_at": "2026-02-01T00:00:07Z",
        },
    ],
    "next_after": None,
}
HISTORY_EXAMPLE_INITIATED_DATA: dict[str, Any] = {
    "idempotency_key": "order-A-1",
    "request_fingerprint": "ae17c975…",
    "namespace": "acme",
    "customer_id": "cust-1",
    "currency": "USD",
    "credit_amount": "100.12",
    "cost_basis": "0.5",
    "settlement_type": "external",
    "initial_payment_status": "created",
    "priority": 10,
    "expires_at": None,
    "feature_filters": ["api_calls"],
    "name": "Top-up",
    "metadata": {"order": "A-1"},
    "credit_grant_transaction_group_id": _GRANT["transaction_group_id"],
    "granted_at": "2026-01-01T12:00:00Z",
}
HISTORY_EXAMPLE: dict[str, Any] = {
    "items": [
        {
            "version": 1,
            "type": "Initiated",
            "recorded_at": "2026-01-01T12:00:00Z",
            "data": HISTORY_EXAMPLE_INITIATED_DATA,
            "status_after": "active.payment.pending",
        },
        {
            "version": 2,
            "type": "PaymentAuthorized",
            "recorded_at": "2026-01-01T12:01:00Z",
            "data": {
                "idempotency_key": None,
                "request_fingerprint": "bc2048d8…",
                "amount": "50.06",
                **_AUTHORIZED_REF,
            },
            "status_after": "active.payment.authorized",
        },
        {
            "version": 3,
            "type": "PaymentSettled",
            "recorded_at": "2026-01-01T12:02:00Z",
            "data": {"idempotency_key": None, "request_fingerprint": "207dcb7b…", **_SETTLED_REF},
            "status_after": "final",
        },
    ]
}

_WALLET_ID = "6f1f9a1e-2d5c-5d0b-8f7e-3b0c1d2e4f50"
FEED_EXAMPLE: dict[str, Any] = {
    "items": [
        {
            "position": 41,
            "namespace": "acme",
            "aggregate": "credit_purchase",
            "aggregate_id": PURCHASE_ID,
            "purchase_id": PURCHASE_ID,
            "version": 1,
            "type": "Initiated",
            "recorded_at": "2026-01-01T12:00:00Z",
            "data": HISTORY_EXAMPLE_INITIATED_DATA,
        },
        {
            "position": 42,
            "namespace": "acme",
            "aggregate": "credit_wallet",
            "aggregate_id": _WALLET_ID,
            "purchase_id": PURCHASE_ID,
            "version": 1,
            "type": "GrantAdded",
            "recorded_at": "2026-01-01T12:00:00Z",
            "data": {
                "namespace": "acme",
                "customer_id": "cust-1",
                "currency": "USD",
                "idempotency_key": None,
                "request_fingerprint": None,
                "purchase_id": PURCHASE_ID,
                "amount": "100.12",
                "cost_basis": "0.5",
                "priority": 10,
                "expires_at": None,
                "feature_filters": ["api_calls"],
                "granted_at": "2026-01-01T12:00:00Z",
            },
        },
        {
            "position": 57,
            "namespace": "acme",
            "aggregate": "credit_wallet",
            "aggregate_id": _WALLET_ID,
            "purchase_id": None,
            "version": 2,
            "type": "CreditsConsumed",
            "recorded_at": "2026-01-01T13:00:00Z",
            "data": {
                "namespace": "acme",
                "customer_id": "cust-1",
                "currency": "USD",
                "idempotency_key": "usage-evt-1",
                "request_fingerprint": "5d1c0e2a…",
                "consumption_id": _CONSUMPTION_ID,
                "amount": "12.50",
                "feature_key": "api_calls",
                "usage_reference": "usage-evt-1",
                "allocations": [{"purchase_id": PURCHASE_ID, "amount": "12.50"}],
                "balance_after": "87.62",
                "consumed_at": "2026-01-01T13:00:00Z",
            },
        },
    ],
    "next_after": None,
}

CREATE_EXAMPLES = {
    "external": {
        "summary": "External payment, pending until authorized and settled",
        "value": {
            "customer_id": "cust-1",
            "currency": "USD",
            "credit_amount": "100.123",
            "cost_basis": "0.5",
            "settlement": {"type": "external", "initial_status": "created"},
            "priority": 10,
            "expires_at": None,
            "feature_filters": ["api_calls"],
            "name": "Top-up",
            "metadata": {"order": "A-1"},
        },
    },
    "already_settled": {
        "summary": "External payment that settled before the purchase was recorded",
        "value": {
            "customer_id": "cust-2",
            "currency": "EUR",
            "credit_amount": "25",
            "cost_basis": "1.1",
            "settlement": {"type": "external", "initial_status": "settled"},
        },
    },
    "invoice": {
        "summary": "Billed on an invoice: nothing granted until its invoice is created",
        "value": {
            "customer_id": "cust-4",
            "currency": "USD",
            "credit_amount": "100.12",
            "cost_basis": "0.5",
            "settlement": {"type": "invoice"},
        },
    },
    "promotional": {
        "summary": "Promotional credit: no cost basis, final at once",
        "value": {
            "customer_id": "cust-3",
            "currency": "USD",
            "credit_amount": "10",
            "settlement": {"type": "promotional"},
        },
    },
}
PAYMENT_EXAMPLES = {
    "with_reference": {
        "summary": "With the payment provider's reference",
        "value": {"external_reference": "psp-123"},
    },
    "empty": {"summary": "No body fields", "value": {}},
}
CONSUME_EXAMPLES = {
    "for_a_feature": {
        "summary": "Spend on a feature, with your usage record's id",
        "value": {
            "currency": "USD",
            "amount": "12.5",
            "feature": "api_calls",
            "reference": "usage-evt-1",
        },
    },
    "any_grant": {
        "summary": "Spend from grants without feature filters",
        "value": {"currency": "USD", "amount": "1"},
    },
}
VOID_EXAMPLES = {
    "with_reason": {"summary": "With a reason", "value": {"reason": "granted by mistake"}},
    "empty": {"summary": "No body fields", "value": {}},
}
INVOICE_EXAMPLES = {
    "invoice_line": {
        "summary": "The invoice line that bills the purchase",
        "value": {"invoice_id": "inv-2026-0042", "line_id": "line-1"},
    },
}
FAIL_EXAMPLES = {
    "declined": {
        "summary": "Declined, with the provider's reference",
        "value": {"reason": "card declined", "external_reference": "psp-123"},
    },
    "uncollectible": {
        "summary": "An invoice that was never paid",
        "value": {"reason": "invoice uncollectible"},
    },
}
REFUND_EXAMPLES = {
    "partial": {
        "summary": "Part of the credit (and so of the payment)",
        "value": {"amount": "10.00", "reason": "customer asked"},
    },
    "the_rest": {"summary": "Everything that remains unconsumed", "value": {"amount": None}},
}
