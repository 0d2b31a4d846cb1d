"""A consumption against a customer's open grants: does its cost grow with what is open?

A customer may hold many grants at once (a top-up a month that never expires, seats granted one
by one). Each consumption is decided over that customer's spendable grants in burn-down order,
and the offline audit checks the decision (its draw, the balance it states) against the same
grants. For each count of open grants, on a fresh store, one customer is given that many grants
(external purchases of 10 credits, every third with an expiry a year ahead, so the burn-down order
and the expiry index both have work), then:

- ``consume``: one caller's consumptions of 0.01 (the ledger as the server runs it), p50 latency;
- ``verify``: the offline audit of the store's export (``ExportVerifier``, in this process),
  per consumption line: the time to feed the consumption lines, after the grants' lines.

The baseline is the same run's smallest count of open grants (1 by default): the ratio says how
much a consumption's cost grows with what the customer has open. No timing is asserted anywhere.

The suite's section 11b (``open_grants_row``) is the consumption's p50 at ``ROW_OPEN_GRANTS``
open grants against the same at one open grant.

Run: ``.venv/bin/python -m bench.open_grants [--backends sqlite,postgres] [--sizes 1,100,1000,4000]
[--consumptions N]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from bench import keys
from bench.lifecycles import parse_backends
from bench.machine import load_average, machine_facts
from bench.report import Row
from bench.stores import Backend, fresh_store, postgres_problem
from bench.timing import Rate, Timing
from creditledger.application.audit.verify import ExportVerifier
from creditledger.application.commands import ConsumeCredits, InitiatePurchase, SettlementInput
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.audit.jobs import export_to_file

NAMESPACE = "bench"
CUSTOMER = "many-grants"
CURRENCY = "USD"
GRANTED = Decimal(10)
SPENT = Decimal("0.01")
DEFAULT_SIZES = (1, 100, 1000, 4000)
DEFAULT_CONSUMPTIONS = 101
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")
ROW_OPEN_GRANTS = 4000
"""The suite's row (section 11b): one customer's open grants."""
ROW_CONSUMPTIONS = 51


@dataclass(frozen=True)
class Figures:
    open_grants: int
    consume_ms: float
    """p50 latency of one consumption."""
    verify_us: float
    """Offline verification per consumption line."""


def grant(ledger: CreditLedger, count: int) -> None:
    """``count`` open grants for the one customer (external purchases, granted at initiation)."""
    for index in range(count):
        expires_at = ledger.clock.now() + timedelta(days=365) if index % 3 == 0 else None
        ledger.initiate(
            InitiatePurchase(
                namespace=NAMESPACE,
                customer_id=CUSTOMER,
                currency=CURRENCY,
                credit_amount=GRANTED,
                cost_basis=Decimal("0.5"),
                settlement=SettlementInput(type="external"),
                expires_at=expires_at,
            )
        )


def consume(ledger: CreditLedger, count: int) -> list[float]:
    """Seconds of each of ``count`` consumptions, after one warm-up consumption."""
    request = ConsumeCredits(
        namespace=NAMESPACE, customer_id=CUSTOMER, currency=CURRENCY, amount=SPENT
    )
    ledger.consume(request)
    taken = []
    for _ in range(count):
        started = time.perf_counter()
        ledger.consume(request)
        taken.append(time.perf_counter() - started)
    return taken


def verify_per_consumption(lines: list[str]) -> float:
    """Seconds per consumption line of verifying the export offline (its lines fed in order)."""
    verifier = ExportVerifier()
    consumptions = [line for line in lines if '"type":"CreditsConsumed"' in line]
    others = [line for line in lines[:-1] if '"type":"CreditsConsumed"' not in line]
    # The export holds every grant before the first consumption: feed those, then time the rest.
    for line in others:
        verifier.feed(line)
    started = time.perf_counter()
    for line in consumptions:
        verifier.feed(line)
    taken = time.perf_counter() - started
    verifier.feed(lines[-1])
    report = verifier.finish()
    if not report.ok:
        msg = f"the export does not verify: {report.failure}"
        raise RuntimeError(msg)
    return taken / len(consumptions)


def measure(backend: Backend, open_grants: int, consumptions: int) -> Figures:
    with fresh_store(backend) as store, store.open_ledger() as ledger:
        grant(ledger, open_grants)
        taken = consume(ledger, consumptions)
        with tempfile.TemporaryDirectory(prefix="creditledger-bench-grants-") as directory:
            path = Path(directory) / "export.jsonl"
            export_to_file(ledger, str(path), store="bench", exported_at=ledger.clock.now())
            lines = path.read_text(encoding="utf-8").splitlines()
    return Figures(
        open_grants,
        statistics.median(taken) * 1e3,
        verify_per_consumption(lines) * 1e6,
    )


def open_grants_row(backend: Backend, runs: int, scale: float) -> Row:
    """Section 11b of the suite: a consumption's p50 for a customer holding ``ROW_OPEN_GRANTS``
    (times ``scale``) open grants, against the same for a customer holding one. One store per
    side, loaded once; each run a fresh ledger on it."""
    many = max(2, round(ROW_OPEN_GRANTS * scale))
    sides: dict[int, list[Timing]] = {many: [], 1: []}
    for open_grants, side in sides.items():
        with fresh_store(backend) as store:
            with store.open_ledger() as writer:
                grant(writer, open_grants)
            for _ in range(runs):
                with store.open_ledger() as ledger:
                    taken = consume(ledger, ROW_CONSUMPTIONS)
                side.append(Timing(len(taken), len(taken), sum(taken), tuple(taken)))
    return Row(
        "11b",
        f"a consumption, its customer holding {many:,} open grants",
        backend,
        f"{ROW_CONSUMPTIONS} consumptions",
        Rate(f"creditledger consume, {many:,} open grants", "consumption", tuple(sides[many])),
        Rate("creditledger consume, 1 open grant", "consumption", tuple(sides[1])),
        key=keys.CONSUME_OPEN_GRANTS,
        compare="p50 latency",
        note="one customer, grants never spent whole, loaded once per side; each run a fresh "
        "ledger; the baseline is the same command for a customer holding one grant",
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--sizes", default=",".join(str(size) for size in DEFAULT_SIZES))
    parser.add_argument("--consumptions", type=int, default=DEFAULT_CONSUMPTIONS)
    options = parser.parse_args(argv)
    sizes = sorted(int(size) for size in options.sizes.split(","))
    print(f"machine: {machine_facts()}")
    print(
        f"{'backend':<9}{'open grants':>12}{'consume p50 ms':>16}{'x smallest':>12}"
        f"{'verify us/consumption':>23}{'x smallest':>12}"
    )
    for backend in parse_backends(options.backends):
        if backend == "postgres" and (problem := postgres_problem()) is not None:
            print(f"{backend:<9} skipped: {problem}")
            continue
        baseline: Figures | None = None
        for size in sizes:
            figures = measure(backend, size, options.consumptions)
            baseline = baseline or figures
            print(
                f"{backend:<9}{size:>12,}{figures.consume_ms:>16.3f}"
                f"{figures.consume_ms / baseline.consume_ms:>11.1f}x"
                f"{figures.verify_us:>23.1f}{figures.verify_us / baseline.verify_us:>11.1f}x"
            )
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
