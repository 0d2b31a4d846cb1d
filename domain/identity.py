"""Ids that must be the same on every replay, derived rather than drawn at random."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID, uuid5

PURCHASE_KEY_NAMESPACE = UUID("6f1c7a52-2d0e-5d6b-9a53-3c1f6f0e9a41")
"""Root of purchase ids derived from (namespace, idempotency key). Never change it."""


class LedgerStep(StrEnum):
    CREDIT_GRANT = "credit_grant"
    PAYMENT_AUTHORIZATION = "payment_authorization"
    PAYMENT_SETTLEMENT = "payment_settlement"


def purchase_id_for_key(namespace: str, idempotency_key: str) -> UUID:
    """The one purchase an initiate with this key may create, so racing creates collide."""
    # The separator cannot occur in a namespace, so ("a", "b/c") and ("a/b", "c") differ.
    return uuid5(PURCHASE_KEY_NAMESPACE, f"{namespace}/{idempotency_key}")


def transaction_group_id(purchase_id: UUID, step: LedgerStep) -> UUID:
    """The ledger transaction group of one step of one purchase; a replay derives the same id."""
    return uuid5(purchase_id, step.value)
