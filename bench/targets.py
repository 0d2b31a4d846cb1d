"""Issue 7's throughput targets, judged on the rows of one suite run (never as timed tests).

- PostgreSQL, 32 concurrent callers: creditledger's commands/s at least 4x the bare library's
  appends (1 event per save, so saves/s = events/s) at 32 threads, row 1 of the same run. The
  target was set when every command wrote one event; an initiate now also writes the grant to
  the customer's wallet (4 events per 3-command lifecycle), so events/s would flatter us by a
  third: commands are what callers ask for, and the detail shows events/s too;
- SQLite, the same at least 2x;
- one caller: creditledger's p50 command latency with group commit at most 1.2x the same
  command without batching (group commit off);
- growth: the lifecycle rate with 10^6 events stored at least 0.9x the rate with 10^3;
- issue 15: the pipelined relay at least 15,000 events/s, and the p99 lag from commit to
  consumer apply under the 32-caller write load under 250 ms (absolute figures).

issue 12's consumption targets (section 3b, 32 callers):

- PostgreSQL, one hot customer: at least 1,000 consumptions/s (absolute);
- spread over 1,000 customers: consumptions/s at least the lifecycle rate of row 3 at 32
  callers in the same run, counted in commands (a consumption is one command, a lifecycle three:
  the stricter reading of "the lifecycle rate"; lifecycles/s is in the detail);

and issue 14's ratio target: offline ``audit verify`` at least 2x the bare library's replay in
the same run (section 9; its absolute targets are in ``docs/benchmarks.md``), and its catch-up
targets (section 6): the projector's catch-up of every read model at least 50,000 events/s and
at least the bare library's replay rate in the same run, on SQLite and on PostgreSQL.

A target whose rows are missing (a section not run, a backend unreachable) is "not measured",
never met.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bench import keys
from bench.report import Row

CONCURRENT_CALLERS = 32
CONCURRENCY_FACTORS = {"postgres": 4.0, "sqlite": 2.0}
LATENCY_LIMIT = 1.2
GROWTH_FLOOR = 0.9
RELAY_FLOOR_EVENTS_PER_SECOND = 15_000.0
LAG_P99_LIMIT_MS = 250.0
AUDIT_VERIFY_FACTOR = 2.0
AUDIT_VERIFY_FLOOR_EVENTS_PER_SECOND = 50_000.0
AUDIT_EXPORT_FLOOR_EVENTS_PER_SECOND = 100_000.0
CATCHUP_FLOOR_EVENTS_PER_SECOND = 50_000.0
CATCHUP_VS_REPLAY_FACTOR = 1.0
HOT_CONSUMPTIONS_FLOOR = 1_000.0
SPREAD_CUSTOMERS = 1_000
BACKEND_NAMES = {"postgres": "PostgreSQL", "sqlite": "SQLite"}


@dataclass(frozen=True)
class TargetResult:
    """One target: what was measured against what was required, and whether it holds."""

    target: str
    backend: str
    measured: float | None
    required: float
    at_most: bool
    """True: the measured figure must not exceed ``required``; False: must reach it."""
    detail: str
    unit: str = "x"
    """What ``measured`` and ``required`` count: a ratio ("x") or an absolute figure."""

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        if self.at_most:
            return self.measured <= self.required
        return self.measured >= self.required

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: "not measured"}[self.met]

    @property
    def requirement(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.shown(self.required)}"

    def shown(self, value: float) -> str:
        return f"{value:.2f}x" if self.unit == "x" else f"{value:,.0f} {self.unit}"


def _find(rows: Sequence[Row], key: str, backend: str) -> Row | None:
    for row in rows:
        if row.key == key and row.backend == backend and row.measured is not None:
            return row
    return None


def _rate(value: float) -> str:
    return f"{value:,.0f} events/s"


def _commands(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} commands/s"


def concurrency_target(rows: Sequence[Row], backend: str) -> TargetResult:
    """creditledger at 32 callers against the bare library's appends at 32 threads (row 1)."""
    name = BACKEND_NAMES[backend]
    target = (
        f"{name}, {CONCURRENT_CALLERS} concurrent callers vs bare library appends "
        f"(1 event/save, {CONCURRENT_CALLERS} threads)"
    )
    required = CONCURRENCY_FACTORS[backend]
    ours = _find(rows, keys.lifecycles(CONCURRENT_CALLERS), backend)
    appends = _find(rows, keys.appends(1, CONCURRENT_CALLERS), backend)
    if ours is None or ours.measured is None or appends is None or appends.measured is None:
        return TargetResult(target, backend, None, required, False, "needs sections 1 and 3")
    commands = ours.measured.commands_per_second
    saves = appends.measured.commands_per_second
    if commands is None or saves is None:
        return TargetResult(target, backend, None, required, False, "rows without commands")
    measured = commands / saves
    events, appended = ours.measured.events_per_second, appends.measured.events_per_second
    detail = (
        f"{_commands(commands)} ({_rate(events)}) vs {_commands(saves)} ({_rate(appended)}); "
        f"events/s ratio {events / appended:.2f}x"
    )
    if ours.baseline is not None and ours.ratio is not None:
        detail += (
            f"; row-3 baseline (bare library lifecycles, {CONCURRENT_CALLERS} callers): "
            f"{_commands(ours.baseline.commands_per_second)}, {ours.ratio:.2f}x"
        )
    return TargetResult(target, backend, measured, required, False, detail)


def latency_target(rows: Sequence[Row], backend: str) -> TargetResult:
    """One caller's p50 command latency, group commit on against off."""
    target = f"{BACKEND_NAMES[backend]}, 1 caller: p50 latency, group commit on / off"
    row = _find(rows, keys.group_commit(1), backend)
    on = None if row is None or row.measured is None else row.measured.p50_ms
    off = None if row is None or row.baseline is None else row.baseline.p50_ms
    if row is None or row.measured is None or row.baseline is None or not on or not off:
        return TargetResult(target, backend, None, LATENCY_LIMIT, True, "needs section 3")
    detail = (
        f"p50 {on:.2f} vs {off:.2f} ms; {_commands(row.measured.commands_per_second)} vs "
        f"{_commands(row.baseline.commands_per_second)}"
    )
    return TargetResult(target, backend, on / off, LATENCY_LIMIT, True, detail)


def growth_target(rows: Sequence[Row], backend: str) -> TargetResult:
    """The lifecycle rate on the big store against the small one (row 7)."""
    target = f"{BACKEND_NAMES[backend]}, growth: lifecycle rate on a big store / a small one"
    row = _find(rows, keys.GROWTH, backend)
    if row is None or row.ratio is None or row.measured is None or row.baseline is None:
        return TargetResult(target, backend, None, GROWTH_FLOOR, False, "needs section 7")
    # The labels name the stores' sizes: 10^6 and 10^3 events unless --growth-events said so.
    detail = (
        f"{_commands(row.measured.commands_per_second)} ({row.measured.label}) vs "
        f"{_commands(row.baseline.commands_per_second)} ({row.baseline.label})"
    )
    return TargetResult(target, backend, row.ratio, GROWTH_FLOOR, False, detail)


def relay_target(rows: Sequence[Row], backend: str) -> TargetResult:
    """Issue 15: the pipelined relay's events/s, an absolute floor."""
    target = f"{BACKEND_NAMES[backend]}, relay to JetStream, pipelined"
    row = _find(rows, keys.RELAY_PIPELINED, backend)
    floor = RELAY_FLOOR_EVENTS_PER_SECOND
    if row is None or row.measured is None:
        return TargetResult(target, backend, None, floor, False, "needs section 8", "events/s")
    rate = row.measured.events_per_second
    detail = "" if row.baseline is None else f"raw log read {_rate(row.baseline.events_per_second)}"
    return TargetResult(target, backend, rate, floor, False, detail, "events/s")


def lag_target(rows: Sequence[Row]) -> TargetResult:
    """Issue 15: p99 lag from commit to consumer apply under the 32-caller write load."""
    target = f"PostgreSQL, p99 lag commit -> consumer apply, {CONCURRENT_CALLERS} callers"
    row = _find(rows, keys.RELAY_LAG, "postgres")
    p99 = None if row is None or row.measured is None else row.measured.p99_ms
    if row is None or row.measured is None or p99 is None:
        return TargetResult(
            target, "postgres", None, LAG_P99_LIMIT_MS, True, "needs section 8", "ms"
        )
    detail = f"p50 {row.measured.p50_ms or 0:.1f} ms"
    if row.baseline is not None:
        detail += f"; write load {_rate(row.baseline.events_per_second)}"
    return TargetResult(target, "postgres", p99, LAG_P99_LIMIT_MS, True, detail, "ms")


def hot_consumption_target(rows: Sequence[Row]) -> TargetResult:
    """Issue 12: one customer's consumptions/s with 32 callers on PostgreSQL, an absolute floor."""
    target = f"PostgreSQL, consumptions, {CONCURRENT_CALLERS} callers, one hot customer"
    row = _find(rows, keys.consumptions(1), "postgres")
    floor = HOT_CONSUMPTIONS_FLOOR
    rate = None if row is None or row.measured is None else row.measured.commands_per_second
    if row is None or rate is None:
        return TargetResult(
            target, "postgres", None, floor, False, "needs section 3b", "consumptions/s"
        )
    detail = ""
    if row.baseline is not None and row.ratio is not None:
        detail = f"bare library {_commands(row.baseline.commands_per_second)}, {row.ratio:.2f}x"
    return TargetResult(target, "postgres", rate, floor, False, detail, "consumptions/s")


def spread_consumption_target(rows: Sequence[Row], backend: str) -> TargetResult:
    """Issue 12: consumptions over 1,000 customers against the 32-caller lifecycles' commands."""
    target = (
        f"{BACKEND_NAMES[backend]}, consumptions over {SPREAD_CUSTOMERS:,} customers vs "
        f"lifecycle commands, {CONCURRENT_CALLERS} callers"
    )
    spread = _find(rows, keys.consumptions(SPREAD_CUSTOMERS), backend)
    lifecycles = _find(rows, keys.lifecycles(CONCURRENT_CALLERS), backend)
    consumed = None if spread is None or spread.measured is None else spread.measured
    cycled = None if lifecycles is None or lifecycles.measured is None else lifecycles.measured
    if consumed is None or cycled is None:
        return TargetResult(target, backend, None, 1.0, False, "needs sections 3 and 3b")
    ours, theirs = consumed.commands_per_second, cycled.commands_per_second
    if ours is None or theirs is None:
        return TargetResult(target, backend, None, 1.0, False, "rows without commands")
    detail = (
        f"{ours:,.0f} consumptions/s vs {_commands(theirs)} "
        f"({cycled.operations_per_second:,.0f} lifecycles/s)"
    )
    return TargetResult(target, backend, ours / theirs, 1.0, False, detail)


def audit_verify_target(rows: Sequence[Row]) -> TargetResult:
    """Offline verify against the library's replay of the same log (section 9, SQLite)."""
    target = "SQLite, offline audit verify vs library replay"
    row = _find(rows, keys.AUDIT_VERIFY, "sqlite")
    if row is None or row.ratio is None or row.measured is None or row.baseline is None:
        return TargetResult(target, "sqlite", None, AUDIT_VERIFY_FACTOR, False, "needs section 9")
    detail = (
        f"{_rate(row.measured.events_per_second)} vs {_rate(row.baseline.events_per_second)}; "
        f"{row.note}"
    )
    return TargetResult(target, "sqlite", row.ratio, AUDIT_VERIFY_FACTOR, False, detail)


def audit_rate_target(rows: Sequence[Row], key: str) -> TargetResult:
    """Issue 14: offline verify's and export's events/s, absolute floors (section 9, SQLite)."""
    job = "verify" if key == keys.AUDIT_VERIFY else "export"
    target = f"SQLite, offline audit {job}"
    floor = (
        AUDIT_VERIFY_FLOOR_EVENTS_PER_SECOND
        if key == keys.AUDIT_VERIFY
        else AUDIT_EXPORT_FLOOR_EVENTS_PER_SECOND
    )
    row = _find(rows, key, "sqlite")
    if row is None or row.measured is None:
        return TargetResult(target, "sqlite", None, floor, False, "needs section 9", "events/s")
    return TargetResult(
        target, "sqlite", row.measured.events_per_second, floor, False, row.note, "events/s"
    )


def catchup_target(rows: Sequence[Row], backend: str) -> TargetResult:
    """Projection catch-up of every read model, absolute (section 6)."""
    target = f"{BACKEND_NAMES[backend]}, projection catch-up"
    row = _find(rows, keys.CATCHUP, backend)
    if row is None or row.measured is None:
        return TargetResult(
            target,
            backend,
            None,
            CATCHUP_FLOOR_EVENTS_PER_SECOND,
            False,
            "needs section 6",
            "events/s",
        )
    rate = row.measured.events_per_second
    detail = f"{_rate(rate)}; {row.note}" if row.note else _rate(rate)
    return TargetResult(
        target, backend, rate, CATCHUP_FLOOR_EVENTS_PER_SECOND, False, detail, "events/s"
    )


def catchup_replay_target(rows: Sequence[Row], backend: str) -> TargetResult:
    """Projection catch-up against the library's replay of the same log (section 6)."""
    target = f"{BACKEND_NAMES[backend]}, projection catch-up vs library replay"
    row = _find(rows, keys.CATCHUP, backend)
    if row is None or row.ratio is None or row.measured is None or row.baseline is None:
        return TargetResult(
            target, backend, None, CATCHUP_VS_REPLAY_FACTOR, False, "needs section 6"
        )
    detail = f"{_rate(row.measured.events_per_second)} vs {_rate(row.baseline.events_per_second)}"
    if row.note:
        detail += f"; {row.note}"
    return TargetResult(target, backend, row.ratio, CATCHUP_VS_REPLAY_FACTOR, False, detail)


def evaluate(rows: Sequence[Row]) -> list[TargetResult]:
    """Every target, in the issue's order, from the rows of one run."""
    return [
        concurrency_target(rows, "postgres"),
        concurrency_target(rows, "sqlite"),
        latency_target(rows, "sqlite"),
        latency_target(rows, "postgres"),
        growth_target(rows, "sqlite"),
        growth_target(rows, "postgres"),
        relay_target(rows, "sqlite"),
        relay_target(rows, "postgres"),
        lag_target(rows),
        hot_consumption_target(rows),
        spread_consumption_target(rows, "sqlite"),
        spread_consumption_target(rows, "postgres"),
        audit_verify_target(rows),
        audit_rate_target(rows, keys.AUDIT_VERIFY),
        audit_rate_target(rows, keys.AUDIT_EXPORT),
        catchup_target(rows, "sqlite"),
        catchup_target(rows, "postgres"),
        catchup_replay_target(rows, "sqlite"),
        catchup_replay_target(rows, "postgres"),
    ]


def render_targets(results: Sequence[TargetResult], out: Console) -> None:
    table = Table(title="targets (issues 7, 12, 14 and 15), from this run", box=box.SIMPLE_HEAD)
    table.add_column("target")
    table.add_column("measured", justify="right")
    table.add_column("required", justify="right")
    table.add_column("verdict", style="bold")
    table.add_column("figures")
    for result in results:
        table.add_row(
            result.target,
            "-" if result.measured is None else result.shown(result.measured),
            result.requirement,
            result.verdict,
            result.detail,
        )
    out.print(table)


def targets_json(results: Sequence[TargetResult]) -> list[dict[str, Any]]:
    return [
        {
            "target": result.target,
            "backend": result.backend,
            "measured": None if result.measured is None else round(result.measured, 4),
            "required": result.requirement,
            "verdict": result.verdict,
            "detail": result.detail,
        }
        for result in results
    ]
