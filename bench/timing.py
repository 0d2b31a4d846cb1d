"""Timing one measured run, with any number of concurrent callers, and summarizing several runs.

Only the measured work sits between the two ``time.perf_counter`` readings: stores are opened,
warmed up and filled before, checked and closed after.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """One measured run: how many operations and events, in how many seconds."""

    operations: int
    events: int
    seconds: float

    @property
    def operations_per_second(self) -> float:
        return self.operations / self.seconds

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds


@dataclass(frozen=True)
class Rate:
    """The runs of one side of a row; the figure reported is their median."""

    label: str
    operation: str
    runs: tuple[Timing, ...]

    @property
    def events_per_second(self) -> float:
        return statistics.median(run.events_per_second for run in self.runs)

    @property
    def operations_per_second(self) -> float:
        return statistics.median(run.operations_per_second for run in self.runs)

    @property
    def spread(self) -> float:
        """(fastest - slowest) / median of the runs' event rates: how noisy the runs were."""
        rates = [run.events_per_second for run in self.runs]
        return (max(rates) - min(rates)) / statistics.median(rates)


def split(items: Sequence[int], callers: int) -> list[Sequence[int]]:
    """Deal items out to callers as evenly as possible, keeping each caller's share in order."""
    return [items[caller::callers] for caller in range(callers)]


def time_callers(work: Callable[[int], object], items: Sequence[int], callers: int) -> float:
    """Seconds for ``callers`` threads to run ``work`` over their share of ``items``.

    One caller runs in this thread. Several wait at a barrier until all are ready; the clock
    starts just before their release (so thread start-up is never counted, and the release is
    never missed) and stops when the last one finishes. The first error any of them meets is
    raised here.
    """
    if callers == 1:
        started = time.perf_counter()
        for item in items:
            work(item)
        return time.perf_counter() - started

    barrier = threading.Barrier(callers + 1)
    errors: list[BaseException] = []

    def caller(share: Sequence[int]) -> None:
        barrier.wait()
        try:
            for item in share:
                work(item)
        except BaseException as error:  # reported to the main thread, which raises it
            errors.append(error)

    threads = [threading.Thread(target=caller, args=(share,)) for share in split(items, callers)]
    for thread in threads:
        thread.start()
    while barrier.n_waiting < callers:
        time.sleep(0.001)
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


@dataclass(frozen=True)
class LifecycleRun:
    """A timed batch of lifecycles and, if asked for, the timed replay of the store after it."""

    lifecycles: Timing
    replay: Timing | None = None


def check_event_count(recorded: int, expected: int, what: str) -> None:
    """A run counts only if the store holds exactly the events it claims to have written."""
    if recorded != expected:
        msg = f"{what}: the store holds {recorded} events, expected {expected}"
        raise RuntimeError(msg)
