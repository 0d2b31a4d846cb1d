"""Rows of results: each measurement next to its baseline, as a rich table and as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bench.timing import Rate, Timing

WIDTH_WHEN_PIPED = 150


@dataclass(frozen=True)
class Row:
    """One line of the report: what was measured, on which backend, against which baseline.

    ``ratio`` is measured/baseline of the median event rates: above 1 the measured side is
    faster. A row without a measurement says why in ``note`` (a backend that was unreachable,
    a row not built yet).
    """

    section: str
    title: str
    backend: str
    size: str
    measured: Rate | None
    baseline: Rate | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.measured is None or self.baseline is None:
            return None
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
    table.add_column("events/s", justify="right")
    table.add_column("base ops/s", justify="right")
    table.add_column("base events/s", justify="right")
    table.add_column("ratio", justify="right", style="bold")
    table.add_column("spread", justify="right")
    legend: dict[str, str] = {}
    for row in rows:
        measured, baseline = row.measured, row.baseline
        if measured is not None:
            against = f" vs {baseline.label}" if baseline is not None else " (no baseline)"
            legend.setdefault(f"{row.section} {row.title}", f"{measured.label}{against}")
        spreads = _spread(measured)
        if baseline is not None:
            spreads = f"{spreads} / {_spread(baseline)}"
        table.add_row(
            row.section,
            f"{row.title} ({row.note})" if row.note else row.title,
            row.backend,
            row.size,
            _number(measured.operations_per_second if measured else None),
            _number(measured.events_per_second if measured else None),
            _number(baseline.operations_per_second if baseline else None),
            _number(baseline.events_per_second if baseline else None),
            _ratio(row.ratio),
            spreads,
        )
    out.print(table)
    for name, comparison in legend.items():
        out.print(f"  {name}: {comparison}")
    out.print(
        "  ratio = measured events/s / baseline events/s, medians of the runs (above 1: faster "
        "than the baseline); spread = (fastest - slowest) / median, measured / baseline runs."
    )


def _timing_json(timing: Timing) -> dict[str, Any]:
    return {
        "operations": timing.operations,
        "events": timing.events,
        "seconds": round(timing.seconds, 6),
        "events_per_second": round(timing.events_per_second, 1),
    }


def _rate_json(rate: Rate | None) -> dict[str, Any] | None:
    if rate is None:
        return None
    return {
        "label": rate.label,
        "operation": rate.operation,
        "median_operations_per_second": round(rate.operations_per_second, 1),
        "median_events_per_second": round(rate.events_per_second, 1),
        "spread": round(rate.spread, 4),
        "runs": [_timing_json(run) for run in rate.runs],
    }


def as_json(
    title: str, facts: dict[str, str], parameters: dict[str, Any], rows: list[Row]
) -> dict[str, Any]:
    return {
        "title": title,
        "machine": facts,
        "parameters": parameters,
        "rows": [
            {
                "section": row.section,
                "title": row.title,
                "backend": row.backend,
                "size": row.size,
                "measured": _rate_json(row.measured),
                "baseline": _rate_json(row.baseline),
                "ratio": None if row.ratio is None else round(row.ratio, 4),
                "note": row.note,
            }
            for row in rows
        ],
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
