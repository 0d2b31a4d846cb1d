"""Writes the app's OpenAPI document: ``python -m creditledger.infrastructure.http.openapi_file
docs/openapi.json`` (to stdout without a path).

Apart from ``openapi.py``, which the app and its routes import, so that nothing imports back.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from creditledger.infrastructure.http.app import create_app
from creditledger.infrastructure.http.openapi import render
from creditledger.infrastructure.settings import Settings


def main(argv: Sequence[str] | None = None) -> None:
    """Write the app's OpenAPI document to the given path (or stdout)."""
    args = list(sys.argv[1:] if argv is None else argv)
    text = render(create_app(Settings(database_url="memory://")).openapi())
    if args:
        Path(args[0]).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
