"""The whole benchmark suite (``make bench``): every row next to its baseline, in one run.

Rows, by section:

1. the bare library appending 1 event per save (1 and 32 threads) and 10 per save, against
2. the raw drivers (psycopg, sqlite3) writing the same rows, 1 per commit and 10 per
   ``executemany``, with as many connections as the library has threads;
3. creditledger lifecycles with 1, 8 and 32 concurrent callers, against the bare library doing
   the same commands with as many threads; and one caller's command latency with group commit
   on, against the same with it off;
3b. consumptions with 32 callers, for one hot customer and spread over 1,000 customers, against
   the bare library appending one event per command to as many aggregates from 32 threads
   (``bench.consumptions``; SQLite and PostgreSQL);
4. lifecycles over HTTP (a real ``creditledger serve``, 32 clients), against the same
   lifecycles through the Python API with 32 callers (row 3's creditledger side);
5. full-log replay: creditledger folding its log, against the library's ``repository.get`` of
   every aggregate;
6. projection catch-up: the projector filling every read model from a bulk-loaded log,
   against the library's ``repository.get`` of every purchase in the same log;
7. growth: creditledger lifecycles with 10^6 events already stored, against 10^3;
8. the relay to NATS JetStream (pipelined and one ack at a time) against reading the log raw;
   the lag from commit to consumer apply under the 32-caller write load; the consumer kit's
   catch-up over 100k events (``bench.relay``; skipped when nats-server is not installed).
9. audit (``bench.verify``, SQLite, 10^6 events): offline ``audit verify`` and ``audit export``,
   each against the library's ``repository.get`` of purchases of the same log; each job in its
   own process, its peak RSS in the row's note;
10. projections at scale (``bench.projections``, SQLite, the same 10^6-event store as section 9):
   ``projections verify`` and ``projections rebuild`` of all four models, each against the
   library's ``repository.get`` of purchases of the same log; each job in its own process, its
   peak RSS in the row's note.
11. queries (``bench.queries``, SQLite and PostgreSQL): a purchase's view now, for one customer
   of 4,000 purchases and consumptions, p50 latency against the library's ``repository.get`` of
   the customer's wallet (the fold every such query did before session 9).
11b. a consumption (``bench.open_grants``, SQLite and PostgreSQL) for a customer holding 4,000
   open grants, p50 latency against the same command for a customer holding one: what a
   consumption's decision costs as grants stay open.

After the table, issue 7's targets, issue 12's consumption targets and issue 14's audit ratio
and catch-up targets (``bench.targets``), judged on this run's rows.

Run: ``.venv/bin/python -m bench [--backends ...] [--runs R]
[--sections 1,3,3b,4,5,6,7,8,9,10,11,11b] [--scale F] [--growth-events N] [--audit-events N]
[--projection-events N] [--json PATH]``;
JSON goes to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench import keys
from bench.baselines import COMMANDS_PER_LIFECYCLE, EVENTS_PER_LIFECYCLE, library_appends
from bench.catchup import measure_catchup
from bench.consumptions import BACKENDS as CONSUMPTION_BACKENDS
from bench.consumptions import consumption_rows
from bench.growth import GROWTH_BACKENDS, grown_lifecycles
from bench.http_load import http_load
from bench.lifecycles import (
    LEDGER_EVENTS_PER_LIFECYCLE,
    lifecycle_rows,
    parse_backends,
    skipped_row,
)
from bench.machine import load_average, machine_facts
from bench.open_grants import BACKENDS as OPEN_GRANTS_BACKENDS
from bench.open_grants import open_grants_row
from bench.projections import measure_projection_jobs
from bench.queries import BACKENDS as QUERY_BACKENDS
from bench.queries import query_row
from bench.rawdriver import raw_inserts
from bench.relay import section_rows as relay_section_rows
from bench.report import Row, as_json, console, render, write_json
from bench.stores import BACKENDS, Backend, fresh_store, ledger_configuration, postgres_problem
from bench.targets import evaluate, render_targets, targets_json
from bench.timing import Rate, Timing
from bench.verify import EVENTS_PER_LIFECYCLE as LOGGED_EVENTS_PER_PURCHASE
from bench.verify import EVENTS_PER_PURCHASE as PURCHASE_EVENTS
from bench.verify import measure_verify

RESULTS = Path(__file__).parent / "results" / "latest.json"
DEFAULT_RUNS = 3
SECTIONS = ("1", "3", "3b", "4", "5", "6", "7", "8", "9", "10", "11", "11b")
CONCURRENT_CALLERS = (8, 32)
GROWTH_SIZES = (1_000, 1_000_000)
AUDIT_EVENTS = 1_000_000
PROJECTION_EVENTS = 1_000_000
"""Section 10's log (issue 14 asks for its rows at 10^6 events): the same as section 9's, so
the two load one store (verify and four rebuilds of it take minutes each on the 2-core machine)."""
HTTP_BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")
HTTP_CLIENTS = 32
HTTP_TIME_LIMIT_SECONDS = 20.0
"""A run stops there even if its lifecycles are not all done (the row then says so)."""
CATCHUP_BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")
UNBATCHED_BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")
"""Where group commit is on by default, so its cost to a lone caller can be measured."""

# Events or lifecycles per run: about a second per run on a quiet 2-core machine, so that the
# whole suite stays under 5 minutes there (its header says how long each part took).
APPEND_EVENTS: dict[Backend, int] = {"memory": 6000, "sqlite": 1500, "postgres": 500}
APPEND_EVENTS_32_THREADS: dict[Backend, int] = {"sqlite": 1600, "postgres": 960}
BATCH_EVENTS: dict[Backend, int] = {"sqlite": 5000, "postgres": 3000}
SINGLE_CALLER_PURCHASES: dict[Backend, int] = {"memory": 2000, "sqlite": 500, "postgres": 200}
CONCURRENT_PURCHASES: dict[Backend, int] = {"sqlite": 960, "postgres": 640}
CONSUMPTIONS: dict[Backend, int] = {"sqlite": 3200, "postgres": 3200}
"""Consumptions per run of section 3b, for each spread (one hot customer, 1,000 customers)."""
GROWTH_PURCHASES: dict[Backend, int] = {"sqlite": 600, "postgres": 400}
HTTP_LIFECYCLES: dict[Backend, int] = {"sqlite": 600, "postgres": 600}
CATCHUP_EVENTS: dict[Backend, int] = {"sqlite": 40_000, "postgres": 40_000}
"""Eight batches of an operator's catch-up (``OFFLINE_BATCH_SIZE``, issue 14 session 6)."""
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
                Row(
                    "1",
                    title,
                    backend,
                    f"{events} events",
                    Rate(measured_label, "save", library),
                    key=keys.appends(per_save, threads),
                )
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
                key=keys.appends(per_save, threads),
            )
        )
    return rows


def concurrency_rows(
    backend: Backend, runs: int, scale: Scale, *, lifecycles: bool, replay: bool
) -> list[Row]:
    """Section 3 (and 5, from the single-caller runs): creditledger against the library.

    The single-caller runs also measure creditledger with group commit off (where it is on by
    default), for the latency row: three sides, taking turns to go first.
    """
    rows = lifecycle_rows(
        backend,
        scale.of(SINGLE_CALLER_PURCHASES[backend]),
        runs,
        1,
        section="3",
        replay=replay,
        unbatched=lifecycles and backend in UNBATCHED_BACKENDS,
    )
    if not lifecycles:
        return [row for row in rows if row.section == "5"]
    if backend in CONCURRENT_PURCHASES:
        for callers in CONCURRENT_CALLERS:
            purchases = scale.of(CONCURRENT_PURCHASES[backend], max(CONCURRENT_CALLERS))
            rows += lifecycle_rows(backend, purchases, runs, callers, section="3", replay=False)
    return rows


def http_row(backend: Backend, runs: int, scale: Scale, api: Rate | None) -> Row:
    """Section 4: R runs of ``bench.http_load``, each on a fresh store and server.

    The baseline is ``api``: creditledger's Python-API lifecycles with as many callers as
    there are HTTP clients, measured earlier in the same suite run (row 3).
    """
    lifecycles = scale.of(HTTP_LIFECYCLES[backend])
    timings: list[Timing] = []
    refused: Counter[str] = Counter()
    cpu: list[float] = []
    completed: list[int] = []
    for _ in range(runs):
        load = http_load(
            backend,
            clients=HTTP_CLIENTS,
            lifecycles=lifecycles,
            time_limit=HTTP_TIME_LIMIT_SECONDS,
        )
        if not load.commands:
            msg = f"HTTP load on {backend}: no command succeeded; server log:\n"
            raise RuntimeError(msg + load.server_log_tail)
        # Compared on commands/s with the Python API's lifecycles (4 events per 3 commands on
        # both sides: the create writes the wallet's grant too).
        timings.append(
            Timing(
                load.commands,
                load.events,
                load.seconds,
                tuple(load.latencies),
                commands=load.commands,
            )
        )
        refused.update(load.failures)
        completed.append(load.lifecycles)
        if (per_command := load.server_cpu_ms_per_command) is not None:
            cpu.append(per_command)
    notes = []
    if cpu:
        notes.append(f"server CPU {statistics.median(cpu):.2f} ms/command")
    if min(completed) < lifecycles:
        notes.append(f"a run completed only {min(completed)} lifecycles")
    if refused:
        notes.append(f"refused: {dict(refused)}")
    if api is None:
        notes.append("no baseline: needs section 3")
    return Row(
        "4",
        f"HTTP lifecycles, {HTTP_CLIENTS} clients",
        backend,
        f"{lifecycles} lifecycles",
        Rate(f"HTTP commands, {HTTP_CLIENTS} clients (loopback)", "command", tuple(timings)),
        api,
        note="; ".join(notes),
        key=keys.http(HTTP_CLIENTS),
        compare="commands/s",
    )


def catchup_row(backend: Backend, runs: int, scale: Scale) -> Row:
    """Section 6: ``bench.catchup``'s projector catch-up against the library's replay."""
    title = "projection catch-up vs library replay"
    result = measure_catchup(backend, scale.of(CATCHUP_EVENTS[backend]), runs=runs)
    events = int(result["events"])

    def timings(rates: Sequence[float]) -> tuple[Timing, ...]:
        return tuple(Timing(events, events, events / rate) for rate in rates)

    return Row(
        "6",
        title,
        backend,
        f"{events} events",
        Rate(
            f"projector catch-up, every read model, batches of {result['batch_size']}",
            "event",
            timings(result["catchup_runs"]),
        ),
        Rate(
            "library replay: repository.get per purchase, same events",
            "event",
            timings(result["replay_runs"]),
        ),
        note=_catchup_note(result),
        key=keys.CATCHUP,
    )


def _catchup_note(result: dict[str, Any]) -> str:
    note = (
        "the same writes alone (recorded, sent again, nothing computed): "
        f"{result['writes_alone_events_per_second']:,.0f} events/s"
    )
    operator = result["operator_catchup_events_per_second"]
    if operator is not None:
        apart = ", ".join(result["caught_up_apart"]) or "none"
        note += (
            f"; as `projections run --until-caught-up` does it: {operator:,.0f} events/s "
            f"(second process: {apart})"
        )
    return note


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
            key=keys.GROWTH,
            compare="commands/s",
        )
        for growth in grown_lifecycles(chosen, (small, big), purchases, runs)
    ]


def audit_rows(runs: int, audit_events: int, store: Path | None = None) -> list[Row]:
    """Section 9: offline verify and export (bench.verify) against the library's replay.

    A job that fails (the audit refusing the log, say) leaves both rows skipped with its reason,
    and the suite goes on: the log holds every kind of event the ledger writes, wallets' too,
    whether or not the audit knows them yet.
    """
    try:
        figures = measure_verify(audit_events, runs=runs, keep=store)
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1]
        return [
            skipped_row("9", f"audit {job} vs library replay", "sqlite", reason)
            for job in ("verify", "export")
        ]
    events = int(figures["events"])
    # The library replays purchases only: their 3 events each (a grant is the wallet's).
    replayed = int(figures["library_replay_sample_purchases"]) * PURCHASE_EVENTS

    def rate(label: str, name: str, count: int) -> Rate:
        rates = figures[f"{name}_runs"]
        return Rate(label, "event", tuple(Timing(count, count, count / each) for each in rates))

    replay = rate(
        f"library replay: repository.get of {replayed // PURCHASE_EVENTS:,} purchases, one process",
        "library_replay",
        replayed,
    )

    def rss(name: str) -> str:
        return f"{name.replace('_', ' ')} peak RSS {figures[f'{name}_peak_rss_mib']:,.0f} MiB"

    def row(job: str, label: str, key: str) -> Row:
        return Row(
            "9",
            f"audit {job} vs library replay",
            "sqlite",
            f"{events:,} events",
            rate(f"{label}, one process", job, events),
            replay,
            note=f"{rss(job)}; {rss('library_replay')}",
            key=key,
        )

    return [
        row("verify", "audit verify of the export file, offline", keys.AUDIT_VERIFY),
        row("export", "audit export of the whole log to a file", keys.AUDIT_EXPORT),
    ]


def projection_rows(runs: int, projection_events: int, store: Path | None = None) -> list[Row]:
    """Section 10: projections verify and rebuild (bench.projections) against the library's
    replay of purchases of the same log, each job in its own process (peak RSS in the note)."""
    figures = measure_projection_jobs(projection_events, runs=runs, keep=store)
    events = int(figures["events"])

    def rate(label: str, name: str) -> Rate:
        count = int(figures[f"{name}_events"])
        rates = figures[f"{name}_runs"]
        return Rate(label, "event", tuple(Timing(count, count, count / each) for each in rates))

    replay = rate("library replay: repository.get per purchase, one process", "library_replay")

    def rss(name: str) -> str:
        own = f"{name.replace('_', ' ')} peak RSS {figures[f'{name}_peak_rss_mib']:,.0f} MiB"
        second = figures[f"{name}_second_process_peak_rss_mib"]
        return f"{own} + {second:,.0f} MiB (second process)" if second else own

    return [
        Row(
            "10",
            "projections verify vs library replay",
            "sqlite",
            f"{events:,} events",
            rate(
                "projections verify (rebuild to scratch files, the ledger model's by a second "
                "process, merge)",
                "verify",
            ),
            replay,
            note=f"{rss('verify')}; {rss('library_replay')}",
            key=keys.PROJECTIONS_VERIFY,
        ),
        Row(
            "10",
            "projections rebuild vs library replay",
            "sqlite",
            f"{events:,} events",
            rate("projections rebuild of all 4 models (one pass), one process", "rebuild"),
            replay,
            note=f"{rss('rebuild')}; {rss('library_replay')}",
            key=keys.PROJECTIONS_REBUILD,
        ),
    ]


@dataclass
class Stopwatch:
    """How long each part of the suite took: the 5-minute budget is watched, not guessed."""

    report: Callable[[str], None]
    parts: list[tuple[str, float]] = field(default_factory=list)

    def run(self, label: str, part: Callable[[], list[Row]]) -> list[Row]:
        self.report(f"{label}...")
        started = time.perf_counter()
        rows = part()
        self.parts.append((label, time.perf_counter() - started))
        return rows

    def summary(self) -> str:
        return ", ".join(f"{label} {seconds:.0f} s" for label, seconds in self.parts)


def _find(rows: Sequence[Row], key: str, backend: Backend) -> Rate | None:
    for row in rows:
        if row.key == key and row.backend == backend:
            return row.measured
    return None


def run_suite(
    backends: Sequence[Backend],
    sections: Sequence[str],
    *,
    runs: int,
    scale: Scale,
    growth_events: int,
    stopwatch: Stopwatch,
    audit_events: int = AUDIT_EVENTS,
    projection_events: int = PROJECTION_EVENTS,
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
            rows += stopwatch.run(
                f"{backend}: appends (sections 1 and 2)", partial(append_rows, backend, runs, scale)
            )
        if "3" in sections or "5" in sections:
            rows += stopwatch.run(
                f"{backend}: lifecycles and replay (sections 3 and 5)",
                partial(
                    concurrency_rows,
                    backend,
                    runs,
                    scale,
                    lifecycles="3" in sections,
                    replay="5" in sections,
                ),
            )

    for backend in (backend for backend in reachable if backend in CONSUMPTION_BACKENDS):
        if "3b" in sections:
            rows += stopwatch.run(
                f"{backend}: consumptions (section 3b)",
                partial(consumption_rows, backend, scale.of(CONSUMPTIONS[backend], 32), runs),
            )

    def http_part(backend: Backend) -> list[Row]:
        # The baseline: row 3's Python-API lifecycles with as many callers as HTTP clients.
        return [http_row(backend, runs, scale, _find(rows, keys.lifecycles(HTTP_CLIENTS), backend))]

    def catchup_part(backend: Backend) -> list[Row]:
        return [catchup_row(backend, runs, scale)]

    for backend in (backend for backend in reachable if backend in HTTP_BACKENDS):
        if "4" in sections:
            rows += stopwatch.run(f"{backend}: HTTP (section 4)", partial(http_part, backend))
    for backend in (backend for backend in reachable if backend in CATCHUP_BACKENDS):
        if "6" in sections:
            rows += stopwatch.run(
                f"{backend}: projection catch-up (section 6)", partial(catchup_part, backend)
            )
    rows += _rows_over_every_backend(
        reachable,
        sections,
        runs=runs,
        scale=scale,
        growth_events=growth_events,
        audit_events=audit_events,
        stopwatch=stopwatch,
        projection_events=projection_events,
    )
    return sorted(rows, key=lambda row: _section_order(row.section))


def _query_rows(backend: Backend, runs: int, factor: float) -> list[Row]:
    return [query_row(backend, runs, factor)]


def _open_grants_rows(backend: Backend, runs: int, factor: float) -> list[Row]:
    return [open_grants_row(backend, runs, factor)]


def _section_order(section: str) -> tuple[int, str]:
    """Sections by number ("3b" after "3", "10" after "9"); "*" (every row skipped) first."""
    digits = section.rstrip("abcdefghijklmnopqrstuvwxyz")
    return (int(digits) if digits.isdigit() else -1, section)


def _rows_over_every_backend(
    reachable: Sequence[Backend],
    sections: Sequence[str],
    *,
    runs: int,
    scale: Scale,
    growth_events: int,
    audit_events: int,
    stopwatch: Stopwatch,
    projection_events: int = PROJECTION_EVENTS,
) -> list[Row]:
    """Sections 7 to 11b: each runs once, over the reachable backends it needs."""
    rows: list[Row] = []
    if "11" in sections:
        for backend in (backend for backend in reachable if backend in QUERY_BACKENDS):
            rows += stopwatch.run(
                f"{backend}: queries (section 11)",
                partial(_query_rows, backend, runs, scale.factor),
            )
    if "11b" in sections:
        for backend in (backend for backend in reachable if backend in OPEN_GRANTS_BACKENDS):
            rows += stopwatch.run(
                f"{backend}: a consumption against many open grants (section 11b)",
                partial(_open_grants_rows, backend, runs, scale.factor),
            )
    if "7" in sections:
        rows += stopwatch.run(
            f"growth (section 7), {growth_events:,} events per backend",
            partial(growth_rows, reachable, runs, scale, growth_events),
        )
    if "8" in sections:
        rows += stopwatch.run(
            "relay and consumer kit over NATS JetStream (section 8)",
            partial(relay_section_rows, reachable, runs, scale.factor),
        )
    # Sections 9 and 10 share one store when their logs are the same size (loaded once).
    with tempfile.TemporaryDirectory(prefix="creditledger-bench-audit-") as directory:
        store = Path(directory)
        if "9" in sections and "sqlite" in reachable:
            rows += stopwatch.run(
                f"audit (section 9), {audit_events:,} events",
                partial(
                    audit_rows, runs, scale.of(audit_events, LOGGED_EVENTS_PER_PURCHASE), store
                ),
            )
        if "10" in sections and "sqlite" in reachable:
            rows += stopwatch.run(
                f"projections verify and rebuild (section 10), {projection_events:,} events",
                partial(
                    projection_rows,
                    runs,
                    scale.of(projection_events, LOGGED_EVENTS_PER_PURCHASE),
                    store,
                ),
            )
    return rows


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
        help=f"comma-separated, of {','.join(SECTIONS)} (2 comes with 1, the latency row with 3)",
    )
    command.add_argument(
        "--scale", type=float, default=1.0, help="multiply every size (0.1 for a quick check)"
    )
    command.add_argument(
        "--growth-events", type=int, default=GROWTH_SIZES[1], help="the big store's events"
    )
    command.add_argument(
        "--audit-events", type=int, default=AUDIT_EVENTS, help="the audit rows' log (section 9)"
    )
    command.add_argument(
        "--projection-events",
        type=int,
        default=PROJECTION_EVENTS,
        help="the projections verify/rebuild rows' log (section 10)",
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
    stopwatch = Stopwatch(lambda message: out.print(f"[dim]{message}[/dim]"))
    rows = run_suite(
        options.backends,
        sections,
        runs=options.runs,
        scale=Scale(options.scale),
        growth_events=options.growth_events,
        stopwatch=stopwatch,
        audit_events=options.audit_events,
        projection_events=options.projection_events,
    )
    facts["load average at end"] = load_average()
    facts["suite wall time"] = f"{time.perf_counter() - started:.0f} s"
    facts["time per part"] = stopwatch.summary()
    title = "creditledger benchmark suite"
    render(title, facts, rows, out)
    targets = evaluate(rows)
    render_targets(targets, out)
    parameters = {
        "runs": options.runs,
        "sections": sections,
        "scale": options.scale,
        "growth_sizes": [GROWTH_SIZES[0], options.growth_events],
        "audit_events": options.audit_events,
        "projection_events": options.projection_events,
        "events_per_lifecycle": {
            "creditledger": LEDGER_EVENTS_PER_LIFECYCLE,
            "bare library": EVENTS_PER_LIFECYCLE,
        },
        "commands_per_lifecycle": COMMANDS_PER_LIFECYCLE,
        "http_clients": HTTP_CLIENTS,
    }
    document = as_json(title, facts, parameters, rows, {"targets": targets_json(targets)})
    write_json(options.json, document)
    out.print(f"wrote {options.json}")
    return 0
