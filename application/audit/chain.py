"""The hash chain over exported events.

``hash_n = SHA-256(hash_{n-1} as 64 lowercase hex ASCII characters || canonical bytes of event n)``,
written as lowercase hex, starting from ``GENESIS_HASH`` before the first event of the log. The
chain depends only on the events, never on when or by whom the export was made, so a fresh export
of an untouched store reproduces every hash, and a checkpoint recorded at a position can be checked
against any later export that covers it.
"""

from __future__ import annotations

import hashlib
import re

GENESIS_HASH = "0" * 64
"""The chain hash before the first event of the log (position 0)."""


def next_hash(previous: str, canonical: bytes) -> str:
    """The chain hash after an event whose canonical bytes are ``canonical``."""
    return hashlib.sha256(previous.encode("ascii") + canonical).hexdigest()


_CHAIN_HASH = re.compile(r"[0-9a-f]{64}")


def is_chain_hash(value: object) -> bool:
    """A 64-character lowercase hex string, as every chain hash is written."""
    return isinstance(value, str) and _CHAIN_HASH.fullmatch(value) is not None
