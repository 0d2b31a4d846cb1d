"""The wallet half of a verification in halves keeps nothing per purchase once it is done with it.

In bench.verify's credit lifecycles each purchase settles (its last purchase event) before its
grant is consumed whole; the wallet half used to keep every such closed grant to the end of the
file, so its memory grew with the log (206 MiB at 10^6 events, on its way to about 2 GB at 10^7).
Here the half's traced memory after a log seven times as long is about what it is after the short
one: what it holds is the customers' wallets (1,000 here), not the purchases.
"""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.verify import load
from creditledger.application.audit.pairing import Half
from creditledger.application.audit.verify import ExportVerifier
from creditledger.infrastructure.audit.jobs import export_to_file
from creditledger.infrastructure.bootstrap import open_ledger

SHORT = 5_000
LONG = 35_000
ALLOWED_GROWTH = 1024 * 1024
"""Bytes; the closed grants of the 6,000 purchases between the two logs took several times it."""


def _export(directory: Path, events: int) -> Path:
    path = directory / f"{events}.jsonl"
    with open_ledger("memory://") as ledger:
        load(ledger, events)
        export_to_file(ledger, str(path), store="test", exported_at=datetime.now(UTC))
    return path


def _held_after_feeding(path: Path) -> int:
    """Bytes the wallet half holds, traced, once it has read the whole file (before finishing)."""
    tracemalloc.start()
    try:
        wallet_half = ExportVerifier([], half=Half.WALLETS)
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                wallet_half.feed(line)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert wallet_half.finish().ok
    return held


@pytest.mark.slow
def test_the_wallet_half_holds_about_as_much_after_a_long_log_as_after_a_short_one(
    tmp_path: Path,
) -> None:
    short = _held_after_feeding(_export(tmp_path, SHORT))
    long = _held_after_feeding(_export(tmp_path, LONG))
    assert long - short < ALLOWED_GROWTH, (short, long)
