"""Ids that must be the same on every replay, derived rather than drawn at random."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from uuid import UUID, uuid5

PURCHASE_KEY_NAMESPACE = UUID("6f1c7a52-2d0e-5d6b-9a53-3c1f6f0e9a41")
"""Root of purchase ids derived from (namespace, idempotency key). Never change it."""


class LedgerStep(StrEnum):
    CREDIT_GRANT = "credit_grant"
    PAYMENT_AUTHORIZATION = "payment_authorization"
    PAYMENT_SETTLEMENT = "payment_settlement"
    VOID = "void"
    PAYMENT_FAILURE = "payment_failure"
    REFUND = "refund"
    CONSUMPTION = "consumption"
    EXPIRY = "expiry"


def purchase_id_for_key(namespace: str, idempotency_key: str) -> UUID:
    """The one purchase an initiate with this key may create, so racing creates collide."""
    # The separator cannot occur in a namespace, so ("a", "b/c") and ("a/b", "c") differ.
    return uuid5(PURCHASE_KEY_NAMESPACE, f"{namespace}/{idempotency_key}")


def transaction_group_id(purchase_id: UUID, step: LedgerStep) -> UUID:
    """The ledger transaction group of one step of one purchase; a replay derives the same id."""
    return uuid5(purchase_id, step.value)


def refund_group_id(purchase_id: UUID, version: int) -> UUID:
    """The ledger transaction group of the refund recorded as ``version`` of a purchase (a
    purchase may be refunded several times, so the version tells its refunds apart)."""
    return uuid5(purchase_id, f"{LedgerStep.REFUND.value}/{version}")


WALLET_NAMESPACE = UUID("0b6f3d0e-8c1a-5f7e-b2d4-6a9c1e3f5d70")
"""Root of credit-wallet ids derived from (namespace, currency, customer). Never change it."""


@lru_cache(maxsize=65_536)
def wallet_id_for(namespace: str, customer_id: str, currency: str) -> UUID:
    """The one credit wallet of a customer in a currency: every process derives the same id."""
    # Neither a namespace nor a currency code contains "/", so the customer id (which may) goes
    # last and the three parts cannot be confused.
    return uuid5(WALLET_NAMESPACE, f"{namespace}/{currency}/{customer_id}")


def consumption_id_for_key(wallet_id: UUID, idempotency_key: str) -> UUID:
    """The one consumption a keyed consume may record in this wallet."""
    return uuid5(wallet_id, f"consumption/{idempotency_key}")


def wallet_group_id(wallet_id: UUID, step: LedgerStep, version: int, purchase_id: UUID) -> UUID:
    """The ledger transaction group one wallet event books against one grant."""
    return uuid5(wallet_id, f"{step.value}/{version}/{purchase_id}")
