"""``projections verify`` and ``projections rebuild`` at scale: speed and peak memory (issue 14).

A SQLite store is bulk-loaded with ``bench.verify``'s log (purchase lifecycles of 5 events, made
by the real aggregates) and its read models are caught up; then each job runs ``--runs`` times,
each time in a fresh process, so that its peak RSS (``VmHWM``) is its own:

- verify: ``operations.verify`` (rebuild every model into temporary SQLite files, the ledger
  model by a second process, then merge both sides table by table in key order); the second
  process's peak RSS is reported beside the job's own;
- rebuild: ``operations.rebuild_together`` of the four models, as ``projections rebuild all``
  does since session 10 (one pass over the log, the four swapped in together);
- with ``--each``, also rebuild-each: ``operations.rebuild`` of each model in turn, as ``rebuild
  all`` did before (four passes over the log). Both rates count the log's events once, so they
  compare as the jobs' times do;
- baseline: the bare library replaying a sample of the purchases with ``repository.get``.

Run: ``.venv/bin/python -m bench.projections [--events N] [--runs R] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from bench.machine import load_average, machine_facts
from bench.verify import EVENTS_PER_PURCHASE, load_once, workspace
from creditledger.application.projections.rows import ReadModelName
from creditledger.application.projections.source import EventLog
from creditledger.domain.purchase import project_purchase
from creditledger.infrastructure.bootstrap import open_ledger, open_view_database
from creditledger.infrastructure.projections import operations
from creditledger.infrastructure.projections.runner import ProjectionRunner

DEFAULT_EVENTS = 300_000
REPLAY_SAMPLE = 20_000
JOBS = ("verify", "rebuild", "replay")
EACH = "rebuild_each"
_ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mib() -> float:
    """This process's own peak resident set size (``VmHWM``), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def second_process_peak_rss_mib() -> float:
    """The largest peak resident set size of this process's children (``projections verify``
    rebuilds the ledger model in one), in MiB; 0 without children."""
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_job(job: str, store: Path, sample: Path) -> dict[str, float]:
    """One job, timed, in this process: its seconds, events, peak RSS and its second process's
    (both resident at once at worst: their sum bounds the job's)."""
    with open_ledger(f"sqlite:///{store}") as ledger, open_view_database(ledger) as database:
        log = EventLog(ledger)
        started = time.perf_counter()
        if job == "verify":
            report = operations.verify(log, database)
            if not report.ok:
                msg = f"verify found {report.count} differences in untouched views"
                raise RuntimeError(msg)
            events = log.head()
        elif job == "rebuild":
            reports = operations.rebuild_together(log, database, list(ReadModelName))
            events = reports[0].events
        elif job == EACH:
            events = max(operations.rebuild(log, database, model).events for model in ReadModelName)
        else:
            purchase_ids = [UUID(line) for line in sample.read_text().split()]
            started = time.perf_counter()
            for purchase_id in purchase_ids:
                ledger.repository.get(purchase_id, projector_func=_project)
            events = len(purchase_ids) * EVENTS_PER_PURCHASE
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "events": events,
        "peak_rss_mib": peak_rss_mib(),
        "second_process_peak_rss_mib": second_process_peak_rss_mib(),
    }


def _project(purchase: Any, events: Any) -> Any:
    return project_purchase(purchase, events)


def _in_child(job: str, store: Path, sample: Path) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.projections", "--job", job, str(store), str(sample)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=_ROOT)
    if done.returncode != 0:
        msg = f"bench.projections --job {job} failed:\n{done.stderr[-2000:]}"
        raise RuntimeError(msg)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def measure_projection_jobs(
    events: int = DEFAULT_EVENTS, *, runs: int = 3, keep: Path | None = None, each: bool = False
) -> dict[str, Any]:
    """Load and project ``events`` events in a fresh SQLite store (or reuse the one ``keep``
    holds), then run each job ``runs`` times in rotating order, each in a fresh process; rates
    are medians, RSS the highest."""
    with workspace(keep, "creditledger-bench-projections-") as directory:
        store = directory / "ledger.sqlite"
        sample = directory / "sample.txt"
        stored = load_once(directory, events, REPLAY_SAMPLE)["events"]
        with open_ledger(f"sqlite:///{store}") as ledger, open_view_database(ledger) as database:
            # The live views the verify job compares with (a kept store's are caught up already).
            ProjectionRunner(EventLog(ledger), database).catch_up()
        jobs = (*JOBS, EACH) if each else JOBS
        results: dict[str, list[dict[str, float]]] = {job: [] for job in jobs}
        for run in range(runs):
            rotation = run % len(jobs)
            for job in jobs[rotation:] + jobs[:rotation]:
                results[job].append(_in_child(job, store, sample))
    figures: dict[str, Any] = {"backend": "sqlite", "events": stored, "runs": runs}
    for job, done in results.items():
        name = "library_replay" if job == "replay" else job
        rates = [result["events"] / result["seconds"] for result in done]
        figures[f"{name}_events"] = int(done[0]["events"])
        figures[f"{name}_events_per_second"] = statistics.median(rates)
        figures[f"{name}_runs"] = rates
        figures[f"{name}_peak_rss_mib"] = max(result["peak_rss_mib"] for result in done)
        figures[f"{name}_second_process_peak_rss_mib"] = max(
            result["second_process_peak_rss_mib"] for result in done
        )
    return figures


def _second_process(peak_mib: float) -> str:
    return f" + {peak_mib:,.0f} MiB (second process)" if peak_mib else ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.projections", description=__doc__)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--runs", type=int, default=3, help="runs of each job; medians reported")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--store",
        type=Path,
        help="keep the store in this directory, reusing one loaded there before with the same "
        "--events (by this or by bench.verify --store)",
    )
    parser.add_argument(
        "--each",
        action="store_true",
        help="also rebuild the four models one after another (four passes), as rebuild all did "
        "before session 10",
    )
    parser.add_argument(
        "--job", nargs=3, metavar=("JOB", "STORE", "SAMPLE"), help=argparse.SUPPRESS
    )
    options = parser.parse_args(argv)
    if options.job:
        job, store, sample = options.job
        print(json.dumps(run_job(job, Path(store), Path(sample))))
        return
    facts = machine_facts()
    figures = measure_projection_jobs(
        options.events, runs=options.runs, keep=options.store, each=options.each
    )
    facts["load average at end"] = load_average()
    for name, value in facts.items():
        print(f"{name}: {value}")
    print(f"{figures['events']:,} events, SQLite, medians of {options.runs} runs")
    names = ("verify", "rebuild", *((EACH,) if options.each else ()), "library_replay")
    for name in names:
        print(
            f"{name:<15} {figures[f'{name}_events_per_second']:>10,.0f} events/s  peak RSS "
            f"{figures[f'{name}_peak_rss_mib']:,.0f} MiB"
            + _second_process(figures[f"{name}_second_process_peak_rss_mib"])
            + "  (runs "
            + ", ".join(f"{rate:,.0f}" for rate in figures[f"{name}_runs"])
            + ")"
        )
    if options.json:
        options.json.write_text(json.dumps({"machine": facts, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
