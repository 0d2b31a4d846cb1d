"""Rows of results: each measurement next to its baseline, as a rich table and as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich import box
from rich.console import Console
from rich.table import Table

from bench.timing import Rate, Timing

WIDTH_WHEN_PIPED = 200


Compare = Literal["events/s", "commands/s", "p50 latency"]


@dataclass(frozen=True)
class Row:
    """One line of the report: what was measured, on which backend, against which baseline.

    ``ratio`` is measured/baseline of the median event rates (``compare`` "events/s": above 1
    the measured side is faster), of the median command rates (``compare`` "commands/s": where
    the two sides write different numbers of events for the same commands, as creditledger's
    initiate writes a wallet event the bare library has no counterpart for), or of the median
    p50 command latencies (``compare`` "p50 latency": below 1 the measured side is faster). A
    row without a measurement says why in ``note`` (a backend that was unreachable, a row not
    built yet). ``key`` names the row in the JSON, the same from one run to the next, so that
    results can be compared over time.
    """

    section: str
    title: str
    backend: str
    size: str
    measured: Rate | None
    baseline: Rate | None = None
    note: str = ""
    key: str = ""
    compare: Compare = "events/s"

    @property
    def ratio(self) -> float | None:
        if self.measured is None or self.baseline is None:
            return None
        if self.compare == "p50 latency":
            measured, baseline = self.measured.p50_ms, self.baseline.p50_ms
            if measured is None or baseline is None or baseline == 0:
                return None
            return measured / baseline
        if self.compare == "commands/s":
            ours, theirs = self.measured.commands_per_second, self.baseline.commands_per_second
            if ours is None or theirs is None:
                return None
            return ours / theirs
        return self.measured.events_per_second / self.baseline.events_per_second


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _spread(rate: Rate | None) -> str:
    return "-" if rate is None else f"{rate.spread:.0%}"


def _latency(rate: Rate | None) -> str:
    if rate is None or rate.p50_ms is None or rate.p99_ms is None:
        return "-"
    return f"{rate.p50_ms:,.1f} / {rate.p99_ms:,.1f}"


def _ratio_cell(row: Row) -> str:
    # Latency ratios read the other way round (below 1 is faster): marked so nobody misreads.
    text = _ratio(row.ratio)
    if row.ratio is None:
        return text
    # Which rate a ratio compares is marked unless it is events/s.
    return {"p50 latency": f"{text} lat", "commands/s": f"{text} cmd"}.get(row.compare, text)


def console() -> Console:
    """A console wide enough for the table, even when the output goes to a file or a pipe."""
    out = Console()
    return out if out.is_terminal else Console(width=WIDTH_WHEN_PIPED)


def render(title: str, facts: dict[str, str], rows: list[Row], out: Console) -> None:
    """Print the machine facts, one table line per row, and what each row compares."""
    out.print(f"[bold]{title}[/bold]")
    for key, value in facts.items():
        out.print(f"  {key}: {value}")
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right")
    table.add_column("row")
    table.add_column("backend")
    table.add_column("N", justify="right")
    table.add_column("ops/s", justify="right")
    table.add_column("cmd/s", justify="right")
    table.add_column("events/s", justify="right")
    table.add_column("base ops/s", justify="right")
    table.add_column("base cmd/s", justify="right")
    table.add_column("base events/s", justify="right")
    table.add_column("p50 / p99 ms", justify="right")
    table.add_column("base p50 / p99 ms", justify="right")
    table.add_column("ratio", justify="right", style="bold")
    table.add_column("spread", justify="right")
    legend: dict[str, str] = {}
    notes: list[str] = []
    for row in rows:
        measured, baseline = row.measured, row.baseline
        if measured is not None:
            against = f" vs {baseline.label}" if baseline is not None else " (no baseline)"
            legend.setdefault(f"{row.section} {row.title}", f"{measured.label}{against}")
            if row.note:
                notes.append(f"{row.section} {row.title}, {row.backend}: {row.note}")
        spreads = _spread(measured)
        if baseline is not None:
            spreads = f"{spreads} / {_spread(baseline)}"
        table.add_row(
            row.section,
            # A row without figures says why in the table; other notes follow it.
            f"{row.title} ({row.note})" if row.note and measured is None else row.title,
            row.backend,
            row.size,
            _number(measured.operations_per_second if measured else None),
            _number(measured.commands_per_second if measured else None),
            _number(measured.events_per_second if measured else None),
            _number(baseline.operations_per_second if baseline else None),
            _number(baseline.commands_per_second if baseline else None),
            _number(baseline.events_per_second if baseline else None),
            _latency(measured),
            _latency(baseline),
            _ratio_cell(row),
            spreads,
        )
    out.print(table)
    for name, comparison in legend.items():
        out.print(f"  {name}: {comparison}")
    for note in notes:
        out.print(f"  note, {note}")
    out.print(
        "  ratio = measured events/s / baseline events/s, medians of the runs (above 1: faster "
        "than the baseline); 'cmd' ratios the same of commands/s (where the sides write different "
        "events per command: creditledger's initiate also writes the grant to the customer's "
        "wallet, 4 events per 3-command lifecycle against the bare library's 3); 'lat' ratios = "
        "measured p50 latency / baseline p50 latency (below 1: faster). cmd/s = commands "
        "(caller requests) per second, '-' where a row makes none. p50 / p99 ms = per-command "
        "latency percentiles, median of the runs' "
        "(recorded on the creditledger and HTTP sides only). spread = (fastest - slowest) / "
        "median of the runs' events/s, measured / baseline."
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _milliseconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _timing_json(timing: Timing) -> dict[str, Any]:
    return {
        "operations": timing.operations,
        "events": timing.events,
        "seconds": round(timing.seconds, 6),
        "commands": timing.commands,
        "events_per_second": round(timing.events_per_second, 1),
        "commands_per_second": _rounded(timing.commands_per_second),
        "p50_ms": _milliseconds(timing.latency_ms(50)),
        "p99_ms": _milliseconds(timing.latency_ms(99)),
    }


def _rate_json(rate: Rate | None) -> dict[str, Any] | None:
    if rate is None:
        return None
    return {
        "label": rate.label,
        "operation": rate.operation,
        "median_operations_per_second": round(rate.operations_per_second, 1),
        "median_commands_per_second": _rounded(rate.commands_per_second),
        "median_events_per_second": round(rate.events_per_second, 1),
        "median_p50_ms": _milliseconds(rate.p50_ms),
        "median_p99_ms": _milliseconds(rate.p99_ms),
        "spread": round(rate.spread, 4),
        "runs": [_timing_json(run) for run in rate.runs],
    }


def as_json(
    title: str,
    facts: dict[str, str],
    parameters: dict[str, Any],
    rows: list[Row],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole report; ``extra`` adds top-level entries (the suite's targets)."""
    return {
        "title": title,
        "machine": facts,
        "parameters": parameters,
        **(extra or {}),
        "rows": [
            {
                "section": row.section,
                "key": row.key,
                "title": row.title,
                "backend": row.backend,
                "size": row.size,
                "measured": _rate_json(row.measured),
                "baseline": _rate_json(row.baseline),
                "compare": row.compare,
                "ratio": None if row.ratio is None else round(row.ratio, 4),
                "note": row.note,
            }
            for row in rows
        ],
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
