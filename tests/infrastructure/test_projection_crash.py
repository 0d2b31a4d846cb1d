"""A projector process killed in the middle of catching up resumes with nothing lost or doubled."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.catchup import load_history, synthetic_history
from creditledger.application.ledger import CreditLedger
from creditledger.domain.events import LedgerEvent, PurchaseEventBase
from creditledger.infrastructure.projections.operations import verify
from tests.readmodels_support import logged_events, logged_postings, read_models

CREDITLEDGER = str(Path(sys.executable).parent / "creditledger")
EVENTS = 1500


@functools.cache
def history() -> list[LedgerEvent]:
    return synthetic_history(EVENTS, seed=7)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.mark.slow
def test_a_projector_killed_mid_batch_resumes_with_no_duplicate_and_no_missing_row(
    ledger: CreditLedger, store_url: str
) -> None:
    load_history(ledger, history())
    head = ledger.recorder.max_notification_id() or 0
    command = [CREDITLEDGER, "--database-url", store_url, "projections"]
    with read_models(ledger) as views:
        projector = subprocess.Popen(
            [*command, "run", "--batch-size", "20"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while views.read_models.position() == 0 and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            # Killed as soon as its position first moves: it is catching up, inside a batch.
            os.kill(projector.pid, signal.SIGKILL)
            projector.wait()
        killed_at = views.read_models.position()
        assert 0 < killed_at < head

        rerun = subprocess.run(
            [*command, "run", "--until-caught-up", "--json"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert rerun.returncode == 0, rerun.stderr
        # Every event after the committed position, once: the killed batch was not half-kept.
        assert json.loads(rerun.stdout) == {
            "applied_while_catching_up": head - killed_at,
            "caught_up_apart": [],
            "position": head,
        }
        report = verify(views.log, views.database)
        assert report.ok, report.as_dict()

        snapshot = views.database.snapshot()
        events = logged_events(ledger)
        # The log holds the customers' wallets too (each purchase's grant): count purchases.
        purchases = {e.originator_id for _, e in events if isinstance(e, PurchaseEventBase)}
        assert len(snapshot.purchases) == len(purchases)
        assert len(snapshot.entries) == len(logged_postings(ledger))
        assert len({entry.id for entry in snapshot.entries}) == len(snapshot.entries)
