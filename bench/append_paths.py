"""The PostgreSQL append path, alone: the library's recorder next to creditledger's, per batch.

Both recorders write the same batches of stored events (1, 16 and 64 per batch: a lone caller,
a typical group-commit batch under 32 callers, a large one) into their own fresh schema. For
each, the client CPU per batch (``time.process_time``: what the one writer at a time spends
holding the GIL, the scarce resource under group commit) and the wall time per batch (what a
caller waits), medians of several runs. The library's recorder sends a pipelined transaction
(``SET LOCAL lock_timeout``, ``LOCK TABLE``, ``NOTIFY``, ``INSERT ... RETURNING`` of composite
values, ``COMMIT``); ``AppendFunctionRecorder`` calls one function doing the same, with four
binary arrays.

Run: ``.venv/bin/python -m bench.append_paths [--batches N] [--runs R]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Sequence

from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, StoredEvent
from eventsourcing.utils import Environment
from rich.table import Table

from bench.machine import load_average, machine_facts
from bench.report import console
from bench.stores import fresh_store, postgres_problem
from bench.timing import check_event_count
from creditledger.infrastructure.settings import store_env

BATCH_SIZES = (1, 16, 64)
STATE = os.urandom(400)
"""About the size of a stored Initiated event."""


def open_recorder(env: dict[str, str]) -> ApplicationRecorder:
    factory = InfrastructureFactory.construct(Environment("appendbench", env))
    recorder = factory.application_recorder()
    recorder.create_table()  # type: ignore[attr-defined]
    return recorder


def batches(count: int, size: int) -> list[list[StoredEvent]]:
    return [
        [StoredEvent(uuid.uuid4(), 1, "bench:Event", STATE) for _ in range(size)]
        for _ in range(count)
    ]


def per_batch(recorder: ApplicationRecorder, size: int, count: int) -> tuple[float, float]:
    """Microseconds of client CPU and of wall time per batch of ``size`` events."""
    work = batches(count, size)
    recorder.insert_events(work[0])  # statements prepared, connection open
    written = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in work[1:]:
        written += len(recorder.insert_events(batch) or ())
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    # A batch counts only if the store gave a notification id for each of its events.
    check_event_count(written, size * (count - 1), f"{type(recorder).__name__} appends")
    return cpu / (count - 1) * 1e6, wall / (count - 1) * 1e6


def measure(count: int, runs: int) -> dict[tuple[str, int], tuple[list[float], list[float]]]:
    results: dict[tuple[str, int], tuple[list[float], list[float]]] = {}
    for _ in range(runs):
        with fresh_store("postgres") as ours_store, fresh_store("postgres") as library_store:
            recorders = {
                "library": open_recorder(library_store.library_env()),
                "creditledger": open_recorder(store_env(ours_store.settings())),
            }
            try:
                for size in BATCH_SIZES:
                    for side, recorder in recorders.items():
                        cpu, wall = per_batch(recorder, size, count)
                        cpus, walls = results.setdefault((side, size), ([], []))
                        cpus.append(cpu)
                        walls.append(wall)
            finally:
                for recorder in recorders.values():
                    recorder.datastore.close()  # type: ignore[attr-defined]
    return results


def table(results: dict[tuple[str, int], tuple[list[float], list[float]]]) -> Table:
    out = Table(title="PostgreSQL append path: per batch, medians")
    columns = ("events/batch", "recorder", "client CPU us", "wall us", "CPU ratio", "wall ratio")
    for column in columns:
        out.add_column(column, justify="right")
    for size in BATCH_SIZES:
        base_cpu, base_wall = (statistics.median(v) for v in results[("library", size)])
        for side in ("library", "creditledger"):
            cpu, wall = (statistics.median(v) for v in results[(side, size)])
            out.add_row(
                str(size),
                side,
                f"{cpu:,.0f}",
                f"{wall:,.0f}",
                f"{cpu / base_cpu:.2f}",
                f"{wall / base_wall:.2f}",
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.append_paths", description=__doc__)
    parser.add_argument("--batches", type=int, default=300, help="per size, side and run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    out = console()
    if (problem := postgres_problem()) is not None:
        out.print(f"PostgreSQL unavailable: {problem}")
        return 1
    for key, value in machine_facts().items():
        out.print(f"{key}: {value}")
    out.print(table(measure(args.batches, args.runs)))
    out.print("ratios: creditledger / library (below 1: creditledger spends less)")
    out.print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
