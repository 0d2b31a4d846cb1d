"""Work for racing writers: run in threads of one process, or in processes of their own.

Kept out of the test modules so that a process started with the spawn method imports only this.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier as ProcessBarrier
from typing import Generic, TypeVar
from uuid import UUID

from creditledger.application.commands import AuthorizePayment
from creditledger.domain.errors import LedgerError
from creditledger.infrastructure.bootstrap import open_ledger

T = TypeVar("T")

BARRIER_TIMEOUT = 60.0
CLIENT_RETRIES = 20
"""How many times a racing client sends a payment command again after concurrent_modification."""
SWITCH_INTERVAL = 1e-6


@dataclass(frozen=True)
class Result(Generic[T]):
    """What one racer got: a value, or the code of the ledger error it was refused with."""

    value: T | None = None
    error: str | None = None


def race(attempts: Sequence[Callable[[], T]]) -> list[Result[T]]:
    """Run each attempt in its own thread, all released at one instant; collect every result."""
    racers = len(attempts)
    barrier = threading.Barrier(racers, timeout=BARRIER_TIMEOUT)
    results: list[Result[T]] = []
    unexpected: list[BaseException] = []
    lock = threading.Lock()

    def run(attempt: Callable[[], T]) -> None:
        barrier.wait()
        try:
            result: Result[T] = Result(value=attempt())
        except LedgerError as error:
            result = Result(error=error.code)
        except BaseException as error:  # handed to the test's thread, which re-raises it
            with lock:
                unexpected.append(error)
            return
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(attempt,)) for attempt in attempts]
    # Switch threads far more often than the default 5 ms: an in-memory command is so quick
    # that otherwise one racer usually finishes before the other has loaded anything.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=BARRIER_TIMEOUT * 2)
    finally:
        sys.setswitchinterval(switch_interval)
    if unexpected:
        raise unexpected[0]
    if len(results) != racers:
        msg = f"only {len(results)} of {racers} racers finished in time"
        raise RuntimeError(msg)
    return results


def race_processes(
    racers: int,
    target: Callable[..., None],
    args: tuple[object, ...],
    expected_results: int,
    *,
    roles: Sequence[object] | None = None,
) -> list[tuple[str, str]]:
    """Run ``target(*args, barrier, results)`` in ``racers`` fresh (spawned) processes; with
    ``roles`` (one per racer), process n runs ``target(*args, roles[n], barrier, results)``.

    Returns what they put on ``results``. Fails at once, rather than after every timeout, when a
    racer dies: its traceback is on the test's stderr.
    """
    if roles is not None and len(roles) != racers:
        msg = f"{len(roles)} roles for {racers} racers"
        raise ValueError(msg)
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(racers)
    results: Queue[tuple[str, str]] = spawn.Queue()
    own = [(role,) for role in roles] if roles is not None else [() for _ in range(racers)]
    processes = [
        spawn.Process(target=target, args=(*args, *extra, barrier, results)) for extra in own
    ]
    for process in processes:
        process.start()
    collected: list[tuple[str, str]] = []
    deadline = time.monotonic() + BARRIER_TIMEOUT * 2
    try:
        while len(collected) < expected_results:
            try:
                collected.append(results.get(timeout=0.2))
            except queue.Empty:
                dead = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:
                    barrier.abort()
                    msg = f"a racing process failed (exit codes {dead}); see its stderr"
                    raise RuntimeError(msg) from None
    finally:
        for process in processes:
            process.join(timeout=BARRIER_TIMEOUT)
            if process.is_alive():
                process.terminate()
    if any(process.exitcode != 0 for process in processes):
        msg = f"racing processes exited with {[p.exitcode for p in processes]}"
        raise RuntimeError(msg)
    return collected


def authorize_each(
    database_url: str,
    namespace: str,
    purchase_ids: Sequence[UUID],
    barrier: ProcessBarrier,
    results: Queue[tuple[str, str]],
) -> None:
    """In its own process: authorize every purchase, in step with the other racing processes.

    For each purchase the racers open a ledger at the same moment (as service processes that
    start together do) and then authorize at the same moment. Puts ``(purchase id, "ok" or the
    error code)`` on ``results`` for each purchase.
    """
    # A racer stuck for half the barrier's patience prints where it is, to the test's stderr.
    faulthandler.dump_traceback_later(BARRIER_TIMEOUT / 2, repeat=True)
    try:
        for purchase_id in purchase_ids:
            barrier.wait(BARRIER_TIMEOUT)
            with open_ledger(database_url) as ledger:
                barrier.wait(BARRIER_TIMEOUT)
                try:
                    ledger.authorize(AuthorizePayment(namespace=namespace, purchase_id=purchase_id))
                    outcome = "ok"
                except LedgerError as error:
                    outcome = error.code
            results.put((str(purchase_id), outcome))
    finally:
        faulthandler.cancel_dump_traceback_later()


def consume_each(
    database_url: str,
    spending: tuple[str, str, int],
    barrier: ProcessBarrier,
    results: Queue[tuple[str, str]],
) -> None:
    """In its own process: spend 1 USD of (namespace, customer) credit ``attempts`` times, with the
    other racing processes, group commit on as the server runs it. Puts ``(consumption id or "",
    "ok" or the error code)`` on ``results`` for each attempt."""
    from creditledger.application.commands import ConsumeCredits  # noqa: PLC0415
    from creditledger.infrastructure.settings import Settings  # noqa: PLC0415

    namespace, customer_id, attempts = spending
    faulthandler.dump_traceback_later(BARRIER_TIMEOUT / 2, repeat=True)
    try:
        settings = Settings(database_url=database_url, group_commit=True)
        with open_ledger(settings=settings) as ledger:
            barrier.wait(BARRIER_TIMEOUT)
            for _ in range(attempts):
                command = ConsumeCredits(
                    namespace=namespace, customer_id=customer_id, currency="USD", amount="1"
                )
                try:
                    consumption = ledger.consume(command).consumption
                    results.put((str(consumption.id), "ok"))
                except LedgerError as error:
                    results.put(("", error.code))
    finally:
        faulthandler.cancel_dump_traceback_later()


def open_each(
    database_urls: Sequence[str],
    barrier: ProcessBarrier,
    results: Queue[tuple[str, str]],
) -> None:
    """In its own process: open a ledger and its read models on each store, at the same moment
    as the other racing processes (servers starting together on an empty schema). Puts
    ``(store url, "ok" or the error)`` on ``results`` for each store."""
    # Imported here: only this racer needs the read models.
    from creditledger.infrastructure.bootstrap import open_read_models  # noqa: PLC0415

    faulthandler.dump_traceback_later(BARRIER_TIMEOUT / 2, repeat=True)
    try:
        for database_url in database_urls:
            barrier.wait(BARRIER_TIMEOUT)
            try:
                with (
                    open_ledger(database_url) as ledger,
                    open_read_models(ledger, run_projector=False),
                ):
                    outcome = "ok"
            except Exception as error:  # reported to the test, which names it
                outcome = f"{type(error).__name__}: {error}"
            results.put((database_url, outcome))
    finally:
        faulthandler.cancel_dump_traceback_later()


def pay_or_spend(
    database_url: str,
    plan: tuple[str, str, str, int],
    role: str,
    barrier: ProcessBarrier,
    results: Queue[tuple[str, str]],
) -> None:
    """In its own process, with the other racing processes, as ``role`` says: ``"consume"``
    spends 1 USD of the customer's credit ``attempts`` times; ``"fail"`` or ``"settle"`` reports
    the purchase's payment failed or settled once, shortly after the start (so that it lands
    among the consumptions), sent again after ``concurrent_modification`` as a client would, up
    to ``CLIENT_RETRIES`` times. ``plan`` is (namespace, customer id, purchase id, attempts). Puts
    ``(role, "ok" or the error code)`` on ``results`` for each command; a payment command sent
    again n times reports its role as ``role#n``."""
    from creditledger.application.commands import (  # noqa: PLC0415
        ConsumeCredits,
        FailPayment,
        SettlePayment,
    )

    namespace, customer_id, purchase_id, attempts = plan
    faulthandler.dump_traceback_later(BARRIER_TIMEOUT / 2, repeat=True)
    try:
        with open_ledger(database_url) as ledger:
            barrier.wait(BARRIER_TIMEOUT)
            commands: list[Callable[[], object]]
            if role == "consume":
                spend = ConsumeCredits(
                    namespace=namespace, customer_id=customer_id, currency="USD", amount="1"
                )
                commands = [lambda: ledger.consume(spend)] * attempts
            elif role == "fail":
                failure = FailPayment(
                    namespace=namespace, purchase_id=UUID(purchase_id), reason="declined"
                )
                commands = [lambda: ledger.fail_payment(failure)]
            else:
                settlement = SettlePayment(namespace=namespace, purchase_id=UUID(purchase_id))
                commands = [lambda: ledger.settle(settlement)]
            if role != "consume":
                time.sleep(0.02)
            for run in commands:
                retries = 0
                while True:
                    try:
                        run()
                        outcome = "ok"
                    except LedgerError as error:
                        outcome = error.code
                    again = outcome == "concurrent_modification" and role != "consume"
                    if not again or retries == CLIENT_RETRIES:
                        break
                    retries += 1
                results.put((f"{role}#{retries}" if retries else role, outcome))
    finally:
        faulthandler.cancel_dump_traceback_later()
