"""The HTTP app in-process, for tests of what needs no server process: FastAPI's TestClient."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.http.app import create_app
from creditledger.infrastructure.settings import Settings

with warnings.catch_warnings():
    # Starlette would rather run its test client on httpx2; httpx works the same here.
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

__all__ = [
    "ACME_TOKEN",
    "ADMIN_TOKEN",
    "API_KEYS",
    "GLOBEX_TOKEN",
    "TestClient",
    "bearer",
    "client_for",
    "purchase_body",
    "settings",
]

ACME_TOKEN = "acme-token-1"  # noqa: S105 - a test's token
GLOBEX_TOKEN = "globex-token-1"  # noqa: S105 - a test's token
ADMIN_TOKEN = "admin-token-1"  # noqa: S105 - a test's token
API_KEYS = f"acme={ACME_TOKEN},globex={GLOBEX_TOKEN}"


def settings(**values: Any) -> Settings:
    """Settings for an in-process app; tokens only where a test asks for them."""
    values.setdefault("database_url", "memory://")
    values.setdefault("api_keys", None)
    values.setdefault("admin_token", None)
    return Settings(**values)


@contextmanager
def client_for(ledger: CreditLedger, **values: Any) -> Iterator[TestClient]:
    """A client of an app over this ledger (which the test's fixture closes)."""
    with TestClient(create_app(settings(**values), ledger=ledger)) as client:
        yield client


def purchase_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": "cust-1",
        "currency": "USD",
        "credit_amount": "100.123",
        "cost_basis": "0.5",
        "settlement": {"type": "external"},
    }
    body.update(changes)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
