"""Canonical bytes: one exact byte string per JSON value, so that a hash of it means one thing.

The canonical form is JSON with object keys sorted by code point at every depth, no whitespace,
non-ASCII characters written as themselves, encoded as UTF-8. Export values are strings, integers,
booleans, null, arrays and objects only: amounts are decimal *strings* exactly as stored, and a
binary float is refused wherever it appears, because two programs need not print it the same way.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


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


# The reference implementation is the standard library's (above); orjson does the same several
# times faster, and is used only where it provably gives the same result:
# - parsing: orjson's value is kept only if it holds no float. orjson reads a fraction, an
#   exponent or an integer beyond 64 bits as a float, where the reference refuses the first two
#   and reads the third exactly; NaN, lone surrogates, bad UTF-8 and too deep nesting make orjson
#   fail. In all those cases the reference parses again and decides (its error, its value).
#   Duplicate keys: both keep the last.
# - writing: values holding a float go to the reference (see writes_like_reference). For the
#   others, OPT_SORT_KEYS orders keys by UTF-8 bytes, which is code point order, and orjson
#   escapes exactly what the reference does with ensure_ascii=False (a Hypothesis test compares
#   them on arbitrary JSON values). Values orjson cannot write (integers beyond 64 bits, lone
#   surrogates) and types the reference does not write (datetimes, dataclasses, subclasses:
#   passed through so that orjson fails too) go to the reference.
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


_SCALARS = frozenset({str, int, bool, type(None)})


def _holds_float(value: Any) -> bool:
    # The set of member types is built at C speed; most containers hold scalars only.
    members = value.values() if type(value) is dict else value
    kinds = set(map(type, members))
    if kinds <= _SCALARS:
        return False
    if float in kinds:
        return True
    for member in members:
        kind = type(member)
        if (kind is dict or kind is list) and member and _holds_float(member):
            return True
    return False


def writes_like_reference(value: Any) -> bool:
    """Whether orjson writes ``value`` as the reference does: it holds no float (a value orjson
    parsed holds one exactly where the reference parses it differently or refuses it)."""
    # Floats print differently (1e-08 against 1e-8); canonical values never hold one, but a
    # value that does goes to the reference writer rather than to a second opinion.
    kind = type(value)
    if kind is dict or kind is list:
        return not _holds_float(value)
    return kind is not float


def parse_json(text: str | bytes) -> Any:
    """Parse JSON, refusing floats, NaN and infinities (``NotCanonicalError``)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    else:
        if writes_like_reference(value):
            return value
    return reference_parse_json(text)


def reference_parse_json(text: str | bytes) -> Any:
    """``parse_json`` by the standard library alone: the reference the fast path must equal."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return _DECODER.decode(text)


def canonical_text(value: Any) -> str:
    """The canonical JSON text of a value (``canonical_bytes`` before UTF-8 encoding)."""
    if not writes_like_reference(value):
        return reference_canonical_text(value)
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS).decode("utf-8")
    except TypeError:
        return reference_canonical_text(value)


def canonical_text_of_parsed(value: Any) -> str:
    """``canonical_text`` of a value that holds no float by construction: built of what
    ``parse_json`` returned (which refuses floats), strings, integers and None. Spares the check.
    """
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS).decode("utf-8")
    except TypeError:
        return reference_canonical_text(value)


def canonical_bytes_of_parsed(value: Any) -> bytes:
    """``canonical_bytes`` of a value that holds no float by construction (as for
    ``canonical_text_of_parsed``)."""
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:
        return reference_canonical_text(value).encode("utf-8")


def reference_canonical_text(value: Any) -> str:
    """``canonical_text`` by the standard library alone: the reference the fast path must equal."""
    return _ENCODER.encode(value)


def canonical_bytes(value: Any) -> bytes:
    """The canonical bytes of a value: sorted keys, no whitespace, UTF-8."""
    if not writes_like_reference(value):
        return reference_canonical_text(value).encode("utf-8")
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:
        return reference_canonical_text(value).encode("utf-8")
