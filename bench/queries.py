"""Query latency for a customer with a long credit history: one purchase, the credits, now, and
a page of the credit history.

A purchase's view and a customer's credits show what the customer's credit wallet holds, and a
query reads the store. Until session 9 every such query folded the wallet's whole history, so
its latency grew with the customer's history. Now a query brings the wallet this process holds
up to date with the events the store has after it (``CreditLedger._grants_now``); a query as of
a past time still folds the history up to that time.

For each history size (one customer; each purchase's credit then spent whole by one consumption,
so two wallet events per purchase and at most one grant open at a time: the history grows, what
is spendable does not), on a fresh store, one ledger process:
- ``purchase now``: ``get_purchase`` of the customer's oldest purchase (the API's GET);
- ``credits now``: ``customer_credits`` (the API's credits; its answer lists every spendable
  grant);
- ``history page``: a page of ``PAGE`` entries of ``credit_history``, each after the page
  before it, as the API asks for them (one entry more, to know whether a page follows): the
  median over one pass through the whole history;
- baselines in the same run, on the same store: ``purchase as of now`` (``get_purchase`` with
  ``as_of``: the history folded, as every query did before), ``whole history`` (every entry
  of the history: what each page cost until session 10, which built them all and sliced) and
  the bare library's ``repository.get`` of the wallet (decode and fold its events).

Each figure is the median latency of ``--queries`` queries after one warm-up query (the first
query of a process folds the history once and holds the wallet). No timing is asserted anywhere.
The suite's section 11 (``query_row``) is the first column against the last, at 4,000 purchases.

Run: ``.venv/bin/python -m bench.queries [--backends sqlite,postgres] [--sizes 100,1000,4000]
[--queries 21]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from bench import keys
from bench.lifecycles import parse_backends
from bench.machine import load_average, machine_facts
from bench.report import Row
from bench.stores import Backend, Store, fresh_store, postgres_problem
from bench.timing import Rate, Timing
from creditledger.application.commands import ConsumeCredits, InitiatePurchase, SettlementInput
from creditledger.application.ledger import CreditLedger
from creditledger.domain.identity import wallet_id_for
from creditledger.domain.wallet import project_wallet

NAMESPACE = "bench"
CUSTOMER = "hot"
CURRENCY = "USD"
CREDIT = Decimal(10)
DEFAULT_SIZES = (100, 1000, 4000)
DEFAULT_QUERIES = 21
ROW_PURCHASES = 4000
"""The suite's row (section 11): one customer's purchases."""
ROW_QUERIES = 51
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")
"""A second ledger reads the store the first wrote: not the in-memory store's case."""
COLUMNS = (
    "purchase now",
    "credits now",
    "history page",
    "purchase as of now",
    "whole history",
    "library wallet get",
)
PAGE = 100
"""Entries per credit-history page (the API's default limit)."""


def load(ledger: CreditLedger, purchases: int) -> Any:
    """``purchases`` purchases of one customer, each spent whole by a consumption; the oldest.

    Spent whole, so the wallet holds one open grant at a time: the queries measured here read a
    history, whatever is open (``bench.open_grants`` measures a customer holding many)."""
    oldest = None
    for _ in range(purchases):
        purchase = ledger.initiate(
            InitiatePurchase(
                namespace=NAMESPACE,
                customer_id=CUSTOMER,
                currency=CURRENCY,
                credit_amount=CREDIT,
                cost_basis=Decimal("0.5"),
                settlement=SettlementInput(type="external"),
            )
        ).purchase
        oldest = oldest or purchase
        ledger.consume(
            ConsumeCredits(
                namespace=NAMESPACE, customer_id=CUSTOMER, currency=CURRENCY, amount=CREDIT
            )
        )
    return oldest


def latencies(query: Callable[[], object], queries: int) -> list[float]:
    """Seconds of each of ``queries`` queries, after one warm-up query (the first query of a
    process folds the history once and holds the wallet)."""
    query()
    taken = []
    for _ in range(queries):
        started = time.perf_counter()
        query()
        taken.append(time.perf_counter() - started)
    return taken


def pages(ledger: CreditLedger) -> list[float]:
    """Seconds of each page of one pass through the customer's credit history, each page
    asked as the API asks it: ``PAGE`` + 1 entries after the last entry of the page before."""
    taken = []
    after: int | None = 0
    while after is not None:
        started = time.perf_counter()
        entries = ledger.credit_history(NAMESPACE, CUSTOMER, CURRENCY, after=after, limit=PAGE + 1)
        taken.append(time.perf_counter() - started)
        after = entries[PAGE - 1].sequence if len(entries) > PAGE else None
    return taken


def measure_latencies(backend: Backend, purchases: int, queries: int) -> dict[str, list[float]]:
    """The latencies of each query (``COLUMNS``) for a customer of ``purchases``."""
    with fresh_store(backend) as store:
        with store.open_ledger() as writer:
            oldest = load(writer, purchases)
        return _latencies_on(store, oldest.id, queries)


def _latencies_on(store: Store, purchase_id: UUID, queries: int) -> dict[str, list[float]]:
    # A fresh process's ledger: nothing held yet, as after a restart.
    with store.open_ledger() as ledger:
        wallet_id = wallet_id_for(NAMESPACE, CUSTOMER, CURRENCY)
        return {
            "purchase now": latencies(lambda: ledger.get_purchase(NAMESPACE, purchase_id), queries),
            "credits now": latencies(
                lambda: ledger.customer_credits(NAMESPACE, CUSTOMER, CURRENCY), queries
            ),
            "history page": pages(ledger),
            "purchase as of now": latencies(
                lambda: ledger.get_purchase(NAMESPACE, purchase_id, as_of=ledger.clock.now()),
                queries,
            ),
            "whole history": latencies(
                lambda: ledger.credit_history(NAMESPACE, CUSTOMER, CURRENCY), queries
            ),
            "library wallet get": latencies(
                lambda: ledger.repository.get(wallet_id, projector_func=project_wallet), queries
            ),
        }


def measure(backend: Backend, purchases: int, queries: int) -> dict[str, float]:
    """Median milliseconds of each query (``COLUMNS``) for a customer of ``purchases``."""
    return {
        column: statistics.median(taken) * 1000
        for column, taken in measure_latencies(backend, purchases, queries).items()
    }


def query_row(backend: Backend, runs: int, scale: float) -> Row:
    """Section 11 of the suite: a purchase's view now against the library's fold of the wallet,
    p50 latency, for one customer of ``ROW_PURCHASES`` (times ``scale``) purchases."""
    purchases = max(2, round(ROW_PURCHASES * scale))
    ours: list[Timing] = []
    theirs: list[Timing] = []
    # One store per backend, loaded once (the load is most of the time: a customer's commands
    # are decided one after another); each run reads it with a ledger of its own.
    with fresh_store(backend) as store:
        with store.open_ledger() as writer:
            oldest = load(writer, purchases)
        for _ in range(runs):
            taken = _latencies_on(store, oldest.id, ROW_QUERIES)
            for side, column in ((ours, "purchase now"), (theirs, "library wallet get")):
                run = taken[column]
                side.append(Timing(len(run), len(run), sum(run), tuple(run)))
    return Row(
        "11",
        f"a purchase's view now, its customer of {purchases:,} purchases",
        backend,
        f"{ROW_QUERIES} queries",
        Rate("creditledger get_purchase now", "query", tuple(ours)),
        Rate("bare library repository.get of the wallet", "query", tuple(theirs)),
        key=keys.QUERY_PURCHASE_NOW,
        compare="p50 latency",
        note="one customer, each purchase spent whole, loaded once per backend; each run a "
        "fresh ledger on it; the baseline folds the wallet's history",
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--sizes", default=",".join(str(size) for size in DEFAULT_SIZES))
    parser.add_argument("--queries", type=int, default=DEFAULT_QUERIES)
    options = parser.parse_args(argv)
    sizes = [int(size) for size in options.sizes.split(",")]
    print(f"machine: {machine_facts()}")
    header = f"{'backend':<9}{'purchases':>10}" + "".join(f"{c:>20}" for c in COLUMNS)
    print(f"median ms of {options.queries} queries each (wallet events: 2 per purchase)")
    print(header)
    for backend in parse_backends(options.backends):
        if backend == "postgres" and (problem := postgres_problem()) is not None:
            print(f"{backend:<9} skipped: {problem}")
            continue
        for purchases in sizes:
            figures = measure(backend, purchases, options.queries)
            cells = "".join(f"{figures[column]:>20.2f}" for column in COLUMNS)
            ratio = figures["purchase as of now"] / figures["purchase now"]
            print(f"{backend:<9}{purchases:>10}{cells}   (as-of / now: {ratio:.0f}x)")
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
