"""creditledger's purchase lifecycles per second, next to the bare library doing the same work.

A lifecycle is what a caller of the Python API does for one external purchase: initiate it
(initial status ``created``), authorize its payment, settle it: 3 commands, 4 events (the
initiate writes the purchase's first event and the grant in the customer's credit wallet, in
one transaction) and, for a lone caller, 3 transactions. The baseline (``bench.baselines``)
makes the bare library do the same commands: 3 saves of 1 event, loading the purchase before
each of the last two as a command handler must. The rows compare commands/s (the same work
asked on both sides); events/s is shown too, but creditledger's counts the wallet event the
library has no counterpart for. creditledger runs with its default settings, so its purchase
cache spares it those loads and group commit lets concurrent callers share transactions: the
ratio shows what that is worth next to what its validation and richer events cost.

creditledger's side also records each command's latency (p50 and p99 in the report). The suite
adds a third side to the single-caller runs: creditledger with group commit off, the same
command without batching, to show what group commit costs a caller who has nobody to share a
transaction with.

Run: ``.venv/bin/python -m bench.lifecycles [--backends memory,sqlite,postgres]
[--purchases N] [--runs R] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal, cast
from uuid import UUID

from bench import keys
from bench.baselines import COMMANDS_PER_LIFECYCLE, EVENTS_PER_LIFECYCLE, library_lifecycles
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
from creditledger.application.commands import (
    AuthorizePayment,
    InitiatePurchase,
    SettlementInput,
    SettlePayment,
)
from creditledger.application.ledger import CreditLedger
from creditledger.domain.events import LedgerEvent, PurchaseEventBase, WalletEventBase
from creditledger.domain.purchase import CreditPurchase, project_purchase
from creditledger.domain.status import PurchaseStatus
from creditledger.domain.wallet import CreditWallet, project_wallet

NAMESPACE = "bench"
LEDGER_EVENTS_PER_LIFECYCLE = EVENTS_PER_LIFECYCLE + 1
"""The purchase's 3 events and the grant in the customer's wallet (``GrantAdded``)."""
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
    purchase = ledger.initiate(initiate_command(index)).purchase
    ledger.authorize(AuthorizePayment(namespace=NAMESPACE, purchase_id=purchase.id))
    ledger.settle(SettlePayment(namespace=NAMESPACE, purchase_id=purchase.id))
    return purchase.id


def timed_lifecycle(ledger: CreditLedger, latencies: list[float], index: int) -> UUID:
    """``run_lifecycle``, recording how long each of its three commands took."""
    started = time.perf_counter()
    purchase = ledger.initiate(initiate_command(index)).purchase
    initiated = time.perf_counter()
    ledger.authorize(AuthorizePayment(namespace=NAMESPACE, purchase_id=purchase.id))
    authorized = time.perf_counter()
    ledger.settle(SettlePayment(namespace=NAMESPACE, purchase_id=purchase.id))
    settled = time.perf_counter()
    # One extend per lifecycle: atomic under the GIL, so concurrent callers can share the list.
    latencies.extend((initiated - started, authorized - initiated, settled - authorized))
    return purchase.id


def ledger_lifecycles(
    store: Store,
    purchases: int,
    callers: int,
    warmup: int,
    *,
    replay: bool = False,
    group_commit: bool | None = None,
) -> LifecycleRun:
    """Full lifecycles through creditledger by ``callers`` threads; then, if asked, a replay.

    Every command's latency is recorded (two clock readings each: far below a command's cost).
    ``group_commit`` None runs the service's default.
    """
    latencies: list[float] = []
    with store.open_ledger(pool_size=callers, group_commit=group_commit) as ledger:
        # Warm up with as many callers as will be timed, so every pooled connection is open.
        time_callers(partial(run_lifecycle, ledger), range(-warmup, 0), callers)
        seconds = time_callers(
            partial(timed_lifecycle, ledger, latencies), range(purchases), callers
        )
        check_event_count(
            ledger.recorder.max_notification_id() or 0,
            LEDGER_EVENTS_PER_LIFECYCLE * (purchases + warmup),
            "creditledger lifecycles",
        )
        replayed = ledger_replay(ledger, purchases + warmup) if replay else None
    timing = Timing(
        purchases,
        LEDGER_EVENTS_PER_LIFECYCLE * purchases,
        seconds,
        tuple(latencies),
        commands=COMMANDS_PER_LIFECYCLE * purchases,
    )
    return LifecycleRun(timing, replayed)


@dataclass
class FoldedLog:
    """The ledger's whole state rebuilt from its log: every purchase and every credit wallet."""

    purchases: dict[UUID, CreditPurchase]
    wallets: dict[UUID, CreditWallet]


def fold_log(ledger: CreditLedger) -> FoldedLog:
    """Every purchase and wallet in the store, rebuilt from the whole notification log."""
    folded = FoldedLog({}, {})
    last = 0
    while True:
        page = ledger.recorder.select_notifications(
            start=last, limit=REPLAY_PAGE, inclusive_of_start=False
        )
        for notification in page:
            # The ledger's mapper (creditledger.infrastructure.persistence.mapper) yields ledger
            # events: a purchase's or a wallet's.
            event = cast(LedgerEvent, ledger.mapper.to_domain_event(notification))
            if isinstance(event, WalletEventBase):
                wallet = project_wallet(folded.wallets.get(event.originator_id), (event,))
                if wallet is not None:
                    folded.wallets[event.originator_id] = wallet
            elif isinstance(event, PurchaseEventBase):
                purchase = project_purchase(folded.purchases.get(event.originator_id), (event,))
                if purchase is not None:
                    folded.purchases[event.originator_id] = purchase
        if len(page) < REPLAY_PAGE:
            return folded
        last = page[-1].id


def ledger_replay(ledger: CreditLedger, expected_purchases: int) -> Timing:
    """The whole log read in pages, decoded by our mapper and folded into purchases and
    wallets (every purchase's grant must be in its customer's wallet)."""
    started = time.perf_counter()
    folded = fold_log(ledger)
    seconds = time.perf_counter() - started
    purchases = folded.purchases.values()
    settled = sum(purchase.status is PurchaseStatus.FINAL for purchase in purchases)
    granted = sum(len(wallet.grants) for wallet in folded.wallets.values())
    if settled != expected_purchases or granted != expected_purchases:
        msg = (
            f"creditledger replay: {settled} of {expected_purchases} purchases came back final, "
            f"{granted} grants in wallets"
        )
        raise RuntimeError(msg)
    return Timing(settled, LEDGER_EVENTS_PER_LIFECYCLE * settled, seconds)


Side = Literal["ours", "library", "unbatched"]


@dataclass(frozen=True)
class LifecycleSides:
    """The runs of each side of a lifecycle comparison, each run on its own fresh store."""

    ours: tuple[LifecycleRun, ...]
    """creditledger with its default settings."""
    library: tuple[LifecycleRun, ...]
    """The bare library doing the same lifecycles."""
    unbatched: tuple[LifecycleRun, ...] = ()
    """creditledger with group commit off (only when asked for)."""


def run_order(sides: Sequence[Side], run: int) -> list[Side]:
    """The sides in the order run ``run`` measures them: rotated by one place per run.

    So that a machine getting busier or quieter during the benchmark does not always favour
    the same side: over as many runs as sides, each side goes first once.
    """
    shift = run % len(sides)
    return [*sides[shift:], *sides[:shift]]


def compare_lifecycles(
    backend: Backend,
    purchases: int,
    runs: int,
    callers: int,
    *,
    replay: bool = False,
    unbatched: bool = False,
) -> LifecycleSides:
    """R runs of each side: creditledger's, the library's and, if asked, creditledger's with
    group commit off."""
    warmup = warmup_for(purchases, callers)
    sides: list[Side] = ["ours", "library"]
    if unbatched:
        sides.append("unbatched")
    measured: dict[Side, list[LifecycleRun]] = {side: [] for side in sides}
    for run in range(runs):
        for side in run_order(sides, run):
            with fresh_store(backend) as store:
                if side == "library":
                    result = library_lifecycles(store, purchases, callers, warmup, replay=replay)
                elif side == "ours":
                    result = ledger_lifecycles(store, purchases, callers, warmup, replay=replay)
                else:
                    result = ledger_lifecycles(
                        store, purchases, callers, warmup, group_commit=False
                    )
                measured[side].append(result)
    return LifecycleSides(
        tuple(measured["ours"]),
        tuple(measured["library"]),
        tuple(measured.get("unbatched", ())),
    )


def callers_label(callers: int) -> str:
    return "1 caller" if callers == 1 else f"{callers} concurrent callers"


def lifecycle_rows(
    backend: Backend,
    purchases: int,
    runs: int,
    callers: int,
    *,
    section: str,
    replay: bool,
    unbatched: bool = False,
) -> list[Row]:
    """The lifecycle row of one backend and caller count; then, if asked, the replay row and
    the group-commit latency row (creditledger's own runs, against creditledger unbatched)."""
    sides = compare_lifecycles(
        backend, purchases, runs, callers, replay=replay, unbatched=unbatched
    )
    size = f"{purchases} lifecycles"
    ours = Rate(
        f"creditledger lifecycles, {callers_label(callers)}",
        "lifecycle",
        tuple(run.lifecycles for run in sides.ours),
    )
    rows = [
        Row(
            section,
            f"lifecycles, {callers_label(callers)}",
            backend,
            size,
            ours,
            Rate(
                f"bare library, {callers_label(callers)}",
                "lifecycle",
                tuple(run.lifecycles for run in sides.library),
            ),
            key=keys.lifecycles(callers),
            compare="commands/s",
        )
    ]
    if replay:
        rows.append(
            Row(
                "5",
                "full-log replay",
                backend,
                f"{LEDGER_EVENTS_PER_LIFECYCLE * (purchases + warmup_for(purchases, callers))} "
                "events",
                Rate(
                    "creditledger: fold the log into purchases and wallets "
                    "(select_notifications + mapper + project), 4 events per purchase",
                    "purchase",
                    tuple(run.replay for run in sides.ours if run.replay is not None),
                ),
                Rate(
                    "bare library: repository.get per aggregate, 3 events per purchase",
                    "purchase",
                    tuple(run.replay for run in sides.library if run.replay is not None),
                ),
                key=keys.REPLAY,
            )
        )
    if sides.unbatched:
        rows.append(
            Row(
                section,
                f"{callers_label(callers)}: group commit on vs off",
                backend,
                size,
                Rate(
                    f"creditledger, {callers_label(callers)}, group commit on",
                    "lifecycle",
                    ours.runs,
                ),
                Rate(
                    f"creditledger, {callers_label(callers)}, group commit off",
                    "lifecycle",
                    tuple(run.lifecycles for run in sides.unbatched),
                ),
                key=keys.group_commit(callers),
                compare="p50 latency",
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
