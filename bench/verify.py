"""Audit speed: export, checkpoint and offline verify, next to the library's own replay rate.

A SQLite store is bulk-loaded with external purchase lifecycles of 5 events each (the purchase
initiated and its grant added to the customer's credit wallet, authorized, settled, then the whole
grant consumed: made by the real aggregates, stored through the real mapper, inserted in large
batches; 1,000 customers, so each wallet lives through many grants),
then each job runs ``--runs`` times (medians reported), each time in a fresh process so that its
peak RSS is its own:

- export: the whole log to a JSON Lines file (bulk reads, canonical bytes, hash chain);
- verify: that file, offline (parse, chain, domain replay, postings, balances);
- checkpoint: the chain over the whole log, recorded in the store;
- baseline: the bare library replaying the purchases (3 events each) with ``repository.get`` (one
  round trip per purchase: the way the live path loads one); its rate is per event.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from bench.machine import load_average, machine_facts
from creditledger.application.ledger import CreditLedger
from creditledger.domain.consumption import normalize_consumption
from creditledger.domain.events import LedgerEvent
from creditledger.domain.identity import wallet_id_for
from creditledger.domain.intent import PurchaseIntent, normalize_intent
from creditledger.domain.purchase import CommandContext, CreditPurchase, project_purchase
from creditledger.domain.wallet import CreditWallet, WalletContext
from creditledger.infrastructure.audit.jobs import export_to_file, take_checkpoint, verify_file
from creditledger.infrastructure.bootstrap import open_ledger

DEFAULT_EVENTS = 1_000_000
EVENTS_PER_LIFECYCLE = 5
"""Initiated, GrantAdded, PaymentAuthorized, PaymentSettled, CreditsConsumed."""
EVENTS_PER_PURCHASE = 3
"""A whole lifecycle's purchase events (what the baseline replays per purchase)."""
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
    """Fill the store with exactly ``events`` events: whole lifecycles (5 events each), and one or
    two shorter ones for the remainder (a purchase and its grant at least). Returns the whole
    lifecycles' purchase ids."""
    intents = _intents()
    wallets: dict[int, CreditWallet] = {}
    mapper, recorder = ledger.mapper, ledger.recorder
    purchase_ids: list[UUID] = []
    pending = []
    moment = START
    whole, remainder = divmod(events, EVENTS_PER_LIFECYCLE)
    # A remainder of 1 cannot stand alone (a purchase is granted with its wallet's event): one
    # whole lifecycle fewer, and two of 3 (initiated, granted, authorized) instead.
    shorter = [remainder] if remainder > 1 else [3, 3] if remainder == 1 else []
    whole -= 1 if remainder == 1 else 0
    for index, size in enumerate([EVENTS_PER_LIFECYCLE] * whole + shorter):
        moment += timedelta(milliseconds=1)
        purchase_id = uuid4()
        context = CommandContext(at=moment)
        intent = intents[index % CUSTOMERS]
        wallet = wallets.get(index % CUSTOMERS)
        if wallet is None:
            wallet = wallets[index % CUSTOMERS] = CreditWallet(
                wallet_id_for(intent.namespace, intent.customer_id, intent.currency),
                intent.namespace,
                intent.customer_id,
                intent.currency,
            )
        purchase = CreditPurchase.initiate(purchase_id, intent, context)
        wallet.add_grant(purchase.intent, WalletContext(at=moment))
        written: list[LedgerEvent] = [*purchase.collect_events(), *wallet.collect_events()]
        if size >= 3:
            purchase.authorize_payment(context)
        if size >= 4:
            purchase.settle_payment(context)
        written += purchase.collect_events()
        if size == EVENTS_PER_LIFECYCLE:
            spend = normalize_consumption(
                namespace=intent.namespace,
                customer_id=intent.customer_id,
                currency=intent.currency,
                amount=purchase.intent.credit_amount,
            )
            wallet.consume(uuid4(), spend, WalletContext(at=moment))
            written += wallet.collect_events()
            purchase_ids.append(purchase_id)
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
    """This process's peak resident set size plus its children's largest (export transcribes
    its last part in a child process), in MiB: an upper bound on the job's memory at any time."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    return _own_peak_rss_mib() + children


def _own_peak_rss_mib() -> float:
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
            events = len(purchase_ids) * EVENTS_PER_PURCHASE
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


@contextmanager
def workspace(keep: Path | None, prefix: str) -> Iterator[Path]:
    """Where the store, its export and the replay sample live: ``keep`` (made if missing, left
    in place, so a later run reuses the loaded store), else a temporary directory."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        yield Path(directory)


def load_once(directory: Path, events: int, replay_sample: int) -> dict[str, Any]:
    """The store in ``directory``: loaded with ``events`` events unless a run before this one
    loaded it completely (its ``loaded.json`` says how many); its facts."""
    facts_file = directory / "loaded.json"
    if facts_file.exists():
        facts: dict[str, Any] = json.loads(facts_file.read_text())
        if facts["events"] == events:
            return {**facts, "kept": True}
    store = directory / "ledger.sqlite"
    for leftover in (store, directory / "export.jsonl"):
        leftover.unlink(missing_ok=True)
    with open_ledger(f"sqlite:///{store}") as ledger:
        started = time.perf_counter()
        purchase_ids = load(ledger, events)
        seconds = time.perf_counter() - started
        stored = ledger.recorder.max_notification_id() or 0
    chosen = purchase_ids[: max(1, min(replay_sample, len(purchase_ids)))]
    (directory / "sample.txt").write_text("\n".join(str(purchase_id) for purchase_id in chosen))
    facts = {
        "events": stored,
        "purchases": len(purchase_ids),
        "sample": len(chosen),
        "seconds": seconds,
    }
    facts_file.write_text(json.dumps(facts))
    return {**facts, "kept": False}


def measure_verify(
    events: int = DEFAULT_EVENTS,
    *,
    replay_sample: int = DEFAULT_REPLAY_SAMPLE,
    runs: int = 1,
    keep: Path | None = None,
    on_progress: Callable[[str], object] = lambda message: None,
) -> dict[str, Any]:
    """Load ``events`` events into a fresh SQLite store (or reuse the one ``keep`` holds), then
    run each audit job ``runs`` times, each in a fresh process (so each peak RSS is the job's
    own); the figures are medians.

    The order of the jobs rotates from run to run, so a machine getting busier or quieter does
    not always favour the same job."""
    with workspace(keep, "creditledger-bench-verify-") as directory:
        store = directory / "ledger.sqlite"
        export = directory / "export.jsonl"
        sample = directory / "sample.txt"
        loaded = load_once(directory, events, replay_sample)
        stored, load_seconds = loaded["events"], loaded["seconds"]
        on_progress(f"loaded {stored:,} events" + (" (kept from before)" if loaded["kept"] else ""))
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
        "purchases": loaded["purchases"],
        "runs": runs,
        "load_events_per_second": _rate(stored, load_seconds),
        "export_bytes_per_event": export_bytes / stored if stored else 0,
        "library_replay_sample_purchases": loaded["sample"],
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
    parser.add_argument(
        "--store",
        type=Path,
        help="keep the store, its export and sample in this directory, reusing a store loaded "
        "there before with the same --events (bench.projections takes the same option)",
    )
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
        keep=options.store,
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
