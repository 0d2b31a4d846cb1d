"""Who is calling: per-namespace bearer tokens, kept only as SHA-256 digests, compared in constant
time; an admin token that may read every namespace; open mode when no token is configured.

A caller is never told that something exists in a namespace it may not see: a token for one
namespace asking about another gets the same 404 as for something that does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import Enum

from creditledger.infrastructure.http.errors import ProblemError
from creditledger.infrastructure.settings import Settings

_HASHED = re.compile(r"sha256:([0-9a-fA-F]{64})")
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +(\S+) *")
_CHALLENGE = 'Bearer realm="creditledger"'


class Access(Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: one namespace's client, the admin reader, or anyone (open mode)."""

    namespace: str | None
    admin: bool = False
    anonymous: bool = False

    def may(self, access: Access, namespace: str) -> bool:
        if self.anonymous:
            return True
        if self.admin:
            return access is Access.READ
        return self.namespace == namespace


ANYONE = Principal(namespace=None, anonymous=True)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _configured_digest(token: str) -> bytes:
    """A configured token's digest: given as ``sha256:<hex>``, or computed from the token."""
    hashed = _HASHED.fullmatch(token)
    if hashed is not None:
        return bytes.fromhex(hashed.group(1))
    return token_digest(token)


class TokenRegistry:
    """The configured tokens as digests, each mapped to the principal it authenticates."""

    def __init__(self, entries: list[tuple[bytes, Principal]]) -> None:
        self._entries = entries

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenRegistry:
        entries = [
            (_configured_digest(token), Principal(namespace=namespace))
            for namespace, token in settings.namespace_tokens()
        ]
        if settings.admin_token is not None:
            admin = settings.admin_token.get_secret_value()
            entries.append((_configured_digest(admin), Principal(namespace=None, admin=True)))
        return cls(entries)

    @property
    def open(self) -> bool:
        """No token configured: everyone may do everything (local development only)."""
        return not self._entries

    @property
    def namespaces(self) -> list[str]:
        return sorted({p.namespace for _, p in self._entries if p.namespace is not None})

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer`` header; ``unauthenticated`` otherwise."""
        if self.open:
            return ANYONE
        if authorization is None:
            raise ProblemError(
                "unauthenticated",
                "send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": _CHALLENGE},
            )
        match = _BEARER.fullmatch(authorization)
        found: Principal | None = None
        if match is not None:
            digest = token_digest(match.group(1))
            # Every digest is compared, matching or not, so timing says nothing about which
            # token (or how much of one) was right.
            for configured, principal in self._entries:
                if hmac.compare_digest(configured, digest):
                    found = principal
        if found is None:
            raise ProblemError(
                "unauthenticated",
                "the bearer token is not valid",
                headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
            )
        return found


def refusal(principal: Principal, not_found: ProblemError) -> ProblemError:
    """Why the principal may not do this: the same 404 as for a missing thing, or (admin) 403."""
    if principal.admin:
        return ProblemError("forbidden", "the admin token may read every namespace, never write")
    return not_found
