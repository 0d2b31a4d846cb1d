"""``projections rebuild all`` three ways, on one store per backend, alternating, medians.

On a fresh store loaded with ``bench.catchup``'s synthetic history (caught up once, so the
rebuild replaces live views, as an operator's does):

- ``one pass``: ``operations.rebuild_together`` of the four models in this process alone;
- ``one pass + 2nd process``: the same with the ledger model built by a second process meanwhile
  (``apart``: PostgreSQL only; on SQLite this column repeats ``one pass``);
- ``four passes``: ``operations.rebuild`` of each model in turn (``rebuild all`` until session
  10).

Each rate counts the log's events once, so the rates compare as the times do.

Run: ``.venv/bin/python -m bench.rebuilds [--events N] [--runs R] [--backend sqlite|postgres]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

from bench.catchup import load_history, synthetic_history
from bench.machine import load_average, machine_facts
from bench.stores import Backend, fresh_store
from creditledger.application.projections.rows import ReadModelName
from creditledger.application.projections.source import EventLog
from creditledger.infrastructure.bootstrap import open_view_database
from creditledger.infrastructure.projections import operations
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.runner import ProjectionRunner

WAYS = ("one pass", "one pass + 2nd process", "four passes")
NEVER = 1 << 62
"""``apart_from`` that keeps every model in this process."""


def _ways(log: EventLog, database: ViewDatabase) -> dict[str, Callable[[], object]]:
    models = list(ReadModelName)
    return {
        "one pass": lambda: operations.rebuild_together(log, database, models, apart_from=NEVER),
        "one pass + 2nd process": lambda: operations.rebuild_together(
            log, database, models, apart_from=0
        ),
        "four passes": lambda: [operations.rebuild(log, database, model) for model in models],
    }


def measure_rebuilds(backend: Backend, events: int, runs: int) -> dict[str, list[float]]:
    """Events/s of each way (``WAYS``), ``runs`` times each, the ways taking turns."""
    history = synthetic_history(events)
    rates: dict[str, list[float]] = {way: [] for way in WAYS}
    with fresh_store(backend) as store, store.open_ledger() as ledger:
        load_history(ledger, history)
        with open_view_database(ledger) as database:
            log = EventLog(ledger)
            ProjectionRunner(log, database, batch_size=5_000).catch_up()
            ways = _ways(log, database)
            for run in range(runs):
                order = WAYS[run % len(WAYS) :] + WAYS[: run % len(WAYS)]
                for way in order:
                    started = time.perf_counter()
                    ways[way]()
                    rates[way].append(len(history) / (time.perf_counter() - started))
    return rates


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rebuilds", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgres"))
    options = parser.parse_args(argv)
    backends: list[Backend] = options.backend or ["sqlite", "postgres"]
    print(f"machine: {machine_facts()}")
    print(f"rebuild all over {options.events} events, events/s, median of {options.runs} runs")
    print(f"{'store':<10}" + "".join(f"{way:>24}" for way in WAYS))
    for backend in backends:
        rates = measure_rebuilds(backend, options.events, options.runs)
        print(f"{backend:<10}" + "".join(f"{statistics.median(rates[w]):>24,.0f}" for w in WAYS))
        for way in WAYS:
            print(f"  {way}: " + ", ".join(f"{rate:,.0f}" for rate in rates[way]))
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
