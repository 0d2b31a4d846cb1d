"""The ``creditledger`` command line: one typer app with a sub-app per concern."""

from __future__ import annotations

from creditledger.infrastructure.cli.app import app, main

__all__ = ["app", "main"]
