"""Token configuration and checking: digests only, every digest compared, nothing echoed."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.bootstrap import open_ledger
from creditledger.infrastructure.http.auth import ANYONE, Access, Principal, TokenRegistry
from creditledger.infrastructure.http.errors import ProblemError
from creditledger.infrastructure.settings import Settings
from tests.infrastructure.http_app import bearer, client_for, settings


@pytest.fixture
def memory_ledger() -> Iterator[CreditLedger]:
    with open_ledger("memory://") as ledger:
        yield ledger


def test_a_token_may_be_configured_as_its_sha256_digest() -> None:
    digest = hashlib.sha256(b"s3cret-token").hexdigest()
    registry = TokenRegistry.from_settings(settings(api_keys=f"acme=sha256:{digest}"))
    assert registry.authenticate("Bearer s3cret-token") == Principal(namespace="acme")
    with pytest.raises(ProblemError) as refused:
        registry.authenticate(f"Bearer sha256:{digest}")
    assert refused.value.code == "unauthenticated"


def test_a_namespace_may_have_several_tokens_while_one_is_rotated() -> None:
    registry = TokenRegistry.from_settings(settings(api_keys="acme=old-token,acme=new-token"))
    assert registry.authenticate("Bearer old-token") == Principal(namespace="acme")
    assert registry.authenticate("bearer new-token") == Principal(namespace="acme")
    assert registry.namespaces == ["acme"]


def test_the_admin_token_reads_every_namespace_and_writes_none() -> None:
    registry = TokenRegistry.from_settings(
        settings(api_keys="acme=a1", admin_token="root-1")  # noqa: S106 - a test's token
    )
    admin = registry.authenticate("Bearer root-1")
    assert admin.may(Access.READ, "globex")
    assert not admin.may(Access.WRITE, "acme")


def test_with_no_token_configured_everyone_may_do_everything() -> None:
    registry = TokenRegistry.from_settings(settings())
    assert registry.open
    assert registry.authenticate(None) is ANYONE
    assert ANYONE.may(Access.WRITE, "acme")


@pytest.mark.parametrize(
    "api_keys", ["acme", "acme=", "=tok-secret-1", "acme=tok secret", "-bad=tok-secret-1"]
)
def test_malformed_api_keys_are_refused_without_echoing_a_token(api_keys: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(database_url="memory://", api_keys=api_keys)
    assert "secret" not in str(refused.value)


def test_the_admin_token_may_not_also_be_a_namespace_token() -> None:
    with pytest.raises(ValidationError):
        Settings(
            database_url="memory://",
            api_keys="acme=same-token",
            admin_token="same-token",  # noqa: S106 - a test's token
        )


def test_an_open_server_warns_at_start(
    memory_ledger: CreditLedger, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="creditledger.http"), client_for(memory_ledger):
        pass
    assert any("open to anyone" in record.getMessage() for record in caplog.records)


def test_a_closed_server_does_not_warn(
    memory_ledger: CreditLedger, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="creditledger.http"),
        client_for(memory_ledger, api_keys="acme=tok-1") as client,
    ):
        assert (
            client.get("/v1/namespaces/acme/credit-purchases/x", headers=bearer("tok-1")).json()[
                "code"
            ]
            == "credit_purchase_not_found"
        )
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
