"""The command line loads only what the command run needs: on a SQLite store, no command but
``relay`` and ``consume`` imports nats (with aiohttp), and none imports psycopg.

Those two cost about a quarter of a second at every start. Each case runs the CLI's entry point
in a fresh interpreter on a SQLite file, then lists the modules that interpreter holds. (The
relay commands themselves, which import them when they run, are run in tests/infrastructure.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from creditledger.infrastructure.bootstrap import open_ledger
from creditledger.infrastructure.cli import relay as relay_commands
from creditledger.infrastructure.relay import relay
from tests.application.builders import external_purchase

TIMEOUT = 60
AVOIDED = ("nats", "aiohttp", "psycopg", "psycopg_pool", "eventsourcing.postgres")
ABSENT = "00000000-0000-0000-0000-000000000001"
NOT_FOUND = 4

RUN_AND_LIST = """
import json, sys
from creditledger.infrastructure.cli import main
listing, sys.argv = sys.argv[1], ["creditledger", *sys.argv[2:]]
try:
    main()
except SystemExit as stop:
    code = stop.code
else:
    code = 0
with open(listing, "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""

INITIATE = (
    "purchase initiate -n acme -c c1 --currency USD --credit-amount 10 --cost-basis 1 "
    "--initial-status settled"
)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A SQLite file holding one purchase, written in-process (the commands read it)."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with open_ledger(url) as ledger:
        ledger.initiate(external_purchase(initial_status="settled"))
    return url


def run_listing(database_url: str, listing: Path, *args: str) -> tuple[int, list[str]]:
    """Run ``creditledger ARGS`` on the store in a fresh interpreter: its exit code and the
    modules it had imported by the end."""
    env = {**os.environ, "CREDITLEDGER_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST, str(listing), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert listing.exists(), result.stderr
    found = json.loads(listing.read_text())
    return found["code"], found["modules"]


def avoided_in(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == a or m.startswith(f"{a}.") for a in AVOIDED)]


@pytest.mark.parametrize(
    ("command", "exit_code"),
    [
        ("--help", 0),
        (INITIATE, 0),
        (f"history -n acme {ABSENT}", NOT_FOUND),  # the store is opened and read
        (f"show -n acme {ABSENT}", NOT_FOUND),
        ("purchase list -n acme", 0),
        ("projections status", 0),
        ("audit checkpoint", 0),
    ],
    ids=["help", "initiate", "history", "show", "list", "projections-status", "audit-checkpoint"],
)
def test_a_sqlite_command_imports_neither_nats_nor_psycopg(
    database_url: str, tmp_path: Path, command: str, exit_code: int
) -> None:
    code, modules = run_listing(database_url, tmp_path / "modules.json", *command.split())
    assert code == exit_code
    assert avoided_in(modules) == []
    # The listing does see what a command imports while it runs: the ledger's SQLite recorder.
    assert command == "--help" or "creditledger.infrastructure.persistence.sqlite" in modules


def test_the_relay_options_default_to_the_relays_batch_size() -> None:
    """The CLI writes the relay's default out (reading it would import nats at every start)."""
    assert relay_commands.DEFAULT_BATCH_SIZE == relay.DEFAULT_BATCH_SIZE
