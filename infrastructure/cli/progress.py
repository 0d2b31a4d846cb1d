"""A progress bar with rate and ETA for long jobs, drawn on stderr only when a person watches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

ProgressCallback = Callable[[int, int], object]


class RateColumn(ProgressColumn):
    """Events per second, as the jobs count positions or events."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} ev/s" if speed else "- ev/s", style="progress.data.speed")


def _ignore(done: int, total: int) -> None:
    del done, total


@contextmanager
def progress_bar(description: str, *, quiet: bool) -> Iterator[ProgressCallback]:
    """A ``(done, total)`` callback drawing a bar on stderr; silent when quiet or not a terminal.

    Scripts (``--json``, pipes, CI logs) get clean output: the bar appears only on a terminal.
    """
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield _ignore
        return
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update
