"""A wake-up call from the projector to readers waiting for the views to catch up."""

from __future__ import annotations

import threading


class ProjectionSignal:
    """Counts committed batches; a reader sleeps until the count moves or a timeout passes."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        with self._condition:
            return self._generation

    def committed(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait_after(self, generation: int, timeout: float) -> None:
        """Sleep until a batch commits after ``generation`` was read, or ``timeout`` passes."""
        with self._condition:
            self._condition.wait_for(lambda: self._generation != generation, timeout)
