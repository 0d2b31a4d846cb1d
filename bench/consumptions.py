"""Consumptions per second with 32 callers: one hot customer, and spread over 1,000 customers.

Issue 12's target: one customer consuming from 32 callers at once sustains at least 1,000
consumptions/s on PostgreSQL; spread over 1,000 customers, at least the lifecycle rate. Each
consumption is one command (``CreditLedger.consume`` with an idempotency key, as a metering
client sends it) and writes one event (``CreditsConsumed``) to the customer's credit wallet, the
aggregate that serializes every decision of that customer and currency.

creditledger runs as the server does (group commit on for SQLite and PostgreSQL, its wallet
cache and per-wallet lock). The customers' credit is granted before the clock starts.

The baseline is the bare library doing the same thing with its own idiom: one ``Aggregate`` per
customer holding a balance, one event per command, saved by 32 threads. A decision needs the
aggregate's latest version, so each thread holds the aggregate's lock (striped, as ours) from the
decision to the end of its save, and the aggregate stays in memory (reloading a hot aggregate
from its ever longer history before each command would make the baseline quadratic). For one
customer that serializes the library's saves: one transaction per event, which is the ceiling the
ledger's design (docs/credit-lifecycle-design.md section 4) is there to lift.

Run: ``.venv/bin/python -m bench.consumptions [--backends sqlite,postgres] [--consumptions N]
[--runs R]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from eventsourcing.domain import Aggregate, event

from bench import keys
from bench.baselines import BareLedger, open_bare_ledger
from bench.lifecycles import parse_backends, run_order, skipped_row
from bench.machine import load_average, machine_facts
from bench.report import Row, console, render
from bench.stores import Backend, Store, fresh_store, ledger_configuration, postgres_problem
from bench.timing import Rate, Timing, check_event_count, time_callers
from creditledger.application.commands import ConsumeCredits, InitiatePurchase, SettlementInput
from creditledger.application.ledger import CreditLedger
from creditledger.application.striped_locks import StripedLocks

NAMESPACE = "bench"
CURRENCY = "USD"
CALLERS = 32
SPREAD_CUSTOMERS = 1000
CONSUMED = "1"
"""Credit each consumption spends."""
GRANT_PER_CUSTOMER = "1000000"
"""Enough for every consumption a run makes: the bench measures spending, not refusals."""
WARMUP = 64
DEFAULT_RUNS = 3
DEFAULT_CONSUMPTIONS: dict[Backend, int] = {"sqlite": 3200, "postgres": 3200}
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")

Spread = int
"""How many customers the consumptions are dealt over: 1 (one hot customer) or 1,000."""


def customer(index: int) -> str:
    return f"consumer-{index}"


# -- creditledger ----------------------------------------------------------------------------------


def grant(ledger: CreditLedger, index: int) -> None:
    ledger.initiate(
        InitiatePurchase(
            namespace=NAMESPACE,
            customer_id=customer(index),
            currency=CURRENCY,
            credit_amount=GRANT_PER_CUSTOMER,
            settlement=SettlementInput(type="promotional"),
        )
    )


def consume(ledger: CreditLedger, customers: Spread, run: str, index: int) -> None:
    ledger.consume(
        ConsumeCredits(
            namespace=NAMESPACE,
            customer_id=customer(index % customers),
            currency=CURRENCY,
            amount=CONSUMED,
            idempotency_key=f"{run}-{index}",
        )
    )


def ledger_consumptions(store: Store, customers: Spread, consumptions: int) -> Timing:
    """``consumptions`` consumptions by 32 callers over ``customers`` customers' wallets."""
    with store.open_ledger(pool_size=CALLERS) as ledger:
        time_callers(partial(grant, ledger), range(customers), min(CALLERS, customers))
        granted = ledger.recorder.max_notification_id() or 0
        time_callers(partial(consume, ledger, customers, "warmup"), range(WARMUP), CALLERS)
        seconds = time_callers(
            partial(consume, ledger, customers, "timed"), range(consumptions), CALLERS
        )
        check_event_count(
            ledger.recorder.max_notification_id() or 0,
            granted + WARMUP + consumptions,
            "creditledger consumptions",
        )
        _check_balances(ledger, customers, WARMUP + consumptions)
    return Timing(consumptions, consumptions, seconds, commands=consumptions)


def _check_balances(ledger: CreditLedger, customers: Spread, consumed: int) -> None:
    """Every consumption is in its wallet, none twice: what remains adds up."""
    granted = Decimal(GRANT_PER_CUSTOMER) * customers
    balances = (ledger.customer_credits(NAMESPACE, customer(i), CURRENCY) for i in range(customers))
    remaining = sum((credits.balance for credits in balances), Decimal(0))
    if granted - remaining != Decimal(CONSUMED) * consumed:
        msg = f"consumptions: {granted - remaining} consumed, expected {consumed}"
        raise RuntimeError(msg)


# -- the bare library ------------------------------------------------------------------------------


class BareWallet(Aggregate):
    """A customer's balance, as the library's own idiom writes it."""

    @event("Granted")
    def __init__(self, customer_id: str, amount: Decimal) -> None:
        self.customer_id = customer_id
        self.balance = amount

    @event("Consumed")
    def consume(self, amount: Decimal) -> None:
        self.balance -= amount


@dataclass
class BareWallets:
    """The library's wallets, kept in memory, each decided and saved under its stripe's lock."""

    app: BareLedger
    wallets: list[BareWallet]
    locks: StripedLocks

    def consume(self, customers: Spread, index: int) -> None:
        wallet = self.wallets[index % customers]
        with self.locks.of(wallet.id):
            if wallet.balance < Decimal(CONSUMED):  # pragma: no cover - grants cover every run
                msg = "bare wallet: insufficient balance"
                raise RuntimeError(msg)
            wallet.consume(Decimal(CONSUMED))
            self.app.save(wallet)


def library_consumptions(store: Store, customers: Spread, consumptions: int) -> Timing:
    with open_bare_ledger(store, pool_size=CALLERS) as app:
        wallets = [BareWallet(customer(i), Decimal(GRANT_PER_CUSTOMER)) for i in range(customers)]
        app.save(*wallets)
        bare = BareWallets(app, wallets, StripedLocks())
        time_callers(partial(bare.consume, customers), range(WARMUP), CALLERS)
        seconds = time_callers(partial(bare.consume, customers), range(consumptions), CALLERS)
        check_event_count(
            app.recorder.max_notification_id() or 0,
            customers + WARMUP + consumptions,
            "library consumptions",
        )
    return Timing(consumptions, consumptions, seconds, commands=consumptions)


# -- rows ------------------------------------------------------------------------------------------


def spread_label(customers: Spread) -> str:
    return "one hot customer" if customers == 1 else f"{customers:,} customers"


def consumption_row(backend: Backend, customers: Spread, consumptions: int, runs: int) -> Row:
    """R runs of each side, the side going first alternating, each run on a fresh store."""
    measured: dict[str, list[Timing]] = {"ours": [], "library": []}
    for run in range(runs):
        for side in run_order(["ours", "library"], run):
            with fresh_store(backend) as store:
                if side == "ours":
                    measured[side].append(ledger_consumptions(store, customers, consumptions))
                else:
                    measured[side].append(library_consumptions(store, customers, consumptions))
    label = spread_label(customers)
    return Row(
        "3b",
        f"consumptions, {CALLERS} callers, {label}",
        backend,
        f"{consumptions} consumptions",
        Rate(
            f"creditledger consume, {CALLERS} callers, {label}",
            "consumption",
            tuple(measured["ours"]),
        ),
        Rate(
            f"bare library, 1 event/save, {CALLERS} threads, {label}, aggregate in memory under "
            "its lock",
            "consumption",
            tuple(measured["library"]),
        ),
        key=keys.consumptions(customers),
        compare="commands/s",
    )


def consumption_rows(backend: Backend, consumptions: int, runs: int) -> list[Row]:
    return [
        consumption_row(backend, customers, consumptions, runs)
        for customers in (1, SPREAD_CUSTOMERS)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.consumptions", description=__doc__)
    parser.add_argument("--backends", type=parse_backends, default=list(BACKENDS))
    parser.add_argument("--consumptions", type=int, default=None, help="per run")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    options = parser.parse_args(argv)
    out = console()
    facts = machine_facts()
    facts["creditledger configuration"] = ledger_configuration()
    rows: list[Row] = []
    for backend in options.backends:
        if backend == "postgres" and (problem := postgres_problem()) is not None:
            rows.append(skipped_row("3b", "consumptions", backend, problem))
            continue
        count = options.consumptions or DEFAULT_CONSUMPTIONS.get(backend, 3200)
        rows += consumption_rows(backend, count, options.runs)
    facts["load average at end"] = load_average()
    render("creditledger consumptions vs the bare eventsourcing library", facts, rows, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
