"""A 405 names every method of its path (RFC 9110 15.5.6); ``/docs`` needs no network."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from creditledger.infrastructure.bootstrap import open_ledger
from tests.infrastructure.http_app import TestClient, client_for

PURCHASES = "/v1/namespaces/acme/credit-purchases"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    # Routing and static files: nothing here depends on the store.
    with open_ledger("memory://") as ledger, client_for(ledger) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", PURCHASES, "GET, POST"),
        ("DELETE", PURCHASES, "GET, POST"),
        ("PUT", f"{PURCHASES}/00000000-0000-0000-0000-000000000001", "GET"),
    ],
)
def test_a_405_lists_every_method_of_the_path(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["Allow"] == allowed


def test_docs_load_swagger_ui_from_this_server(client: TestClient) -> None:
    page = client.get("/docs")
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    scripts = re.findall(r"""url: *'([^']+)'""", page.text)

    assert page.status_code == 200
    assert sources
    assert all(source.startswith("/docs/assets/") for source in sources)
    assert scripts == ["/openapi.json"]
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 1000, source
