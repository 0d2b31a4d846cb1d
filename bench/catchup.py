"""Projection catch-up and lag: how fast the read models follow the event log.

``python -m bench.catchup`` measures, on SQLite and PostgreSQL (each run on a fresh store):

- catch-up: events/s of the projector applying a bulk-loaded log to empty read models (every
  model: purchases, ledger, receivables, settled revenue), median of 3 runs, in the batches of
  an operator's catch-up (``projections run --until-caught-up``: ``OFFLINE_BATCH_SIZE``;
  ``--batch-size 500`` for the live projector's);
- next to it, in the same run and on the same events, the bare library's replay rate:
  ``repository.get`` of every aggregate, purchases and credit wallets (decode + fold, no view
  written);
- and the store's own share (``bench.store_floor``): the writes the projector sent, recorded,
  sent again through the same cursors into emptied read models, with nothing computed. No
  projector writing these rows can catch up faster on this store;
- on PostgreSQL, the operator's catch-up as ``projections run`` does it
  (``operations.catch_up``): from ``APART_FROM_EVENTS`` events behind, the ledger model caught
  up by a second process meanwhile (the views emptied and put back at position zero first);
- steady state: writers issue commands for a few seconds while the in-process projector
  follows; sampled every few milliseconds, how far (in events and in time) the views lag.

``measure_catchup`` and ``measure_lag`` are what the test suite calls on a small scale.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from bench.baselines import COMMANDS_PER_LIFECYCLE
from bench.lifecycles import LEDGER_EVENTS_PER_LIFECYCLE
from bench.store_floor import recorded_writes, replay_writes, reset_read_models
from bench.stores import Backend, fresh_store
from bench.wallets import Wallets
from creditledger.application.commands import (
    AuthorizePayment,
    InitiatePurchase,
    SettlementInput,
    SettlePayment,
)
from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.source import EventLog
from creditledger.domain.events import Initiated, LedgerEvent, PurchaseEvent, WalletEventBase
from creditledger.domain.identity import wallet_id_for
from creditledger.domain.intent import normalize_intent
from creditledger.domain.purchase import CommandContext, CreditPurchase, project_purchase
from creditledger.domain.wallet import project_wallet
from creditledger.infrastructure.bootstrap import open_read_models, open_view_database
from creditledger.infrastructure.projections.operations import catch_up
from creditledger.infrastructure.projections.runner import OFFLINE_BATCH_SIZE, ProjectionRunner
from creditledger.infrastructure.projections.sql.store import SqlViewDatabase

START = datetime(2026, 1, 1, tzinfo=UTC)
LOAD_CHUNK = 2_000


def synthetic_history(
    events: int, *, seed: int = 0, customers: int = 200, late_share: float = 0.02
) -> list[LedgerEvent]:
    """About ``events`` events of valid purchases, made by the domain itself, in commit order.

    Most purchases are external and go all the way to final (3 events); some stay pending or
    authorized; a tenth are promotional. Each purchase's ``Initiated`` is followed by the grant
    in its customer's wallet, as the ledger writes them (one transaction), the wallet's versions
    in log order. Times rise a few seconds per purchase; a share of neighbouring writes is
    swapped, so some entries are recorded after later ones (the ledger's late-entry path).
    """
    rng = random.Random(seed)
    # One write per entry: the events the ledger saves in one transaction.
    timeline: list[tuple[datetime, int, list[PurchaseEvent]]] = []
    moment = START
    count = 0
    while count < events:
        moment += timedelta(seconds=rng.randint(1, 5))
        customer = f"cust-{rng.randrange(customers)}"
        namespace = rng.choice(("acme", "globex", "initech"))
        currency = rng.choice(("USD", "EUR"))
        promotional = rng.random() < 0.1
        intent = normalize_intent(
            now=moment,
            namespace=namespace,
            customer_id=customer,
            currency=currency,
            credit_amount=f"{rng.randint(1, 100_000)}.{rng.randint(0, 99):02d}",
            settlement_type="promotional" if promotional else "external",
            cost_basis=None if promotional else rng.choice(("0.5", "0.005", "1", "0.1234")),
        )
        purchase = CreditPurchase.initiate(uuid4(), intent, CommandContext(at=moment))
        timeline.append((moment, count, list(purchase.collect_events())))
        count += 2  # the purchase's events and the wallet's grant
        if not promotional:
            steps = rng.choices((0, 1, 2), weights=(1, 1, 6))[0]
            at = moment
            for step in range(steps):
                at += timedelta(seconds=rng.randint(1, 3600))
                context = CommandContext(at=at)
                if step == 0:
                    purchase.authorize_payment(context)
                else:
                    purchase.settle_payment(context)
                timeline.append((at, count, list(purchase.collect_events())))
                count += 1
    timeline.sort(key=lambda item: (item[0], item[1]))
    writes = [write for _, _, write in timeline]
    for index in range(len(writes) - 1):
        first, second = writes[index], writes[index + 1]
        if not _aggregates(first) & _aggregates(second) and rng.random() < late_share:
            writes[index], writes[index + 1] = second, first
    # The wallets' grants, made in log order so that each wallet's versions rise with it.
    # Cut at the first whole write at or past ``events``: within an aggregate the order is the
    # clock's, so every prefix of whole writes holds each aggregate's first event.
    wallets = Wallets()
    ordered: list[LedgerEvent] = []
    for write in writes:
        if len(ordered) >= events:
            break
        ordered += write
        if isinstance(write[0], Initiated):
            ordered += wallets.grant(write[0])
    return ordered


def _aggregates(write: Sequence[PurchaseEvent]) -> set[UUID]:
    """The purchase a write changes and, for a purchase's first, its customer's wallet."""
    touched = {event.originator_id for event in write}
    first = write[0]
    if isinstance(first, Initiated):
        touched.add(wallet_id_for(first.namespace, first.customer_id, first.currency))
    return touched


def load_history(ledger: CreditLedger, events: Sequence[LedgerEvent]) -> None:
    """Append the events to the ledger's log in big transactions (a bulk load, not commands)."""
    mapper = ledger.mapper
    for start in range(0, len(events), LOAD_CHUNK):
        chunk = events[start : start + LOAD_CHUNK]
        ledger.recorder.insert_events([mapper.to_stored_event(event) for event in chunk])


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def measure_catchup(
    backend: Backend,
    events: int,
    *,
    runs: int = 3,
    batch_size: int = OFFLINE_BATCH_SIZE,
    seed: int = 0,
    apart_from: int | None = None,
) -> dict[str, Any]:
    """Catch-up events/s of the projector vs replay events/s of the library, median of runs.

    ``apart_from``: the operator's catch-up's threshold for its second process (default
    ``APART_FROM_EVENTS``)."""
    history = synthetic_history(events, seed=seed)
    # The generated history is the bench's, not the projector's: kept out of the garbage
    # collector's scans, so that neither side pays for walking 100k objects it does not own.
    gc.collect()
    gc.freeze()
    try:
        measured = [_catchup_run(backend, history, batch_size, apart_from) for _ in range(runs)]
    finally:
        gc.unfreeze()
    replay_rates = [run.replay for run in measured]
    catchup_rates = [run.catchup for run in measured]
    floor_rates = [run.writes_alone for run in measured if run.writes_alone is not None]
    operator_rates = [run.operator for run in measured if run.operator is not None]
    return {
        "backend": backend,
        "events": len(history),
        "batch_size": batch_size,
        "runs": runs,
        "catchup_events_per_second": _median(catchup_rates),
        "replay_events_per_second": _median(replay_rates),
        "writes_alone_events_per_second": _median(floor_rates) if floor_rates else None,
        "operator_catchup_events_per_second": _median(operator_rates) if operator_rates else None,
        "caught_up_apart": sorted({model for run in measured for model in run.apart}),
        "catchup_runs": catchup_rates,
        "replay_runs": replay_rates,
        "writes_alone_runs": floor_rates,
        "operator_catchup_runs": operator_rates,
    }


@dataclass(frozen=True)
class _Run:
    replay: float
    """The library's replay, events/s."""
    catchup: float
    """The projector's catch-up in one process, events/s."""
    writes_alone: float | None
    """The same writes alone, events/s (None: the in-memory views)."""
    operator: float | None = None
    """PostgreSQL: the operator's catch-up (``operations.catch_up``), events/s."""
    apart: tuple[str, ...] = ()
    """The models it caught up in a second process."""


def _catchup_run(
    backend: Backend, history: Sequence[LedgerEvent], batch_size: int, apart_from: int | None
) -> _Run:
    """One fresh store: the library's replay, the projector's catch-up, the same writes alone
    and (PostgreSQL) the operator's catch-up."""
    # Every aggregate of the log, each with its own fold: purchases and wallets.
    aggregates = {
        event.originator_id: _fold_wallet if isinstance(event, WalletEventBase) else _fold
        for event in history
    }
    with fresh_store(backend) as store, store.open_ledger() as ledger:
        load_history(ledger, history)
        started = time.perf_counter()
        for aggregate_id, fold in aggregates.items():
            ledger.repository.get(aggregate_id, projector_func=fold)
        replay = len(history) / (time.perf_counter() - started)
        with open_view_database(ledger) as database:
            # As an operator's catch-up runs (``projections run --until-caught-up``).
            runner = ProjectionRunner(
                EventLog(ledger), database, batch_size=batch_size, pause_collector=True
            )
            recording = (
                recorded_writes(database)
                if isinstance(database, SqlViewDatabase)
                else nullcontext(None)  # the in-memory views: no driver to measure
            )
            with recording as recorded:
                started = time.perf_counter()
                applied = runner.catch_up()
                catchup = applied / (time.perf_counter() - started)
            writes_alone = (
                None
                if recorded is None or not isinstance(database, SqlViewDatabase)
                else applied / replay_writes(database, recorded)
            )
            if applied != len(history):
                msg = f"caught up {applied} of {len(history)} events"
                raise RuntimeError(msg)
            if backend != "postgres" or not isinstance(database, SqlViewDatabase):
                return _Run(replay, catchup, writes_alone)
            reset_read_models(database)
            operators = ProjectionRunner(
                EventLog(ledger), database, batch_size=batch_size, pause_collector=True
            )
            started = time.perf_counter()
            report = catch_up(operators, apart_from=apart_from)
            operator = len(history) / (time.perf_counter() - started)
            if report.applied != len(history):
                msg = f"the operator's catch-up applied {report.applied} of {len(history)} events"
                raise RuntimeError(msg)
    return _Run(replay, catchup, writes_alone, operator, report.apart)


def _fold(purchase: Any, events: Any) -> Any:
    return project_purchase(purchase, events)


def _fold_wallet(wallet: Any, events: Any) -> Any:
    return project_wallet(wallet, events)


def measure_lag(
    backend: Backend,
    *,
    seconds: float = 5.0,
    writers: int = 2,
    sample_every: float = 0.005,
) -> dict[str, Any]:
    """Views' lag behind the log while ``writers`` threads issue commands as fast as they can."""
    with fresh_store(backend) as store:
        ledger = store.open_ledger(pool_size=writers + 2)
        try:
            with open_read_models(ledger) as service:
                stop = threading.Event()
                commands = [0] * writers
                samples: list[tuple[float, int, int]] = []

                def write(index: int) -> None:
                    rng = random.Random(index)
                    while not stop.is_set():
                        purchase = ledger.initiate(
                            InitiatePurchase(
                                namespace="bench",
                                customer_id=f"cust-{rng.randrange(50)}",
                                currency="USD",
                                credit_amount="10",
                                cost_basis="0.5",
                                settlement=SettlementInput(type="external"),
                            )
                        ).purchase
                        ledger.authorize(
                            AuthorizePayment(namespace="bench", purchase_id=purchase.id)
                        )
                        ledger.settle(SettlePayment(namespace="bench", purchase_id=purchase.id))
                        commands[index] += COMMANDS_PER_LIFECYCLE

                threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
                for thread in threads:
                    thread.start()
                started = time.perf_counter()
                while time.perf_counter() - started < seconds:
                    samples.append(
                        (time.perf_counter(), service.log.head(), service.read_models.position())
                    )
                    time.sleep(sample_every)
                stop.set()
                for thread in threads:
                    thread.join()
                caught_up = service.read_models.wait_until(timeout=30)
                elapsed = time.perf_counter() - started
        finally:
            ledger.close()
    event_lags = [head - position for _, head, position in samples]
    # Time lag: from when a head was first seen to when the views first reached it.
    time_lags = []
    for index, (moment, head, _) in enumerate(samples):
        for later, _, position in samples[index:]:
            if position >= head:
                time_lags.append(later - moment)
                break
    ordered = sorted(time_lags) or [0.0]
    return {
        "backend": backend,
        "writers": writers,
        "seconds": round(elapsed, 2),
        "commands_per_second": sum(commands) / elapsed,
        "events_per_second": (
            sum(commands) // COMMANDS_PER_LIFECYCLE * LEDGER_EVENTS_PER_LIFECYCLE / elapsed
        ),
        "lag_events_median": _median(event_lags) if event_lags else 0,
        "lag_events_max": max(event_lags, default=0),
        "lag_ms_median": 1000 * _median(ordered),
        "lag_ms_p95": 1000 * ordered[int(0.95 * (len(ordered) - 1))],
        "lag_ms_max": 1000 * ordered[-1],
        "caught_up_after_writes": caught_up,
    }


def _rate_or_dash(rate: float | None) -> str:
    """A rate for the table; "-" where it is not measured (the operator's catch-up on SQLite
    is the one-process catch-up: no second process there)."""
    return "-" if rate is None else f"{rate:,.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.catchup", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=OFFLINE_BATCH_SIZE)
    parser.add_argument("--lag-seconds", type=float, default=5.0)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgres"))
    args = parser.parse_args(argv)
    backends: list[Backend] = args.backend or ["sqlite", "postgres"]
    print(f"catch-up over {args.events} events, median of {args.runs} runs")
    print(
        f"{'store':<10} {'catch-up ev/s':>14} {'library replay ev/s':>20} "
        f"{'writes alone ev/s':>18} {'projections run ev/s':>21}"
    )
    for backend in backends:
        result = measure_catchup(backend, args.events, runs=args.runs, batch_size=args.batch_size)
        print(
            f"{backend:<10} {result['catchup_events_per_second']:>14,.0f} "
            f"{result['replay_events_per_second']:>20,.0f} "
            f"{_rate_or_dash(result['writes_alone_events_per_second']):>18} "
            f"{_rate_or_dash(result['operator_catchup_events_per_second']):>21}"
        )
        print(
            "  runs: catch-up "
            + ", ".join(f"{rate:,.0f}" for rate in result["catchup_runs"])
            + "; replay "
            + ", ".join(f"{rate:,.0f}" for rate in result["replay_runs"])
            + "; writes alone "
            + ", ".join(f"{rate:,.0f}" for rate in result["writes_alone_runs"])
            + "; projections run "
            + ", ".join(f"{rate:,.0f}" for rate in result["operator_catchup_runs"])
            + f" (second process: {', '.join(result['caught_up_apart']) or 'none'})"
        )
    print(f"\nsteady state: {args.writers} writer threads for {args.lag_seconds}s")
    for backend in backends:
        lag = measure_lag(backend, seconds=args.lag_seconds, writers=args.writers)
        print(
            f"{backend:<10} {lag['events_per_second']:,.0f} ev/s "
            f"({lag['commands_per_second']:,.0f} commands/s) written; lag median "
            f"{lag['lag_events_median']} events / {lag['lag_ms_median']:.1f} ms, p95 "
            f"{lag['lag_ms_p95']:.1f} ms, max {lag['lag_events_max']} events / "
            f"{lag['lag_ms_max']:.1f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
