"""What every command shares: opening the ledger, printing JSON, and exit codes for errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Any

import typer
from pydantic import BaseModel, ValidationError

from creditledger.application.errors import StoreUnavailableError
from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import (
    CreditPurchaseNotFoundError,
    FieldError,
    InsufficientCreditError,
    LedgerError,
    RefundExceedsRemainingError,
    ValidationFailedError,
)
from creditledger.infrastructure.bootstrap import open_ledger
from creditledger.infrastructure.persistence.preflight import StoreOpenError, check_store
from creditledger.infrastructure.settings import Settings


class ExitCode(IntEnum):
    """Exit codes of every ``creditledger`` command (also listed in ``--help`` and the README)."""

    OK = 0
    FAILED = 1
    """Unexpected failure (store unreachable, bug): see stderr."""
    USAGE = 2
    """Bad command line (typer/click's own code)."""
    INVALID = 3
    """``validation_failed``: the input had problems, every one is listed; nothing was written."""
    NOT_FOUND = 4
    """``credit_purchase_not_found``."""
    CONFLICT = 5
    """The purchase's state, the customer's credit or the history refused the command (already
    authorized, insufficient credit, key reused...)."""
    VERIFY_FAILED = 6
    """An audit or projection verification found a difference."""
    STORE_UNAVAILABLE = 7
    """``store_unavailable``: the store could not be opened, read or written (the problem names
    the store and the cause); nothing was applied, a retry is safe."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (128 + SIGINT): ``purchase import`` answered every line it wrote."""


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 unexpected failure; 2 bad usage; 3 validation_failed; "
    "4 not found; 5 refused by the purchase's state (conflict); 6 verification failed; "
    "7 store unavailable; 130 interrupted (Ctrl-C)."
)


class State:
    """Options of the root command, handed to sub-commands through typer's context."""

    def __init__(self) -> None:
        self.database_url: str | None = None
        self.json: bool = False

    def settings(self, **overrides: Any) -> Settings:
        if self.database_url is not None:
            overrides = {"database_url": self.database_url, **overrides}
        return Settings(**overrides)


def state(ctx: typer.Context) -> State:
    found = ctx.find_root().obj
    if not isinstance(found, State):
        found = State()
        ctx.find_root().obj = found
    return found


def print_json(value: BaseModel | list[BaseModel] | dict[str, Any] | list[Any]) -> None:
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    elif isinstance(value, list) and all(isinstance(item, BaseModel) for item in value):
        text = json.dumps([item.model_dump(mode="json") for item in value], indent=2)
    else:
        text = json.dumps(value, indent=2, default=str)
    sys.stdout.write(text + "\n")


def problem_of(error: LedgerError) -> dict[str, Any]:
    problem: dict[str, Any] = {"code": error.code, "title": error.title, "detail": error.detail}
    if isinstance(error, ValidationFailedError | StoreOpenError):
        problem["errors"] = [item.as_dict() for item in error.errors]
    if isinstance(error, InsufficientCreditError):
        problem["available"] = error.available
    if isinstance(error, RefundExceedsRemainingError):
        problem["remaining"] = error.remaining
    return problem


def open_checked_ledger(settings: Settings) -> CreditLedger:
    """The ledger on the configured store, or ``StoreOpenError`` naming the store and the cause
    within seconds.

    A new SQLite file at a relative path (the default's case) is announced on stderr: run from
    another directory, the command would otherwise silently answer from an empty store.
    """
    store = settings.store
    relative = store.path is not None and not store.path.is_absolute()
    if check_store(store).new_file and relative:
        sys.stderr.write(f"creditledger: created a new, empty store: {store.describe()}\n")
    return open_ledger(settings=settings)


def write_problem(error: LedgerError) -> None:
    sys.stderr.write(json.dumps(problem_of(error), indent=2) + "\n")


def field_errors(error: ValidationError) -> list[FieldError]:
    """pydantic's complaints about an input's shape, as the domain's field errors."""
    return [
        FieldError(".".join(str(part) for part in item["loc"]), item["type"], item["msg"])
        for item in error.errors()
    ]


def exit_code_of(error: LedgerError) -> ExitCode:
    if isinstance(error, StoreUnavailableError):
        return ExitCode.STORE_UNAVAILABLE
    if isinstance(error, ValidationFailedError):
        return ExitCode.INVALID
    if isinstance(error, CreditPurchaseNotFoundError):
        return ExitCode.NOT_FOUND
    return ExitCode.CONFLICT


@contextmanager
def ledger_for(ctx: typer.Context, *, pool_size: int | None = None) -> Iterator[CreditLedger]:
    """Open the configured ledger; turn typed errors into a problem on stderr and an exit code.

    ``pool_size``: at least this many store connections (a command running many threads).
    """
    try:
        settings = state(ctx).settings()
        if pool_size is not None and pool_size > settings.pool_size:
            settings = state(ctx).settings(pool_size=pool_size)
        ledger = open_checked_ledger(settings)
    except ValidationError as error:
        sys.stderr.write(f"invalid configuration: {error}\n")
        raise typer.Exit(ExitCode.FAILED) from None
    except LedgerError as error:
        write_problem(error)
        raise typer.Exit(exit_code_of(error)) from None
    try:
        yield ledger
    except LedgerError as error:
        write_problem(error)
        raise typer.Exit(exit_code_of(error)) from None
    except ValidationError as error:
        # A command model refused the shape of the input: same contract as the domain's errors.
        problem = {
            "code": "validation_failed",
            "title": "Validation failed",
            "errors": [problem.as_dict() for problem in field_errors(error)],
        }
        sys.stderr.write(json.dumps(problem, indent=2) + "\n")
        raise typer.Exit(ExitCode.INVALID) from None
    finally:
        ledger.close()
