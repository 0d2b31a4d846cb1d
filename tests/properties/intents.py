"""Turning an initiate request into the domain's ``normalize_intent`` call, as the ledger does."""

from __future__ import annotations

from datetime import datetime

from application.commands import InitiatePurchase
from domain.intent import PurchaseIntent, normalize_intent


def normalize(request: InitiatePurchase, now: datetime) -> PurchaseIntent:
    return normalize_intent(
        now=now,
        namespace=request.namespace,
        customer_id=request.customer_id,
        currency=request.currency,
        credit_amount=request.credit_amount,
        settlement_type=request.settlement.type,
        cost_basis=request.cost_basis,
        initial_status=request.settlement.initial_status,
        settlement_currency=request.settlement.currency,
        priority=request.priority,
        expires_at=request.expires_at,
        feature_filters=request.feature_filters,
        name=request.name,
        metadata=request.metadata,
    )
