"""The transition table exported as JSON stays in step with the code, and so does its diagram."""

from __future__ import annotations

import json
import re
from pathlib import Path

from creditledger.domain.rules import mermaid_diagram, table_as_json

EXPORT = Path(__file__).resolve().parents[2] / "docs" / "transition-table.json"
REGENERATE = (
    "regenerate it with: .venv/bin/python -c 'from creditledger.domain.rules import table_as_json; "
    'print(table_as_json(), end="")\' > docs/transition-table.json'
)
_STATE = re.compile(r'^\s*state "(?P<status>[^"]+)" as (?P<alias>\w+)$')
_EDGE = re.compile(
    r"^\s*(?P<source>\S+) --> (?P<target>\S+): "
    r"(?P<command>\S+) \((?P<settlements>[^)]+)\) / (?P<events>.+)$"
)


def test_the_exported_transition_table_is_the_one_the_code_follows() -> None:
    assert EXPORT.exists(), f"{EXPORT} is missing; {REGENERATE}"
    assert EXPORT.read_text() == table_as_json(), (
        f"{EXPORT.name} drifted from the code; {REGENERATE}"
    )


def test_the_state_diagram_draws_every_transition_of_the_exported_table_and_no_other() -> None:
    aliases: dict[str, str] = {"[*]": "(new)"}
    edges: set[tuple[str, str, str]] = set()
    for line in mermaid_diagram().splitlines():
        if state := _STATE.match(line):
            aliases[state["alias"]] = state["status"]
        elif (edge := _EDGE.match(line)) and edge["target"] != "[*]":
            # One edge names every settlement type that takes it.
            for settlement in edge["settlements"].split(", "):
                label = f"{edge['command']} ({settlement}) / {edge['events']}"
                edges.add((aliases[edge["source"]], aliases[edge["target"]], label))
    table = json.loads(EXPORT.read_text())
    drawn_from_table = {
        (
            row["status"] or "(new)",
            row["target"],
            f"{row['command']} ({row['settlement']}) / {' + '.join(row['events'])}",
        )
        for row in table["rules"]
        if row["target"] is not None and row["target"] != row["status"]
    }
    assert edges == drawn_from_table
    # Rows that keep the status (a void, a refund) are drawn once, as a note naming their
    # settlements.
    for command in ("void", "refund"):
        keeping = sorted(
            {
                row["settlement"]
                for row in table["rules"]
                if row["target"] == row["status"] and row["command"] == command
            }
        )
        assert f"{command} ({', '.join(keeping)})" in mermaid_diagram()


def test_the_exported_table_says_where_every_event_leaves_a_purchase() -> None:
    table = json.loads(EXPORT.read_text())
    status_after = {(entry["settlement"], entry["event"]) for entry in table["status_after"]}
    for row in table["rules"]:
        if row["target"] == row["status"]:
            continue  # an event that keeps the status (a void) moves nothing
        for event in row["events"]:
            assert (row["settlement"], event) in status_after, row
