"""The independent verifier printed in ``docs/audit-export.md`` works on real exports.

The page is the contract for people writing their own verifier; running its code keeps it true.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from creditledger.infrastructure.audit.jobs import take_checkpoint
from creditledger.infrastructure.bootstrap import open_ledger
from tests.application.audit_support import edit_event, export_lines, populate, rehash
from tests.clock import FixedClock

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-export.md"

Verify = Callable[..., str | None]


@pytest.fixture(scope="module")
def documented_verify() -> Verify:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("A minimal independent verifier") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "the verifier's code block is missing from the page"
    namespace: dict[str, Any] = {"__name__": "documented_verifier"}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)  # noqa: S102 - our own doc
    verify: Verify = namespace["verify"]
    return verify


@pytest.fixture
def export(tmp_path: Path) -> Iterator[tuple[Path, list[str], int, str]]:
    clock = FixedClock()
    with open_ledger("memory://", clock=clock) as ledger:
        populate(ledger, clock)
        checkpoint = take_checkpoint(ledger, datetime(2026, 6, 1, tzinfo=UTC))
        assert checkpoint is not None
        path = tmp_path / "export.jsonl"
        yield path, export_lines(ledger, path), checkpoint.position, checkpoint.chain_hash


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_documented_verifier_accepts_an_untouched_export(
    documented_verify: Verify, export: tuple[Path, list[str], int, str]
) -> None:
    path, _, _, _ = export
    assert documented_verify(path) is None


def test_the_documented_verifier_names_the_position_of_a_changed_event(
    documented_verify: Verify, export: tuple[Path, list[str], int, str], tmp_path: Path
) -> None:
    _, lines, _, _ = export
    changed = [line.replace('"credit_amount":"30.00"', '"credit_amount":"31.00"') for line in lines]
    assert documented_verify(_write(tmp_path / "changed.jsonl", changed)) == (
        "position 9: hash mismatch"
    )


def test_the_documented_verifier_checks_a_held_checkpoint_against_a_rewritten_chain(
    documented_verify: Verify, export: tuple[Path, list[str], int, str], tmp_path: Path
) -> None:
    _, lines, position, chain_hash = export
    forged = rehash(edit_event(lines, 9, data={"credit_amount": "80.00"}))
    path = _write(tmp_path / "forged.jsonl", forged)
    assert documented_verify(path, {position: chain_hash}) == (
        f"position {position}: checkpoint mismatch"
    )
