"""A live ``creditledger serve`` process per test module and backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from creditledger.infrastructure.http.process import ServerProcess
from tests.e2e.http_support import HTTP_BACKENDS, LiveServer, store_url_for


@pytest.fixture(scope="module", params=HTTP_BACKENDS)
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server with tokens for namespaces acme and globex, and an admin token, on an empty
    store; each test uses its own customers and keys, so the tests of a module can share it."""
    backend: str = request.param
    directory = tmp_path_factory.mktemp(f"http-{backend}")
    tokens = {"acme": secrets.token_urlsafe(24), "globex": secrets.token_urlsafe(24)}
    admin_token = secrets.token_urlsafe(24)
    env = {
        "CREDITLEDGER_API_KEYS": ",".join(f"{ns}={token}" for ns, token in tokens.items()),
        "CREDITLEDGER_ADMIN_TOKEN": admin_token,
    }
    log_path = directory / "server.log"
    with (
        store_url_for(backend, directory) as url,
        ServerProcess(url, log_path, env=env) as server,
    ):
        yield LiveServer(
            backend=backend,
            base_url=server.base_url,
            tokens=tokens,
            admin_token=admin_token,
            log_path=log_path,
        )


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    """A client with namespace acme's token."""
    with live_server.client("acme") as acme:
        yield acme
