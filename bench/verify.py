"""Audit speed: export, checkpoint and offline verify, next to the library's own replay rate.

A SQLite store is bulk-loaded with external purchases of 3 events each (initiated, authorized,
settled: made by the real aggregate, stored through the real mapper, inserted in large batches),
then, in the same run:

- export: the whole log to a JSON Lines file (bulk reads, canonical bytes, hash chain);
- verify: that file, offline (parse, chain, domain replay, postings, balances);
- checkpoint: the chain over the whole log, recorded in the store;
- baseline: the bare library replaying purchases of the same size with ``repository.get`` (one
  round trip per purchase: the way the live path loads one).

Run: ``.venv/bin/python -m bench.verify [--events N] [--replay-sample N] [--json PATH]``
(default 1,000,000 events; ``--events 30000`` for a quick run).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from creditledger.application.ledger import CreditLedger
from creditledger.domain.intent import PurchaseIntent, normalize_intent
from creditledger.domain.purchase import CommandContext, CreditPurchase, project_purchase
from creditledger.infrastructure.audit.jobs import export_to_file, take_checkpoint, verify_file
from creditledger.infrastructure.bootstrap import open_ledger

DEFAULT_EVENTS = 1_000_000
EVENTS_PER_PURCHASE = 3
LOAD_BATCH = 30_000
"""Stored events per insert transaction while loading."""
CUSTOMERS = 1000
DEFAULT_REPLAY_SAMPLE = 20_000
"""Purchases the baseline replays one by one (a sample: the rate is per event)."""
START = datetime(2026, 1, 1, tzinfo=UTC)


def _intents() -> list[PurchaseIntent]:
    return [
        normalize_intent(
            now=START,
            namespace=f"tenant-{index % 7}",
            customer_id=f"customer-{index}",
            currency="USD",
            credit_amount="100.123",
            cost_basis="0.5",
            settlement_type="external",
        )
        for index in range(CUSTOMERS)
    ]


def load(ledger: CreditLedger, events: int) -> list[UUID]:
    """Fill the store with exactly ``events`` events: whole purchase lifecycles (3 events each),
    and one shorter purchase for the remainder. Returns the whole lifecycles' ids."""
    intents = _intents()
    mapper, recorder = ledger.mapper, ledger.recorder
    purchase_ids: list[UUID] = []
    pending = []
    moment = START
    whole, remainder = divmod(events, EVENTS_PER_PURCHASE)
    for index in range(whole + (1 if remainder else 0)):
        moment += timedelta(milliseconds=1)
        purchase_id = uuid4()
        context = CommandContext(at=moment)
        purchase = CreditPurchase.initiate(purchase_id, intents[index % CUSTOMERS], context)
        if index < whole or remainder == 2:
            purchase.authorize_payment(context)
        if index < whole:
            purchase.settle_payment(context)
            purchase_ids.append(purchase_id)
        pending += [mapper.to_stored_event(event) for event in purchase.collect_events()]
        if len(pending) >= LOAD_BATCH:
            recorder.insert_events(pending)
            pending = []
    if pending:
        recorder.insert_events(pending)
    return purchase_ids


def _rate(events: int, seconds: float) -> float:
    return events / seconds if seconds > 0 else float("inf")


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_verify(
    events: int = DEFAULT_EVENTS, *, replay_sample: int = DEFAULT_REPLAY_SAMPLE
) -> dict[str, Any]:
    """Load ``events`` events into a fresh SQLite store and time each audit job on them."""
    with tempfile.TemporaryDirectory(prefix="creditledger-bench-verify-") as directory:
        store = Path(directory) / "ledger.sqlite"
        export = Path(directory) / "export.jsonl"
        with open_ledger(f"sqlite:///{store}") as ledger:
            started = time.perf_counter()
            purchase_ids = load(ledger, events)
            load_seconds = time.perf_counter() - started
            stored = ledger.recorder.max_notification_id() or 0

            started = time.perf_counter()
            exported = export_to_file(
                ledger, str(export), store="bench", exported_at=datetime.now(UTC)
            )
            export_seconds = time.perf_counter() - started

            started = time.perf_counter()
            report = verify_file(str(export))
            verify_seconds = time.perf_counter() - started
            if not report.ok or report.events != stored:
                msg = f"verify failed on an untouched export: {report.failure}"
                raise RuntimeError(msg)

            started = time.perf_counter()
            checkpoint = take_checkpoint(ledger, datetime.now(UTC))
            checkpoint_seconds = time.perf_counter() - started
            if checkpoint is None or checkpoint.chain_hash != exported.trailer.final_hash:
                msg = "the checkpoint's chain hash differs from the export's final hash"
                raise RuntimeError(msg)

            sample = purchase_ids[: max(1, min(replay_sample, len(purchase_ids)))]
            started = time.perf_counter()
            for purchase_id in sample:
                ledger.repository.get(purchase_id, projector_func=_project)
            replay_seconds = time.perf_counter() - started
            replayed = len(sample) * EVENTS_PER_PURCHASE
        export_bytes = export.stat().st_size if export.exists() else 0
    return {
        "backend": "sqlite",
        "events": stored,
        "purchases": len(purchase_ids),
        "load_events_per_second": _rate(stored, load_seconds),
        "export_events_per_second": _rate(stored, export_seconds),
        "export_bytes_per_event": export_bytes / stored if stored else 0,
        "verify_events_per_second": _rate(stored, verify_seconds),
        "verify_seconds": verify_seconds,
        "checkpoint_events_per_second": _rate(stored, checkpoint_seconds),
        "library_replay_events_per_second": _rate(replayed, replay_seconds),
        "library_replay_sample_purchases": len(sample),
        "verify_vs_library_replay": _rate(stored, verify_seconds) / _rate(replayed, replay_seconds),
        "peak_rss_mib": _peak_rss_mib(),
    }


def _project(purchase: Any, events: Any) -> Any:
    return project_purchase(purchase, events)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.verify", description=__doc__)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--replay-sample", type=int, default=DEFAULT_REPLAY_SAMPLE)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args(argv)
    figures = measure_verify(options.events, replay_sample=options.replay_sample)
    for name, value in figures.items():
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        print(f"{name:36} {shown}")
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
