"""Audit speed: export, checkpoint and offline verify, next to the library's own replay rate.

A SQLite store is bulk-loaded with external purchases of 4 events each (initiated and the grant
in the customer's credit wallet, authorized, settled: made by the real aggregates, stored through
the real mapper, inserted in large batches),
then each job runs ``--runs`` times (medians reported), each time in a fresh process so that its
peak RSS is its own:

- export: the whole log to a JSON Lines file (bulk reads, canonical bytes, hash chain);
- verify: that file, offline (parse, chain, domain replay, postings, balances);
- checkpoint: the chain over the whole log, recorded in the store;
- baseline: the bare library replaying purchases of the same size with ``repository.get`` (one
  round trip per purchase: the way the live path loads one).

Run: ``.venv/bin/python -m bench.verify [--events N] [--runs R] [--replay-sample N] [--json PATH]``
(default 1,000,000 events; ``--events 30000`` for a quick run; ``--events 10000000`` for the
issue's memory target).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from bench.machine import load_average, machine_facts
from bench.wallets import Wallets
from creditledger.application.ledger import CreditLedger
from creditledger.domain.events import LedgerEvent
from creditledger.domain.intent import PurchaseIntent, normalize_intent
from creditledger.domain.purchase import CommandContext, CreditPurchase, project_purchase
from creditledger.infrastructure.audit.jobs import export_to_file, take_checkpoint, verify_file
from creditledger.infrastructure.bootstrap import open_ledger

DEFAULT_EVENTS = 1_000_000
EVENTS_PER_PURCHASE = 4
"""In the log: the purchase's three events and its grant in the customer's wallet."""
PURCHASE_EVENTS = 3
"""What the library's replay of one purchase reads."""
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
    """Fill the store with ``events`` events: whole purchase lifecycles (4 events each: the
    grant in the customer's wallet is written with the purchase's first), and one shorter
    purchase for the remainder (initiated with its grant, then authorized if 3 remain; a
    remainder of 1 cannot be a purchase of its own, so it is one event more). Returns the whole
    lifecycles' ids."""
    intents = _intents()
    wallets = Wallets()
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
        written: list[LedgerEvent] = [*purchase.collect_events(), *wallets.grant(purchase.intent)]
        if index < whole or remainder == 3:
            purchase.authorize_payment(context)
        if index < whole:
            purchase.settle_payment(context)
            purchase_ids.append(purchase_id)
        written += purchase.collect_events()
        pending += [mapper.to_stored_event(event) for event in written]
        if len(pending) >= LOAD_BATCH:
            recorder.insert_events(pending)
            pending = []
    if pending:
        recorder.insert_events(pending)
    return purchase_ids


def _rate(events: int, seconds: float) -> float:
    return events / seconds if seconds > 0 else float("inf")


def _peak_rss_mib() -> float:
    """This process's peak resident set size, in MiB."""
    # Linux carries ru_maxrss over fork and exec, so a job's child would report the parent's
    # peak (the loader's) if that is higher; VmHWM belongs to this process's own memory map.
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- the jobs: each runs in its own process, so its peak RSS is its own ---------------------------

JOBS = ("export", "verify", "checkpoint", "replay")


def run_job(job: str, store: Path, export: Path, sample: Path) -> dict[str, float]:
    """One audit job, timed, in this process: its seconds, events and this process's peak RSS."""
    if job == "verify":
        started = time.perf_counter()
        report = verify_file(str(export))
        seconds = time.perf_counter() - started
        if not report.ok:
            msg = f"verify failed on an untouched export: {report.failure}"
            raise RuntimeError(msg)
        return {"seconds": seconds, "events": report.events, "peak_rss_mib": _peak_rss_mib()}
    with open_ledger(f"sqlite:///{store}") as ledger:
        started = time.perf_counter()
        if job == "export":
            result = export_to_file(
                ledger, str(export), store="bench", exported_at=datetime.now(UTC)
            )
            events = result.trailer.event_count
        elif job == "checkpoint":
            checkpoint = take_checkpoint(ledger, datetime.now(UTC))
            events = checkpoint.position if checkpoint else 0
        else:
            purchase_ids = [UUID(line) for line in sample.read_text().split()]
            started = time.perf_counter()
            for purchase_id in purchase_ids:
                ledger.repository.get(purchase_id, projector_func=_project)
            events = len(purchase_ids) * PURCHASE_EVENTS
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "events": events, "peak_rss_mib": _peak_rss_mib()}


def _in_child(job: str, store: Path, export: Path, sample: Path) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.verify", "--job", job, str(store), str(export)]
    done = subprocess.run(
        [*command, str(sample)], capture_output=True, text=True, check=False, cwd=_ROOT
    )
    if done.returncode != 0:
        msg = f"bench.verify --job {job} failed:\n{done.stderr[-2000:]}"
        raise RuntimeError(msg)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


_ROOT = Path(__file__).resolve().parent.parent


def measure_verify(
    events: int = DEFAULT_EVENTS,
    *,
    replay_sample: int = DEFAULT_REPLAY_SAMPLE,
    runs: int = 1,
    on_progress: Callable[[str], object] = lambda message: None,
) -> dict[str, Any]:
    """Load ``events`` events into a fresh SQLite store, then run each audit job ``runs`` times,
    each in a fresh process (so each peak RSS is the job's own); the figures are medians.

    The order of the jobs rotates from run to run, so a machine getting busier or quieter does
    not always favour the same job."""
    with tempfile.TemporaryDirectory(prefix="creditledger-bench-verify-") as directory:
        store = Path(directory) / "ledger.sqlite"
        export = Path(directory) / "export.jsonl"
        sample = Path(directory) / "sample.txt"
        with open_ledger(f"sqlite:///{store}") as ledger:
            started = time.perf_counter()
            purchase_ids = load(ledger, events)
            load_seconds = time.perf_counter() - started
            stored = ledger.recorder.max_notification_id() or 0
        chosen = purchase_ids[: max(1, min(replay_sample, len(purchase_ids)))]
        sample.write_text("\n".join(str(purchase_id) for purchase_id in chosen))
        on_progress(f"loaded {stored:,} events")
        results: dict[str, list[dict[str, float]]] = {job: [] for job in JOBS}
        # Export first: the other jobs read its file.
        results["export"].append(_in_child("export", store, export, sample))
        for run in range(runs):
            others = [job for job in JOBS if job != "export" or run > 0]
            rotation = run % len(others)
            for job in others[rotation:] + others[:rotation]:
                results[job].append(_in_child(job, store, export, sample))
                on_progress(f"run {run + 1}/{runs}: {job}")
        export_bytes = export.stat().st_size if export.exists() else 0
    figures: dict[str, Any] = {
        "backend": "sqlite",
        "events": stored,
        "purchases": len(purchase_ids),
        "runs": runs,
        "load_events_per_second": _rate(stored, load_seconds),
        "export_bytes_per_event": export_bytes / stored if stored else 0,
        "library_replay_sample_purchases": len(chosen),
    }
    for job, done in results.items():
        name = "library_replay" if job == "replay" else job
        rates = [_rate(int(result["events"]), result["seconds"]) for result in done[-runs:]]
        figures[f"{name}_events_per_second"] = statistics.median(rates)
        figures[f"{name}_runs"] = rates
        figures[f"{name}_peak_rss_mib"] = max(result["peak_rss_mib"] for result in done)
    figures["verify_seconds"] = figures["events"] / figures["verify_events_per_second"]
    figures["verify_vs_library_replay"] = (
        figures["verify_events_per_second"] / figures["library_replay_events_per_second"]
    )
    return figures


def _project(purchase: Any, events: Any) -> Any:
    return project_purchase(purchase, events)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.verify", description=__doc__)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--runs", type=int, default=3, help="runs of each job; medians reported")
    parser.add_argument("--replay-sample", type=int, default=DEFAULT_REPLAY_SAMPLE)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--job", choices=JOBS, help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.job:
        print(json.dumps(run_job(options.job, *options.paths)))
        return
    print(f"machine: {machine_facts()}")
    figures = measure_verify(
        options.events,
        replay_sample=options.replay_sample,
        runs=options.runs,
        on_progress=lambda message: print(message, file=sys.stderr),
    )
    figures["load average at end"] = load_average()
    for name, value in figures.items():
        if isinstance(value, list):
            shown = ", ".join(f"{item:,.0f}" for item in value)
        else:
            shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        print(f"{name:36} {shown}")
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
