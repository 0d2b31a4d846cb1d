"""The expiry sweep records each due expiry once, however often and however many run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest

from creditledger.application.expiry_sweep import ExpirySweep
from creditledger.application.ledger import CreditLedger
from creditledger.domain.events import GrantExpired
from creditledger.infrastructure.expiry.sweeper import ExpirySweepSource, SweepThread
from creditledger.infrastructure.projections.service import ReadModelService
from tests.application.builders import NAMESPACE, consume, promotional_purchase
from tests.clock import START, FixedClock
from tests.readmodels_support import logged_events, read_models

EXPIRES = START + timedelta(days=1)


@pytest.fixture
def views(ledger: CreditLedger) -> Iterator[ReadModelService]:
    with read_models(ledger) as service:
        yield service


def _grants(ledger: CreditLedger) -> None:
    for customer in ("cust-1", "cust-2", "cust-3"):
        ledger.initiate(
            promotional_purchase(credit_amount="10", customer_id=customer, expires_at=EXPIRES)
        )
    # Fully spent before it expires: nothing to forfeit, nothing to record.
    ledger.initiate(
        promotional_purchase(credit_amount="5", customer_id="cust-4", expires_at=EXPIRES)
    )
    ledger.consume(consume("5", customer_id="cust-4"))
    ledger.initiate(promotional_purchase(credit_amount="10", customer_id="cust-5"))  # no expiry


def _expiries(ledger: CreditLedger) -> list[GrantExpired]:
    return [event for _, event in logged_events(ledger) if isinstance(event, GrantExpired)]


def test_a_pass_records_every_due_expiry_and_the_next_records_none(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    _grants(ledger)
    sweep = ExpirySweep(ledger, ExpirySweepSource(views.database))
    views.runner.catch_up()
    assert sweep.run_once().expiries == 0  # nothing is due yet
    clock.set(EXPIRES + timedelta(minutes=10))

    assert sweep.lag_seconds() == 600
    first = sweep.run_once()
    views.runner.catch_up()
    second = sweep.run_once()

    assert (first.wallets, first.expiries, first.lag_seconds) == (3, 3, 600)
    assert (second.wallets, second.expiries, second.lag_seconds) == (0, 0, 0)
    assert sweep.lag_seconds() == 0
    assert sorted(e.customer_id for e in _expiries(ledger)) == ["cust-1", "cust-2", "cust-3"]
    assert {(e.amount, e.effective_at) for e in _expiries(ledger)} == {(Decimal(10), EXPIRES)}


def test_sweeps_racing_over_the_same_wallets_record_each_expiry_once(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    _grants(ledger)
    views.runner.catch_up()
    clock.set(EXPIRES)
    sweeps = [ExpirySweep(ledger, ExpirySweepSource(views.database)) for _ in range(4)]
    barrier = threading.Barrier(len(sweeps))
    totals: list[int] = []

    def run(sweep: ExpirySweep) -> None:
        barrier.wait()
        totals.append(sweep.run_once().expiries)

    threads = [threading.Thread(target=run, args=(sweep,)) for sweep in sweeps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(totals) == 3
    assert len(_expiries(ledger)) == 3


def test_the_sweep_thread_keeps_sweeping_until_stopped(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    _grants(ledger)
    views.runner.catch_up()
    clock.set(EXPIRES + timedelta(seconds=1))
    sweeper = SweepThread(ledger, views.database, interval=0.01)
    sweeper.start()
    try:
        for _ in range(500):
            if sweeper.recorded == 3:
                break
            threading.Event().wait(0.01)
    finally:
        sweeper.stop()
    assert not sweeper.running
    assert sweeper.recorded == 3
    assert sweeper.last_error is None
    assert ledger.customer_credits(NAMESPACE, "cust-1", "USD").balance == 0
