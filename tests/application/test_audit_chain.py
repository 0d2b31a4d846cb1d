"""Canonical bytes and the hash chain: exact enough that anyone can recompute them."""

from __future__ import annotations

import hashlib

import pytest

from creditledger.application.audit.canonical import NotCanonicalError, canonical_bytes, parse_json
from creditledger.application.audit.chain import GENESIS_HASH, is_chain_hash, next_hash
from creditledger.application.audit.records import Aggregate, event_line, event_object


def test_canonical_bytes_sort_keys_at_every_depth_without_whitespace() -> None:
    value = {"b": 1, "a": {"z": [3, {"y": None, "x": True}], "c": "d"}}
    assert canonical_bytes(value) == b'{"a":{"c":"d","z":[3,{"x":true,"y":null}]},"b":1}'


def test_canonical_bytes_write_non_ascii_characters_as_utf_8() -> None:
    assert canonical_bytes({"name": "Müller €"}) == '{"name":"Müller €"}'.encode()


def test_canonical_bytes_keep_decimal_strings_exactly_as_written() -> None:
    assert canonical_bytes({"amount": "100.120"}) == b'{"amount":"100.120"}'


@pytest.mark.parametrize("text", ['{"amount": 1.5}', '{"amount": 1e3}', '{"x": NaN}'])
def test_parsing_refuses_binary_floats_and_non_finite_numbers(text: str) -> None:
    with pytest.raises(NotCanonicalError):
        parse_json(text)


def test_each_chain_hash_covers_the_previous_hash_and_the_events_canonical_bytes() -> None:
    canonical = canonical_bytes({"kind": "event", "position": 1})
    expected = hashlib.sha256(GENESIS_HASH.encode("ascii") + canonical).hexdigest()
    assert next_hash(GENESIS_HASH, canonical) == expected
    assert is_chain_hash(expected)


def test_a_different_previous_hash_gives_a_different_hash_for_the_same_event() -> None:
    canonical = canonical_bytes({"position": 1})
    assert next_hash(GENESIS_HASH, canonical) != next_hash("1" * 64, canonical)


def test_an_event_line_is_its_canonical_text_with_the_hash_as_last_member() -> None:
    event = event_object(
        position=7,
        aggregate=Aggregate.PURCHASE,
        aggregate_id="00000000-0000-0000-0000-000000000001",
        version=1,
        type_="Initiated",
        namespace="acme",
        recorded_at="2026-01-01T12:00:00Z",
        data={"timestamp": "2026-01-01T12:00:00Z"},
    )
    text = canonical_bytes(event).decode()
    line = event_line(text, "a" * 64)
    parsed = parse_json(line)
    assert parsed.pop("hash") == "a" * 64
    assert parsed == event
    assert line.startswith(text[:-1])
