"""Field types shared by the command models and the HTTP request models: strict where lax
parsing would accept what the contract refuses.

pydantic's lax mode reads a bare number as a Unix time (``4102444800`` is 2100-01-01) and even a
numeric string (``"0.5"``); the contract says RFC 3339 with an offset. A datetime object from
Python code passes as it is; the domain (or ``AwareDatetime``) judges its offset.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError

from creditledger.domain.text import UNSTORABLE_TEXT, is_storable

# The offset is optional here so that a time without one gets its own precise error
# (timezone_required from the domain, timezone_aware from pydantic) rather than this one.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


def _rfc3339_only(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise PydanticCustomError(
        "invalid_timestamp",
        "must be an RFC 3339 date-time string with an offset, such as 2030-01-01T00:00:00Z",
    )


def _storable(text: str) -> str:
    if is_storable(text):
        return text
    raise PydanticCustomError(
        UNSTORABLE_TEXT,
        "must not contain NUL (U+0000) or an unpaired surrogate: no store can hold them",
    )


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339_only)]
"""A point in time: an RFC 3339 string or a datetime; its offset is checked by the domain."""

AwareTimestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]
"""A point in time that must carry its offset (query parameters such as ``as_of``)."""

StorableText = Annotated[str, AfterValidator(_storable)]
"""Text every store can hold: no NUL, no unpaired surrogate."""
