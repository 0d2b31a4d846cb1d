"""Tokens and tenants over HTTP: who may read and write what, and what a stranger is told."""

from __future__ import annotations

import hashlib

import httpx

from tests.e2e.http_support import (
    LiveServer,
    assert_problem,
    create,
    external_purchase,
    history_types,
    purchase_path,
    purchases_path,
)


def test_a_request_without_a_valid_token_is_unauthenticated(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base_url) as anonymous:
        missing = anonymous.post(purchases_path(), json=external_purchase())
        wrong = anonymous.post(
            purchases_path(),
            json=external_purchase(),
            headers={"Authorization": "Bearer not-a-token"},
        )
        hashed = hashlib.sha256(live_server.tokens["acme"].encode()).hexdigest()
        digest_as_token = anonymous.get(
            purchase_path("00000000-0000-0000-0000-000000000000"),
            headers={"Authorization": f"Bearer {hashed}"},
        )
        not_bearer = anonymous.get(
            purchase_path("00000000-0000-0000-0000-000000000000"),
            headers={"Authorization": f"Basic {live_server.tokens['acme']}"},
        )
    assert_problem(missing, 401, "unauthenticated")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(wrong, 401, "unauthenticated")
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    assert_problem(digest_as_token, 401, "unauthenticated")
    assert_problem(not_bearer, 401, "unauthenticated")


def test_an_unauthenticated_caller_learns_nothing_about_the_body(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base_url) as anonymous:
        response = anonymous.post(
            purchases_path(), content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert_problem(response, 401, "unauthenticated")


def test_another_namespaces_purchase_is_not_found_and_stays_untouched(
    live_server: LiveServer,
) -> None:
    with live_server.client("globex") as globex, live_server.client("acme") as acme:
        theirs = create(globex, "globex")
        foreign = purchase_path(theirs["id"], "globex")
        own_view = purchase_path(theirs["id"], "acme")
        for response in (
            acme.get(foreign),
            acme.get(f"{foreign}/events"),
            acme.post(f"{foreign}/authorize"),
            acme.post(f"{foreign}/settle", json={"external_reference": "x"}),
            acme.get(own_view),  # the id through acme's own namespace: also nothing
        ):
            problem = assert_problem(response, 404, "credit_purchase_not_found")
            assert problem["detail"] == f"credit purchase {theirs['id']} not found"
        assert_problem(
            acme.post(purchases_path("globex"), json=external_purchase()), 404, "not_found"
        )
        assert history_types(globex, theirs["id"], "globex") == ["Initiated"]


def test_the_admin_token_reads_every_namespace_and_writes_none(live_server: LiveServer) -> None:
    with (
        live_server.client("acme") as acme,
        live_server.client("globex") as globex,
        live_server.client(token=live_server.admin_token) as admin,
    ):
        ours, theirs = create(acme, "acme"), create(globex, "globex")
        assert admin.get(purchase_path(ours["id"], "acme")).json() == ours
        assert admin.get(purchase_path(theirs["id"], "globex")).json() == theirs
        assert admin.get(f"{purchase_path(theirs['id'], 'globex')}/events").status_code == 200
        assert_problem(
            admin.post(f"{purchase_path(ours['id'], 'acme')}/authorize"), 403, "forbidden"
        )
        assert_problem(
            admin.post(purchases_path("acme"), json=external_purchase()), 403, "forbidden"
        )
        assert history_types(acme, ours["id"]) == ["Initiated"]


def test_service_endpoints_need_no_token(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base_url) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        ready = anonymous.get("/readyz").json()
        assert ready["status"] == "ready"
        assert ready["checks"]["store"] == "ok"
        assert ready["checks"]["projections"]["status"] == "ok"
        metrics = anonymous.get("/metrics")
        assert metrics.status_code == 200
        assert "creditledger_http_requests_total" in metrics.text
        assert anonymous.get("/openapi.json").json()["openapi"].startswith("3.1")
