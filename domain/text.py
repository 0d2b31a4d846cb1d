"""Text the stores can hold: PostgreSQL ``text`` and ``jsonb`` refuse NUL, and UTF-8 (every
store's encoding) cannot carry an unpaired surrogate. Such text is refused at intake, with a typed
field error, instead of failing (or stopping a read model) once it is written.
"""

from __future__ import annotations

import re

from creditledger.domain.errors import FieldError

UNSTORABLE_TEXT = "unstorable_character"
"""The code of a field holding a character no store can hold."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None


def printable_field(name: str) -> str:
    """A field name that every encoder and store can carry, even when it embeds a caller's text:
    each unstorable character is written as its escape (``\\x00``, ``\\ud800``)."""
    return _UNSTORABLE.sub(lambda found: ascii(found.group())[1:-1], name)


def unstorable_problem(field: str) -> FieldError:
    return FieldError(
        printable_field(field),
        UNSTORABLE_TEXT,
        "must not contain NUL (U+0000) or an unpaired surrogate: no store can hold them",
    )
