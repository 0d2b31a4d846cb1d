"""The mapper parses stored events with orjson only where it gives the standard library's value.

``loads_state`` stands in for ``json.loads`` on every event read (issue 14, the projector's
catch-up): on any bytes, it must give the same value (of the same types) or the same error.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from creditledger.infrastructure.persistence.mapper import loads_state

# Strings with lone surrogates and control characters; integers beyond 64 bits; floats.
_texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | _texts
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_texts, inner, max_size=4),
    max_leaves=12,
)
_ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-32-le"]


def _outcome(parse: Any, state: bytes) -> tuple[str, Any]:
    try:
        return ("value", _typed(parse(state)))
    except ValueError as error:
        return (type(error).__name__, str(error))


def _typed(value: Any) -> Any:
    """The value with every scalar's type next to it (1 and 1.0 and True differ)."""
    if isinstance(value, dict):
        return {key: _typed(member) for key, member in value.items()}
    if isinstance(value, list):
        return [_typed(member) for member in value]
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    return (type(value).__name__, value)


@given(_values, st.sampled_from(_ENCODINGS), st.booleans())
def test_a_stored_state_parses_to_the_standard_librarys_value_or_error(
    value: Any, encoding: str, spaced: bool
) -> None:
    text = json.dumps(value, separators=(", ", ": ") if spaced else (",", ":"))
    state = text.encode(encoding, "surrogatepass")
    fast = _outcome(loads_state, state)
    reference = _outcome(json.loads, state)
    assert fast == reference


@given(st.binary(max_size=40))
def test_any_bytes_parse_to_the_standard_librarys_value_or_error(state: bytes) -> None:
    assert _outcome(loads_state, state) == _outcome(json.loads, state)


@given(
    st.lists(
        st.sampled_from(
            [
                '{"a":',
                "1",
                "1.5",
                "-0",
                "1e3",
                "[",
                "]",
                "}",
                '"\\ud800"',
                "NaN",
                ",",
                " ",
                '"x"',
                "true",
                "null",
                "18446744073709551616",
            ]
        ),
        max_size=12,
    )
)
def test_json_like_fragments_parse_to_the_standard_librarys_value_or_error(
    parts: list[str],
) -> None:
    state = "".join(parts).encode("utf-8", "surrogatepass")
    assert _outcome(loads_state, state) == _outcome(json.loads, state)
