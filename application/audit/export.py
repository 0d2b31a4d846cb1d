"""Writing an export: stored entries in, header, event lines and trailer out.

The caller reads the log in bulk up to a cut it fixed before starting (so writers running
meanwhile change nothing in the export) and feeds every entry from the log's beginning: entries
before ``from_position`` are not written but still advance the chain (so a partial export's hashes
equal the whole log's) and teach the transcriber each purchase's namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from creditledger.application.audit.canonical import canonical_bytes_of_parsed
from creditledger.application.audit.chain import GENESIS_HASH, next_hash
from creditledger.application.audit.records import (
    FORMAT_VERSION,
    ChainScope,
    Checkpoint,
    ExportHeader,
    ExportTrailer,
    event_line,
)
from creditledger.application.audit.transcribe import NamespaceLookup, StoredEntry, Transcriber


@dataclass(frozen=True)
class ExportRequest:
    """What to export, and the facts about the export that go into its header."""

    last_position: int
    """The cut, fixed before reading: the store's last position when the export started."""
    store: str
    creditledger_version: str
    exported_at: datetime
    namespace: str | None = None
    from_position: int = 1
    checkpoints: tuple[Checkpoint, ...] = ()

    @property
    def chain(self) -> ChainScope:
        return ChainScope.LOG if self.namespace is None else ChainScope.NAMESPACE


@dataclass(frozen=True)
class ExportResult:
    header: ExportHeader
    trailer: ExportTrailer


class LogExporter:
    """Streams the log into export lines; ``write`` receives each line with its newline."""

    def __init__(
        self,
        request: ExportRequest,
        write: Callable[[str], object],
        lookup: NamespaceLookup | None = None,
    ) -> None:
        """``lookup``: see ``Transcriber`` (with it, memory does not grow with the log)."""
        if request.from_position < 1:
            msg = "from_position must be at least 1"
            raise ValueError(msg)
        self._request = request
        self._write = write
        self._transcriber = Transcriber(lookup)
        self._hash = GENESIS_HASH
        self._start_position = 0
        self._header: ExportHeader | None = None
        self._count = 0
        self._last: int | None = None

    def add(self, entry: StoredEntry) -> None:
        """The next stored entry of the log, at or below the cut, in position order."""
        request = self._request
        if entry.position > request.last_position:
            msg = f"position {entry.position} is beyond the export's cut {request.last_position}"
            raise ValueError(msg)
        event = self._transcriber.event_object(entry)
        if entry.position < request.from_position:
            if request.chain is ChainScope.LOG:
                self._hash = next_hash(self._hash, canonical_bytes_of_parsed(event))
                self._start_position = entry.position
            return
        if request.namespace is not None and event["namespace"] != request.namespace:
            return
        self.add_canonical(entry.position, canonical_bytes_of_parsed(event))

    def add_canonical(self, position: int, canonical: bytes) -> None:
        """The next event to write, already transcribed, kept (in the export's namespace) and
        made canonical by ``canonical_events`` (in another process, say): chained and written.
        Only for positions at or after ``from_position``, in position order."""
        if self._header is None:
            self._header = self._write_header(first_position=position)
        self._hash = next_hash(self._hash, canonical)
        self._write(event_line(canonical.decode("utf-8"), self._hash) + "\n")
        self._count += 1
        self._last = position

    def finish(self) -> ExportResult:
        header = self._header or self._write_header(first_position=None)
        trailer = ExportTrailer(
            event_count=self._count, last_event_position=self._last, final_hash=self._hash
        )
        self._write(trailer.line() + "\n")
        return ExportResult(header, trailer)

    def _write_header(self, first_position: int | None) -> ExportHeader:
        request = self._request
        header = ExportHeader(
            format_version=FORMAT_VERSION,
            creditledger_version=request.creditledger_version,
            store=request.store,
            exported_at=request.exported_at,
            namespace=request.namespace,
            from_position=request.from_position,
            first_position=first_position,
            last_position=request.last_position,
            chain=request.chain,
            chain_start_position=self._start_position,
            chain_start_hash=self._hash,
            checkpoints=request.checkpoints,
        )
        self._write(header.line() + "\n")
        return header


def canonical_events(
    entries: Iterable[StoredEntry], transcriber: Transcriber, namespace: str | None
) -> Iterator[tuple[int, bytes]]:
    """(position, canonical bytes) of each entry an export of ``namespace`` (None: all) writes:
    what ``LogExporter.add`` hands to ``add_canonical``, for a part of the log transcribed apart.

    ``transcriber`` must be able to look up the namespaces of purchases initiated before the
    first entry (``Transcriber(lookup)``), as the exporter's own does."""
    for entry in entries:
        event = transcriber.event_object(entry)
        if namespace is None or event["namespace"] == namespace:
            yield entry.position, canonical_bytes_of_parsed(event)
