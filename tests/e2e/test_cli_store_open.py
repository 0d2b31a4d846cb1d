"""A store that cannot be opened: the CLI and ``serve`` name the store and the cause, exit 7.

Each case runs the installed entry point, as an operator would, with one bad store URL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from creditledger.infrastructure.http.process import ServerProcess
from tests.e2e.test_cli_audit import creditledger
from tests.stores import POSTGRES_URL, postgres_schema, postgres_url

STORE_UNAVAILABLE = 7
COMMANDS = (("purchase", "show", "-n", "acme", "00000000-0000-0000-0000-000000000001"), ("serve",))


def refused(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The problem document of a run that could not open its store."""
    assert result.returncode == STORE_UNAVAILABLE, result.stderr
    assert "Traceback" not in result.stderr
    problem: dict[str, Any] = json.loads(result.stderr)
    assert problem["code"] == "store_unavailable"
    return problem


def cause(problem: dict[str, Any]) -> str:
    code: str = problem["errors"][0]["code"]
    return code


def _server(*, host: str | None = None, port: int | None = None) -> str:
    """The test server's URL with another host, port or database."""
    base = POSTGRES_URL if host is None else POSTGRES_URL.replace("127.0.0.1", host)
    return base if port is None else base.replace(":5432", f":{port}")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[-1] if c == ("serve",) else c[1])
@pytest.mark.parametrize(
    ("url", "expected_cause", "named"),
    [
        (_server(host="no-such-host.invalid"), "unknown_host", "no-such-host.invalid:5432"),
        (_server(port=1), "connection_refused", "127.0.0.1:1"),
        (
            POSTGRES_URL.rsplit("/", 1)[0] + "/creditledger_no_such_db",
            "database_not_found",
            "creditledger_no_such_db",
        ),
        (postgres_url("creditledger_no_such_schema"), "schema_not_found", "no_such_schema"),
    ],
    ids=["unknown-host", "refused-port", "missing-database", "missing-schema"],
)
def test_an_unreachable_postgresql_store_is_named_with_its_cause(
    url: str, expected_cause: str, named: str, command: tuple[str, ...]
) -> None:
    problem = refused(creditledger(url, *command))

    assert cause(problem) == expected_cause
    assert named in problem["detail"]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[-1] if c == ("serve",) else c[1])
def test_a_sqlite_path_below_a_file_is_named(tmp_path: Path, command: tuple[str, ...]) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    path = tmp_path / "a-file" / "ledger.sqlite"

    problem = refused(creditledger(f"sqlite:///{path}", *command))

    assert cause(problem) == "sqlite_directory_not_created"
    assert str(path) in problem["detail"]


@pytest.fixture
def read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody may write into, the superuser included (the immutable flag, where
    the tests run as root and chmod would not stop them)."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    if os.geteuid() != 0:
        directory.chmod(0o555)
        yield directory
        directory.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    made = chattr is not None and subprocess.run([chattr, "+i", str(directory)], check=False)
    if not made or made.returncode != 0:
        pytest.skip("running as root without chattr +i: no directory is read-only to root")
    yield directory
    subprocess.run([str(chattr), "-i", str(directory)], check=True)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[-1] if c == ("serve",) else c[1])
def test_a_sqlite_store_in_a_read_only_directory_is_named(
    read_only_directory: Path, command: tuple[str, ...]
) -> None:
    path = read_only_directory / "ledger.sqlite"

    problem = refused(creditledger(f"sqlite:///{path}", *command))

    assert cause(problem) == "sqlite_directory_read_only"
    assert str(path) in problem["detail"]


@pytest.mark.parametrize(
    "url", ["sqlite://relative.sqlite", "mysql://user:hunter2@db/ledger", "memory"]
)
def test_a_malformed_url_is_refused_with_the_accepted_forms(tmp_path: Path, url: str) -> None:
    result = creditledger(
        url, "purchase", "show", "-n", "acme", "00000000-0000-0000-0000-000000000001", cwd=tmp_path
    )

    assert result.returncode != 0
    assert "sqlite:///relative/path.sqlite" in result.stderr
    assert "postgresql://user:password@host:port/database" in result.stderr
    assert "hunter2" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # no directory named "sqlite:" or anything else


def test_the_cli_says_when_it_creates_a_new_empty_store(tmp_path: Path) -> None:
    url = "sqlite:///var/ledger.sqlite"
    purchase = ("purchase", "show", "-n", "acme", "00000000-0000-0000-0000-000000000001")

    first = creditledger(url, *purchase, cwd=tmp_path)
    again = creditledger(url, *purchase, cwd=tmp_path)

    assert f"created a new, empty store: SQLite file {tmp_path / 'var' / 'ledger.sqlite'}" in (
        first.stderr
    )
    assert "created a new" not in again.stderr


def test_postgres_tests_reach_a_schema_the_store_check_accepts() -> None:
    """The refusals above are the check's, not a broken test server: a real schema opens."""
    with postgres_schema() as schema:
        result = creditledger(postgres_url(schema), *COMMANDS[0])

    assert result.returncode == 4, result.stderr  # not found: the store opened


def test_serve_logs_the_resolved_store_at_start(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    log_path = tmp_path / "server.log"

    with ServerProcess(f"sqlite:///{path}", log_path):
        pass

    opened = [
        json.loads(line)
        for line in log_path.read_text().splitlines()
        if line.startswith("{") and '"ledger open"' in line
    ]
    assert [entry["location"] for entry in opened] == [f"SQLite file {path}"]
