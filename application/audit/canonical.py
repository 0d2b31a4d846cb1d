"""Canonical bytes: one exact byte string per JSON value, so that a hash of it means one thing.

The canonical form is JSON with object keys sorted by code point at every depth, no whitespace,
non-ASCII characters written as themselves, encoded as UTF-8. Export values are strings, integers,
booleans, null, arrays and objects only: amounts are decimal *strings* exactly as stored, and a
binary float is refused wherever it appears, because two programs need not print it the same way.
"""

from __future__ import annotations

import json
from typing import Any


class NotCanonicalError(ValueError):
    """The text holds a value the canonical form does not allow (a float, NaN, Infinity)."""


def _refuse_float(text: str) -> Any:
    msg = f"binary float {text} is not allowed: amounts are decimal strings"
    raise NotCanonicalError(msg)


def _refuse_constant(text: str) -> Any:
    msg = f"{text} is not allowed"
    raise NotCanonicalError(msg)


# One decoder and one encoder for the process: building them per call costs as much as a
# small line's whole parse.
_DECODER = json.JSONDecoder(parse_float=_refuse_float, parse_constant=_refuse_constant)
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def parse_json(text: str | bytes) -> Any:
    """Parse JSON, refusing floats, NaN and infinities (``NotCanonicalError``)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return _DECODER.decode(text)


def canonical_text(value: Any) -> str:
    """The canonical JSON text of a value (``canonical_bytes`` before UTF-8 encoding)."""
    return _ENCODER.encode(value)


def canonical_bytes(value: Any) -> bytes:
    """The canonical bytes of a value: sorted keys, no whitespace, UTF-8."""
    return _ENCODER.encode(value).encode("utf-8")
