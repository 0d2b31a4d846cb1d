"""The whole benchmark suite (``make bench``): every row next to its baseline, in one run.

Rows, by section:

1. the bare library appending 1 event per save (1 and 32 threads) and 10 per save, against
2. the raw drivers (psycopg, sqlite3) writing the same rows, 1 per commit and 10 per
   ``executemany``, with as many connections as the library has threads;
3. creditledger lifecycles with 1, 8 and 32 concurrent callers, against the bare library doing
   the same commands with as many threads;
4. (later) lifecycles over HTTP, against the same lifecycles through the Python API;
5. full-log replay: creditledger folding its log, against the library's ``repository.get`` of
   every aggregate;
6. (later) projection catch-up over the whole log, against the replay of row 5;
7. growth: creditledger lifecycles with 10^6 events already stored, against 10^3.

Run: ``.venv/bin/python -m bench [--backends ...] [--runs R] [--sections 1,3,5,7]
[--scale F] [--growth-events N] [--json PATH]``; JSON goes to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.baselines import EVENTS_PER_LIFECYCLE, library_appends
from bench.growth import GROWTH_BACKENDS, grown_lifecycles
from bench.lifecycles import DEFAULT_PURCHASES, lifecycle_rows, parse_backends, skipped_row
from bench.machine import load_average, machine_facts
from bench.rawdriver import raw_inserts
from bench.report import Row, as_json, console, render, write_json
from bench.stores import BACKENDS, Backend, fresh_store, ledger_configuration, postgres_problem
from bench.timing import Rate, Timing

RESULTS = Path(__file__).parent / "results" / "latest.json"
DEFAULT_RUNS = 3
SECTIONS = ("1", "3", "4", "5", "6", "7")
CONCURRENT_CALLERS = (8, 32)
GROWTH_SIZES = (1_000, 1_000_000)

# Events or lifecycles per run: about a second per run on a quiet 2-core machine.
APPEND_EVENTS: dict[Backend, int] = {"memory": 6000, "sqlite": 1500, "postgres": 500}
APPEND_EVENTS_32_THREADS: dict[Backend, int] = {"sqlite": 1600, "postgres": 960}
BATCH_EVENTS: dict[Backend, int] = {"sqlite": 5000, "postgres": 3000}
CONCURRENT_PURCHASES: dict[Backend, int] = {"sqlite": 320, "postgres": 192}
GROWTH_PURCHASES: dict[Backend, int] = {"sqlite": 200, "postgres": 150}
APPEND_WARMUP = 20
"""Untimed saves (per connection for the raw drivers) before each timed append run."""


@dataclass(frozen=True)
class Scale:
    """Multiplies every size, keeping each a multiple of what divides it (callers, batch)."""

    factor: float

    def of(self, size: int, multiple: int = 1) -> int:
        scaled = max(multiple, round(size * self.factor))
        return max(multiple, scaled - scaled % multiple)


def paired(
    runs: int, measured: Callable[[], Timing], baseline: Callable[[], Timing]
) -> tuple[tuple[Timing, ...], tuple[Timing, ...]]:
    """R runs of each side, alternating which goes first, each making its own fresh store."""
    ours: list[Timing] = []
    theirs: list[Timing] = []
    for run in range(runs):
        for side in (0, 1) if run % 2 == 0 else (1, 0):
            if side == 0:
                ours.append(measured())
            else:
                theirs.append(baseline())
    return tuple(ours), tuple(theirs)


def _library_appends(backend: Backend, events: int, threads: int, per_save: int) -> Timing:
    with fresh_store(backend) as store:
        return library_appends(store, events, threads, per_save, APPEND_WARMUP)


def _raw_inserts(backend: Backend, rows: int, callers: int, per_txn: int) -> Timing:
    with fresh_store(backend) as store:
        return raw_inserts(store, rows, callers, per_txn, APPEND_WARMUP)


def _threads(count: int) -> str:
    return "1 thread" if count == 1 else f"{count} threads"


def append_rows(backend: Backend, runs: int, scale: Scale) -> list[Row]:
    """Section 1 against section 2: the library's appends next to the driver's inserts."""
    driver = "psycopg" if backend == "postgres" else "sqlite3"
    plans: list[tuple[int, int, int]] = [(1, 1, scale.of(APPEND_EVENTS[backend]))]
    if backend in APPEND_EVENTS_32_THREADS:
        plans.append((32, 1, scale.of(APPEND_EVENTS_32_THREADS[backend], 32)))
    if backend in BATCH_EVENTS:
        plans.append((1, 10, scale.of(BATCH_EVENTS[backend], 10)))
    rows: list[Row] = []
    for threads, per_save, events in plans:
        title = f"appends, {per_save} event{'s' if per_save > 1 else ''}/save, {_threads(threads)}"
        measured_label = f"bare library, {per_save}/save, {_threads(threads)}"
        if backend == "memory":
            library = tuple(
                _library_appends(backend, events, threads, per_save) for _ in range(runs)
            )
            rows.append(
                Row("1", title, backend, f"{events} events", Rate(measured_label, "save", library))
            )
            continue
        library, raw = paired(
            runs,
            partial(_library_appends, backend, events, threads, per_save),
            partial(_raw_inserts, backend, events, threads, per_save),
        )
        per_txn = "1 row/commit" if per_save == 1 else f"executemany {per_save} rows/commit"
        connections = "1 connection" if threads == 1 else f"{threads} connections"
        rows.append(
            Row(
                "1 vs 2",
                title,
                backend,
                f"{events} events",
                Rate(measured_label, "save", library),
                Rate(f"raw {driver}, {per_txn}, {connections}", "commit", raw),
            )
        )
    return rows


def concurrency_rows(backend: Backend, runs: int, scale: Scale, *, replay: bool) -> list[Row]:
    """Section 3 (and 5, from the single-caller runs): creditledger against the library."""
    rows = lifecycle_rows(
        backend, scale.of(DEFAULT_PURCHASES[backend]), runs, 1, section="3", replay=replay
    )
    if backend in CONCURRENT_PURCHASES:
        for callers in CONCURRENT_CALLERS:
            purchases = scale.of(CONCURRENT_PURCHASES[backend], max(CONCURRENT_CALLERS))
            rows += lifecycle_rows(backend, purchases, runs, callers, section="3", replay=False)
    return rows


def growth_rows(
    backends: Sequence[Backend], runs: int, scale: Scale, growth_events: int
) -> list[Row]:
    """Section 7: the same lifecycles on a store holding 10^6 events and on one holding 10^3."""
    chosen = [backend for backend in backends if backend in GROWTH_BACKENDS]
    if not chosen:
        return []
    small, big = GROWTH_SIZES[0], growth_events
    purchases = {backend: scale.of(GROWTH_PURCHASES[backend]) for backend in chosen}
    return [
        Row(
            "7",
            "growth: lifecycles on a big store",
            growth.backend,
            f"{purchases[growth.backend]} lifecycles",
            Rate(f"creditledger, {big:,} events stored", "lifecycle", growth.big),
            Rate(f"creditledger, {small:,} events stored", "lifecycle", growth.small),
        )
        for growth in grown_lifecycles(chosen, (small, big), purchases, runs)
    ]


def pending_rows(backends: Sequence[Backend]) -> list[Row]:
    """Sections whose parts are not built yet: their place in the table, and what they will be."""
    return [
        Row(
            "4",
            "lifecycles over HTTP vs the Python API",
            ",".join(backends),
            "-",
            None,
            note="pending: needs the HTTP service",
        ),
        Row(
            "6",
            "projection catch-up vs replay",
            ",".join(backends),
            "-",
            None,
            note="pending: needs the projections",
        ),
    ]


def run_suite(
    backends: Sequence[Backend],
    sections: Sequence[str],
    *,
    runs: int,
    scale: Scale,
    growth_events: int,
    report: Callable[[str], None],
) -> list[Row]:
    rows: list[Row] = []
    reachable: list[Backend] = []
    for backend in backends:
        problem = postgres_problem() if backend == "postgres" else None
        if problem is None:
            reachable.append(backend)
        else:
            rows.append(skipped_row("*", "every row", backend, problem))
    for backend in reachable:
        if "1" in sections:
            report(f"{backend}: appends (sections 1 and 2)")
            rows += append_rows(backend, runs, scale)
        if "3" in sections or "5" in sections:
            report(f"{backend}: lifecycles and replay (sections 3 and 5)")
            rows += concurrency_rows(backend, runs, scale, replay="5" in sections)
    if "7" in sections:
        report(f"growth (section 7): loading {growth_events:,} events per backend")
        rows += growth_rows(reachable, runs, scale, growth_events)
    if "4" in sections or "6" in sections:
        rows += [row for row in pending_rows(reachable) if row.section in sections]
    return sorted(rows, key=lambda row: row.section)


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog="python -m bench", description="the creditledger benchmark suite"
    )
    command.add_argument(
        "--backends", type=parse_backends, default=list(BACKENDS), help="default: all"
    )
    command.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs; medians reported")
    command.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, of {','.join(SECTIONS)} (2 comes with 1)",
    )
    command.add_argument(
        "--scale", type=float, default=1.0, help="multiply every size (0.1 for a quick check)"
    )
    command.add_argument(
        "--growth-events", type=int, default=GROWTH_SIZES[1], help="the big store's events"
    )
    command.add_argument("--json", type=Path, default=RESULTS, help=f"default: {RESULTS}")
    return command


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    sections = [part.strip() for part in options.sections.split(",") if part.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or options.runs < 1 or options.scale <= 0 or options.growth_events < 3:
        parser().error(f"bad options (unknown sections: {unknown or 'none'})")
    out = console()
    facts = machine_facts()
    facts["creditledger configuration"] = ledger_configuration()
    started = time.perf_counter()
    rows = run_suite(
        options.backends,
        sections,
        runs=options.runs,
        scale=Scale(options.scale),
        growth_events=options.growth_events,
        report=lambda message: out.print(f"[dim]{message}...[/dim]"),
    )
    facts["load average at end"] = load_average()
    facts["suite wall time"] = f"{time.perf_counter() - started:.0f} s"
    title = "creditledger benchmark suite"
    render(title, facts, rows, out)
    parameters = {
        "runs": options.runs,
        "sections": sections,
        "scale": options.scale,
        "growth_sizes": [GROWTH_SIZES[0], options.growth_events],
        "events_per_lifecycle": EVENTS_PER_LIFECYCLE,
    }
    write_json(options.json, as_json(title, facts, parameters, rows))
    out.print(f"wrote {options.json}")
    return 0
