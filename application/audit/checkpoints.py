"""Checking a chain against recorded checkpoints, as the chain passes their positions.

A checkpoint holds the whole log's chain hash at a position. A chain that covers the position
must have an event exactly there (checkpoints are only ever taken at an event) with exactly that
hash; anything deleted, inserted, reordered or changed at or before the position changes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from creditledger.application.audit.findings import fail
from creditledger.application.audit.records import Checkpoint


@dataclass(frozen=True)
class UncheckedCheckpoint:
    checkpoint: Checkpoint
    reason: str


class CheckpointChecker:
    """Follows a chain position by position and compares it with every checkpoint it covers."""

    def __init__(self, checkpoints: Iterable[Checkpoint]) -> None:
        # One check per distinct (position, hash); two different hashes claimed for one position
        # stay two checkpoints, so the chain cannot match both.
        unique = {(c.position, c.chain_hash): c for c in checkpoints}
        self._pending = sorted(unique.values(), key=lambda c: c.position)
        self.checked: list[Checkpoint] = []
        self.unchecked: list[UncheckedCheckpoint] = []

    @property
    def next_position(self) -> int | None:
        """The position of the next checkpoint to reach (fast path: nothing to do before it)."""
        return self._pending[0].position if self._pending else None

    def skip_before(self, position: int, reason: str) -> None:
        """Checkpoints before ``position`` cannot be checked by this chain: say why."""
        while self._pending and self._pending[0].position < position:
            self.unchecked.append(UncheckedCheckpoint(self._pending.pop(0), reason))

    def skip_all(self, reason: str) -> None:
        self.unchecked += [UncheckedCheckpoint(c, reason) for c in self._pending]
        self._pending = []

    def at(self, position: int, chain_hash: str) -> None:
        """The chain's hash after the event at ``position``."""
        while self._pending and self._pending[0].position <= position:
            checkpoint = self._pending.pop(0)
            if checkpoint.position < position:
                raise fail(
                    "checkpoint_event_missing",
                    f"the checkpoint at position {checkpoint.position} names an event that is not "
                    f"in the log (the chain goes on at position {position})",
                    checkpoint.position,
                )
            if checkpoint.chain_hash != chain_hash:
                raise fail(
                    "checkpoint_mismatch",
                    f"the chain hash at checkpoint position {checkpoint.position} is "
                    f"{chain_hash}, but the checkpoint recorded {checkpoint.chain_hash}: an event "
                    "at or before this position was changed, deleted, inserted or reordered",
                    checkpoint.position,
                )
            self.checked.append(checkpoint)

    def end(self, last_position: int) -> None:
        """The chain is complete up to ``last_position``; nothing there may be left unmatched."""
        if self._pending and self._pending[0].position <= last_position:
            checkpoint = self._pending[0]
            raise fail(
                "checkpoint_event_missing",
                f"the checkpoint at position {checkpoint.position} names an event that is not in "
                f"the log, which is complete up to position {last_position}",
                checkpoint.position,
            )
        self.skip_all(f"beyond the export's last position {last_position}")
