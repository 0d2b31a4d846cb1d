"""creditledger's purchase lifecycles per second, next to the bare library doing the same work.

A lifecycle is what a caller of the Python API does for one external purchase: initiate it
(initial status ``created``), authorize its payment, settle it: 3 commands, 3 events and, for a
lone caller, 3 transactions. The baseline (``bench.baselines``) makes the bare library do the
same: 3 saves of 1 event, loading the purchase before each of the last two as a command handler
must. creditledger runs with its default settings, so its purchase cache spares it those loads
and group commit lets concurrent callers share transactions: the ratio shows what that is worth
next to what its validation and richer events cost.

Run: ``.venv/bin/python -m bench.lifecycles [--backends memory,sqlite,postgres]
[--purchases N] [--runs R] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import cast
from uuid import UUID

from application.commands import AuthorizePayment, InitiatePurchase, SettlementInput, SettlePayment
from application.ledger import CreditLedger
from bench.baselines import EVENTS_PER_LIFECYCLE, library_lifecycles
from bench.machine import load_average, machine_facts
from bench.report import Row, as_json, console, render, write_json
from bench.stores import (
    BACKENDS,
    Backend,
    Store,
    fresh_store,
    ledger_configuration,
    postgres_problem,
)
from bench.timing import LifecycleRun, Rate, Timing, check_event_count, time_callers
from domain.events import PurchaseEvent
from domain.purchase import CreditPurchase, project_purchase
from domain.status import PurchaseStatus

NAMESPACE = "bench"
DEFAULT_RUNS = 3
DEFAULT_PURCHASES: dict[Backend, int] = {"memory": 2000, "sqlite": 600, "postgres": 250}
"""Lifecycles per run: a second or two per run and side on a quiet 2-core machine."""

REPLAY_PAGE = 5000
"""Notifications read per query when folding the whole log."""


def warmup_for(purchases: int, callers: int = 1) -> int:
    """Untimed lifecycles first: connections opened, statements prepared, code paths warm."""
    return max(callers, min(50, max(5, purchases // 10)))


def initiate_command(index: int) -> InitiatePurchase:
    return InitiatePurchase(
        namespace=NAMESPACE,
        customer_id=f"customer-{index}",
        currency="USD",
        credit_amount="100.12",
        cost_basis="0.5",
        settlement=SettlementInput(type="external", initial_status="created"),
    )


def run_lifecycle(ledger: CreditLedger, index: int) -> UUID:
    """One purchase from initiation to final, through the public Python API."""
    purchase = ledger.initiate_purchase(initiate_command(index))
    ledger.authorize_payment(AuthorizePayment(namespace=NAMESPACE, purchase_id=purchase.id))
    ledger.settle_payment(SettlePayment(namespace=NAMESPACE, purchase_id=purchase.id))
    return purchase.id


def ledger_lifecycles(
    store: Store, purchases: int, callers: int, warmup: int, *, replay: bool = False
) -> LifecycleRun:
    """Full lifecycles through creditledger by ``callers`` threads; then, if asked, a replay."""
    with store.open_ledger(pool_size=callers) as ledger:
        # Warm up with as many callers as will be timed, so every pooled connection is open.
        time_callers(partial(run_lifecycle, ledger), range(-warmup, 0), callers)
        seconds = time_callers(partial(run_lifecycle, ledger), range(purchases), callers)
        check_event_count(
            ledger.recorder.max_notification_id() or 0,
            EVENTS_PER_LIFECYCLE * (purchases + warmup),
            "creditledger lifecycles",
        )
        replayed = ledger_replay(ledger, purchases + warmup) if replay else None
    return LifecycleRun(Timing(purchases, EVENTS_PER_LIFECYCLE * purchases, seconds), replayed)


def fold_log(ledger: CreditLedger) -> dict[UUID, CreditPurchase]:
    """Every purchase in the store, rebuilt from the whole notification log, oldest first."""
    purchases: dict[UUID, CreditPurchase] = {}
    last = 0
    while True:
        page = ledger.recorder.select_notifications(
            start=last, limit=REPLAY_PAGE, inclusive_of_start=False
        )
        for notification in page:
            # The ledger's mapper (infrastructure.persistence.mapper) yields purchase events.
            event = cast(PurchaseEvent, ledger.mapper.to_domain_event(notification))
            folded = project_purchase(purchases.get(event.originator_id), (event,))
            if folded is not None:
                purchases[event.originator_id] = folded
        if len(page) < REPLAY_PAGE:
            return purchases
        last = page[-1].id


def ledger_replay(ledger: CreditLedger, expected_purchases: int) -> Timing:
    """The whole log read in pages, decoded by our mapper and folded into purchases."""
    started = time.perf_counter()
    purchases = fold_log(ledger)
    seconds = time.perf_counter() - started
    settled = sum(purchase.status is PurchaseStatus.FINAL for purchase in purchases.values())
    if settled != expected_purchases:
        msg = f"creditledger replay: {settled} of {expected_purchases} purchases came back final"
        raise RuntimeError(msg)
    return Timing(settled, EVENTS_PER_LIFECYCLE * settled, seconds)


def compare_lifecycles(
    backend: Backend, purchases: int, runs: int, callers: int, *, replay: bool = False
) -> tuple[list[LifecycleRun], list[LifecycleRun]]:
    """R runs of each side, each run on its own fresh store: (creditledger's, library's).

    The side that goes first alternates from run to run, so that a machine getting busier or
    quieter during the benchmark does not always favour the same side.
    """
    warmup = warmup_for(purchases, callers)
    ours: list[LifecycleRun] = []
    library: list[LifecycleRun] = []
    for run in range(runs):
        for side in ("ours", "library") if run % 2 == 0 else ("library", "ours"):
            with fresh_store(backend) as store:
                if side == "ours":
                    ours.append(ledger_lifecycles(store, purchases, callers, warmup, replay=replay))
                else:
                    library.append(
                        library_lifecycles(store, purchases, callers, warmup, replay=replay)
                    )
    return ours, library


def _callers_label(callers: int) -> str:
    return "1 caller" if callers == 1 else f"{callers} concurrent callers"


def lifecycle_rows(
    backend: Backend, purchases: int, runs: int, callers: int, *, section: str, replay: bool
) -> list[Row]:
    """The lifecycle row (and the replay row, if asked) of one backend and caller count."""
    ours, library = compare_lifecycles(backend, purchases, runs, callers, replay=replay)
    size = f"{purchases} lifecycles"
    rows = [
        Row(
            section,
            f"lifecycles, {_callers_label(callers)}",
            backend,
            size,
            Rate(
                f"creditledger lifecycles, {_callers_label(callers)}",
                "lifecycle",
                tuple(run.lifecycles for run in ours),
            ),
            Rate(
                f"bare library, {_callers_label(callers)}",
                "lifecycle",
                tuple(run.lifecycles for run in library),
            ),
        )
    ]
    if replay:
        rows.append(
            Row(
                "5",
                "full-log replay",
                backend,
                f"{EVENTS_PER_LIFECYCLE * (purchases + warmup_for(purchases, callers))} events",
                Rate(
                    "creditledger: fold the log (select_notifications + mapper + project)",
                    "purchase",
                    tuple(run.replay for run in ours if run.replay is not None),
                ),
                Rate(
                    "bare library: repository.get per aggregate",
                    "purchase",
                    tuple(run.replay for run in library if run.replay is not None),
                ),
            )
        )
    return rows


def skipped_row(section: str, title: str, backend: Backend, reason: str) -> Row:
    return Row(section, title, backend, "-", None, note=f"skipped: {reason}")


def parse_backends(text: str) -> list[Backend]:
    chosen: list[Backend] = []
    for name in (part.strip() for part in text.split(",") if part.strip()):
        if name not in BACKENDS:
            msg = f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}"
            raise argparse.ArgumentTypeError(msg)
        chosen.extend(backend for backend in BACKENDS if backend == name)
    return chosen


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog="python -m bench.lifecycles",
        description="creditledger lifecycles/s vs the bare eventsourcing library",
    )
    command.add_argument(
        "--backends",
        type=parse_backends,
        default=list(BACKENDS),
        help="comma-separated: memory,sqlite,postgres (default: all)",
    )
    command.add_argument(
        "--purchases",
        type=int,
        default=None,
        help="lifecycles per run on every backend (default: "
        + ", ".join(f"{backend} {n}" for backend, n in DEFAULT_PURCHASES.items())
        + ")",
    )
    command.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs; medians reported")
    command.add_argument("--json", type=Path, default=None, help="also write the results here")
    return command


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if options.runs < 1 or (options.purchases is not None and options.purchases < 1):
        parser().error("--runs and --purchases must be at least 1")
    out = console()
    facts = machine_facts()
    facts["creditledger configuration"] = ledger_configuration()
    rows: list[Row] = []
    sizes: dict[str, int] = {}
    for backend in options.backends:
        purchases = options.purchases or DEFAULT_PURCHASES[backend]
        if backend == "postgres" and (problem := postgres_problem()) is not None:
            rows.append(skipped_row("3", "lifecycles, 1 caller", backend, problem))
            continue
        out.print(f"measuring {backend}: {options.runs} runs of {purchases} lifecycles...")
        rows += lifecycle_rows(backend, purchases, options.runs, 1, section="3", replay=False)
        sizes[backend] = purchases
    facts["load average at end"] = load_average()
    title = "creditledger lifecycles vs the bare eventsourcing library"
    render(title, facts, rows, out)
    if options.json is not None:
        parameters = {"runs": options.runs, "purchases": sizes, "callers": 1}
        write_json(options.json, as_json(title, facts, parameters, rows))
        out.print(f"wrote {options.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
