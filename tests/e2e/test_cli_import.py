"""``creditledger purchase import``: a JSON-lines file in, one JSON line out per line, run as a user
runs it (the installed entry point, a process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from creditledger.infrastructure.bootstrap import open_ledger
from tests.e2e.test_cli_purchase import ENTRY_POINT, TIMEOUT

GOOD = {
    "customer_id": "cust-1",
    "currency": "USD",
    "credit_amount": "100.123",
    "cost_basis": "0.5",
    "settlement": {"type": "external"},
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


def run_import(
    database_url: str, *arguments: str, stdin: str | None = None
) -> tuple[int, list[Any], str]:
    result = subprocess.run(
        [str(ENTRY_POINT), "purchase", "import", *arguments],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, "CREDITLEDGER_DATABASE_URL": database_url},
        timeout=TIMEOUT,
        check=False,
    )
    return (
        result.returncode,
        [json.loads(line) for line in result.stdout.splitlines()],
        result.stderr,
    )


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_an_import_answers_every_line_and_a_second_run_replays_it(
    database_url: str, tmp_path: Path
) -> None:
    lines = [
        json.dumps({**GOOD, "customer_id": f"cust-{n}", "idempotency_key": f"order-{n}"})
        for n in range(50)
    ]
    source = write_lines(tmp_path / "purchases.jsonl", lines)

    code, answers, summary = run_import(database_url, str(source), "-n", "acme", "--workers", "8")

    assert code == 0, summary
    assert [a["line"] for a in answers] == list(range(1, 51))
    assert {a["result"] for a in answers} == {"created"}
    assert "50 created, 0 replayed, 0 refused" in summary
    with open_ledger(database_url) as ledger:
        for answer in answers:
            purchase = ledger.get_purchase("acme", UUID(answer["id"]))
            assert purchase.customer_id == f"cust-{answer['line'] - 1}"

    code, again, summary = run_import(database_url, str(source), "-n", "acme")

    assert code == 0, summary
    assert [(a["result"], a["id"]) for a in again] == [("replayed", a["id"]) for a in answers]


def test_bad_lines_are_refused_with_every_problem_and_the_rest_imported(
    database_url: str, tmp_path: Path
) -> None:
    source = write_lines(
        tmp_path / "mixed.jsonl",
        [
            json.dumps({**GOOD, "idempotency_key": "a"}),
            "",
            json.dumps({**GOOD, "currency": "usd", "credit_amount": 1.5}),
            "{not json",
            json.dumps({**GOOD, "idempotency_key": "b", "namespace": "other"}),
            json.dumps({**GOOD, "idempotency_key": "c"}),
        ],
    )

    code, answers, summary = run_import(database_url, str(source), "-n", "acme")

    assert code == 3  # validation_failed, and nothing worse
    assert [(a["line"], a["result"]) for a in answers] == [
        (1, "created"),
        (3, "refused"),
        (4, "refused"),
        (5, "refused"),
        (6, "created"),
    ]
    problems = {a["line"]: a["problem"] for a in answers if a["result"] == "refused"}
    assert {e["field"] for e in problems[3]["errors"]} == {
        "idempotency_key",
        "currency",
        "credit_amount",
    }
    assert problems[4]["errors"][0]["code"] == "json_invalid"
    assert problems[5]["errors"][0]["field"] == "namespace"
    assert "2 created, 0 replayed, 3 refused (validation_failed: 3)" in summary


def test_a_line_is_read_as_strictly_as_an_http_body(database_url: str, tmp_path: Path) -> None:
    source = write_lines(
        tmp_path / "lax.jsonl",
        [
            json.dumps({**GOOD, "idempotency_key": "a", "priority": "5"}),
            json.dumps({**GOOD, "idempotency_key": "b", "expires_at": 4102444800}),
            json.dumps({**GOOD, "idempotency_key": "c", "name": "a\u0000b"}),
        ],
    )

    code, answers, summary = run_import(database_url, str(source), "-n", "acme")

    assert code == 3, summary
    assert [
        [(e["field"], e["code"]) for e in answer["problem"]["errors"]] for answer in answers
    ] == [
        [("priority", "int_type")],
        [("expires_at", "invalid_timestamp")],
        [("name", "unstorable_character")],
    ]


def test_a_key_reused_with_another_request_is_a_conflict_and_stdin_is_read(
    database_url: str,
) -> None:
    lines = [
        json.dumps({**GOOD, "idempotency_key": "same"}),
        json.dumps({**GOOD, "credit_amount": "5", "idempotency_key": "same"}),
    ]
    code, answers, _ = run_import(
        database_url, "-", "-n", "acme", "--workers", "1", stdin="\n".join(lines)
    )

    assert code == 5
    assert [a["result"] for a in answers] == ["created", "refused"]
    assert answers[1]["problem"]["code"] == "idempotency_key_reused"


def test_a_file_that_cannot_be_read_is_a_usage_error(database_url: str, tmp_path: Path) -> None:
    code, answers, message = run_import(database_url, str(tmp_path / "missing.jsonl"), "-n", "acme")

    assert code == 2
    assert answers == []
    assert "cannot read" in message


def test_ctrl_c_stops_the_import_and_every_line_written_is_answered(
    database_url: str, tmp_path: Path
) -> None:
    """SIGINT to a real import, mid-way: no line starts after it, every line already written is
    answered on stdout, and the summary names the last one (so a user can reconcile)."""
    lines = [
        json.dumps({**GOOD, "customer_id": f"cust-{n}", "idempotency_key": f"ctrl-c-{n}"}) + "\n"
        for n in range(1, 401)
    ]
    process = subprocess.Popen(
        [str(ENTRY_POINT), "purchase", "import", "-", "-n", "acme", "--workers", "4"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CREDITLEDGER_DATABASE_URL": database_url},
    )
    assert process.stdin is not None
    assert process.stdout is not None
    # Standard input stays open until after the signal: the import cannot have finished.
    process.stdin.write("".join(lines))
    process.stdin.flush()
    first = process.stdout.readline()
    process.send_signal(signal.SIGINT)
    process.stdin.close()
    assert process.stderr is not None
    rest = process.stdout.read()  # until the process closes it: it has ended
    errors = process.stderr.read()
    process.wait(timeout=TIMEOUT)

    answered = [json.loads(line) for line in [first, *rest.splitlines()]]
    numbers = [line["line"] for line in answered]
    last = numbers[-1]
    with open_ledger(database_url) as ledger:
        stored = ledger.recorder.max_notification_id() or 0
    assert process.returncode == 130, errors
    assert "Traceback" not in errors
    assert numbers == list(range(1, last + 1))
    assert last < len(lines)
    assert [line["result"] for line in answered] == ["created"] * last
    # Two events per line written (its Initiated and its GrantAdded), each line answered above.
    assert stored == 2 * last
    assert f"no line after line {last} was attempted" in errors
