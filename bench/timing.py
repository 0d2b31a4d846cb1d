"""Timing one measured run, with any number of concurrent callers, and summarizing several runs.

Only the measured work sits between the two ``time.perf_counter`` readings: stores are opened,
warmed up and filled before, checked and closed after.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], percent: int) -> float:
    """The ``percent``-th percentile of at least two values (inclusive method, interpolated)."""
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


@dataclass(frozen=True)
class Timing:
    """One measured run: how many operations, commands and events, in how many seconds.

    An operation is the row's unit (a lifecycle, a save, a purchase replayed); a command is one
    request a caller made (a lifecycle is 3: initiate, authorize, settle); events are what the
    store holds afterwards for them. They differ: creditledger's initiate writes the purchase's
    event and the grant in the customer's wallet, so its lifecycle is 3 commands and 4 events
    where the bare library's is 3 and 3. ``commands`` is None where the run makes none (replay,
    catch-up, the raw driver's inserts).

    ``latencies`` holds the seconds each command took, where the run recorded them (the
    creditledger side of the lifecycle rows, the HTTP clients): the source of p50 and p99.
    """

    operations: int
    events: int
    seconds: float
    latencies: tuple[float, ...] = field(default=(), repr=False)
    commands: int | None = None

    @property
    def commands_per_second(self) -> float | None:
        return None if self.commands is None else self.commands / self.seconds

    @property
    def operations_per_second(self) -> float:
        return self.operations / self.seconds

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds

    def latency_ms(self, percent: int) -> float | None:
        """A percentile of the recorded command latencies, in milliseconds (None: not recorded)."""
        if len(self.latencies) < 2:
            return None
        return percentile(self.latencies, percent) * 1000


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
    def commands_per_second(self) -> float | None:
        """The median of the runs' commands/s (None if a run made no commands)."""
        rates = [run.commands_per_second for run in self.runs]
        known = [rate for rate in rates if rate is not None]
        if not known or len(known) != len(rates):
            return None
        return statistics.median(known)

    @property
    def spread(self) -> float:
        """(fastest - slowest) / median of the runs' event rates: how noisy the runs were."""
        rates = [run.events_per_second for run in self.runs]
        return (max(rates) - min(rates)) / statistics.median(rates)

    def latency_ms(self, percent: int) -> float | None:
        """The median over the runs of each run's latency percentile (None: not recorded)."""
        per_run = [run.latency_ms(percent) for run in self.runs]
        known = [value for value in per_run if value is not None]
        if not known or len(known) != len(per_run):
            return None
        return statistics.median(known)

    @property
    def p50_ms(self) -> float | None:
        return self.latency_ms(50)

    @property
    def p99_ms(self) -> float | None:
        return self.latency_ms(99)


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
