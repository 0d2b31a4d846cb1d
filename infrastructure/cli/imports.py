"""``creditledger purchase import FILE``: initiate a purchase per JSON line, many at a time.

Each line is the body of ``POST /v1/namespaces/{namespace}/credit-purchases`` plus its
``idempotency_key`` (required: it is what makes running the same file again safe). The file is
read as it goes, never whole. Every line is answered on stdout, in order, as one JSON line:
``{"line": 3, "result": "created", "id": ..., "position": ...}``, ``"replayed"``, or
``{"line": 4, "result": "refused", "problem": {"code": ..., "errors": [...]}}``; a summary goes to
stderr. A refused line is that line's alone: every other line is still imported.

Ctrl-C (SIGINT) stops the import cleanly: no line starts after it, the lines running finish, and
every line that was started is answered on stdout, so stdout lists every line written. The summary
names the last line answered; no line after it was attempted. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Annotated, Any

import pydantic_core
import typer
from pydantic import ValidationError

from creditledger.application.bulk_import import (
    DEFAULT_WORKERS,
    ImportLine,
    LineResult,
    import_purchases,
)
from creditledger.application.errors import StoreUnavailableError
from creditledger.domain.errors import FieldError, ValidationFailedError
from creditledger.infrastructure.cli.invocation import (
    ExitCode,
    field_errors,
    ledger_for,
    problem_of,
)

KEY_FIELD = "idempotency_key"


def parse_line(number: int, text: str, namespace: str) -> ImportLine:
    """One line as the command it asks for, or every problem it has (nothing is written for it)."""
    # Imported here: the HTTP API's request models cost ~0.01 s to build, and of the CLI's
    # commands only the import reads them.
    from creditledger.infrastructure.http.schemas import PurchaseCreate  # noqa: PLC0415

    try:
        data = pydantic_core.from_json(text, allow_inf_nan=False)
    except ValueError as error:
        return _refused(number, [FieldError("line", "json_invalid", f"not valid JSON: {error}")])
    if not isinstance(data, dict):
        return _refused(number, [FieldError("line", "object_expected", "a line is a JSON object")])
    key = data.pop(KEY_FIELD, None)
    problems: list[FieldError] = []
    if not isinstance(key, str) or not key:
        problems.append(
            FieldError(
                KEY_FIELD,
                "missing",
                "every line needs a string idempotency_key, so that importing the file again "
                "replays it instead of granting the credits twice",
            )
        )
    try:
        body = PurchaseCreate.model_validate(data)
    except ValidationError as error:
        return _refused(number, problems + field_errors(error))
    if problems:
        # Refused already; still list what the ledger would have said of the rest of it.
        try:
            body.command(namespace, None).intent(datetime.now(UTC))
        except ValidationFailedError as error:
            problems += error.errors
        return _refused(number, problems)
    try:
        return ImportLine(number, command=body.command(namespace, key))
    except ValidationError as error:  # the command's own checks (the key's format, say)
        return _refused(number, field_errors(error))


def _refused(number: int, problems: list[FieldError]) -> ImportLine:
    return ImportLine(number, error=ValidationFailedError(problems))


def read_lines(source: IO[str], namespace: str) -> Iterator[ImportLine]:
    """The file's lines, parsed as they are read; blank lines are skipped (and still counted)."""
    for number, text in enumerate(source, start=1):
        if text.strip():
            yield parse_line(number, text, namespace)


def answer(line: LineResult) -> dict[str, Any]:
    """One line's result, as printed on stdout."""
    printed: dict[str, Any] = {"line": line.number, "result": line.result}
    if line.outcome is not None:
        printed["id"] = str(line.outcome.purchase.id)
        printed["position"] = line.outcome.position
    elif line.error is not None:
        printed["problem"] = problem_of(line.error)
    return printed


def exit_code(refusals: Counter[str]) -> ExitCode:
    """0 if every line was imported; else the most serious refusal's code."""
    if not refusals:
        return ExitCode.OK
    if refusals[StoreUnavailableError.code]:
        return ExitCode.STORE_UNAVAILABLE
    if set(refusals) - {ValidationFailedError.code}:
        return ExitCode.CONFLICT
    return ExitCode.INVALID


def _open(path: str) -> IO[str]:
    try:
        return Path(path).open(encoding="utf-8")
    except OSError as error:
        raise typer.BadParameter(
            f"cannot read {path}: {error.strerror}", param_hint="FILE"
        ) from None


def import_file(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(
            help="JSON lines: each a create-purchase body plus its idempotency_key; - for stdin."
        ),
    ],
    *,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Tenant namespace.")],
    workers: Annotated[
        int,
        typer.Option(min=1, max=256, help="Lines initiated at once (group commit batches them)."),
    ] = DEFAULT_WORKERS,
) -> None:
    """Initiate a purchase per line of a JSON-lines file; print each line's result."""
    results: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    started = time.perf_counter()
    source = sys.stdin if file == "-" else _open(file)
    last_answered = 0
    stop = threading.Event()
    try:
        with ledger_for(ctx, pool_size=workers) as ledger, _stopped_by_ctrl_c(stop):
            lines = read_lines(source, namespace)
            for line in import_purchases(ledger, lines, workers=workers, stop=stop):
                results[line.result] += 1
                if line.error is not None:
                    refusals[line.error.code] += 1
                sys.stdout.write(json.dumps(answer(line)) + "\n")
                last_answered = line.number
    finally:
        if source is not sys.stdin:
            source.close()
    if stop.is_set():
        sys.stdout.flush()
        sys.stderr.write(
            f"interrupted: every line up to line {last_answered} is answered above (the lines "
            f"written are among them); no line after line {last_answered} was attempted. Run "
            "the same file again to finish: the lines already written replay.\n"
        )
    seconds = time.perf_counter() - started
    total = sum(results.values())
    sys.stderr.write(
        f"{total} lines in {seconds:.1f} s ({total / seconds if seconds else 0:,.0f}/s): "
        f"{results['created']} created, {results['replayed']} replayed, "
        f"{results['refused']} refused"
        + (f" ({', '.join(f'{c}: {n}' for c, n in refusals.items())})" if refusals else "")
        + "\n"
    )
    raise typer.Exit(ExitCode.INTERRUPTED if stop.is_set() else exit_code(refusals))


@contextmanager
def _stopped_by_ctrl_c(stop: threading.Event) -> Iterator[None]:
    """While importing, the first SIGINT asks the import to stop (``stop``); a second one
    interrupts at once, as Ctrl-C usually does."""

    def request_stop(_signal: int, _frame: FrameType | None) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
