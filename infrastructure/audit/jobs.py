"""The auditor's jobs on a real store and real files: export, checkpoint, verify.

Each job reports its progress through ``on_progress(done, total)`` (positions or lines), so the
CLI can draw a progress bar and tests can act between batches.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

from creditledger.application.audit.against_live import (
    LiveComparison,
    compare_with_live,
    compare_with_sources,
)
from creditledger.application.audit.checkpoints import CheckpointChecker
from creditledger.application.audit.closed import ClosedPurchases
from creditledger.application.audit.export import ExportRequest, ExportResult, LogExporter
from creditledger.application.audit.findings import Finding, VerificationFailedError
from creditledger.application.audit.halves import WalletHalfResult, joined, wallet_half_result
from creditledger.application.audit.pairing import Half
from creditledger.application.audit.records import Checkpoint
from creditledger.application.audit.transcribe import LogChain
from creditledger.application.audit.verify import ChainCheck, ExportVerifier, VerificationReport
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.audit.checkpoints import checkpoint_store
from creditledger.infrastructure.audit.export_apart import second_part_apart
from creditledger.infrastructure.audit.files import STDIO, export_file, export_lines
from creditledger.infrastructure.audit.log import (
    DEFAULT_BATCH_SIZE,
    last_position,
    namespace_lookup,
    read_log,
)
from creditledger.infrastructure.audit.spill import SqliteClosedPurchases

__all__ = [
    "SPLIT_FROM_BYTES",
    "LiveComparison",
    "compare_with_live",
    "compare_with_sources",
    "creditledger_version",
    "describe_store",
    "export_log",
    "export_to_file",
    "take_checkpoint",
    "verify_file",
]
"""The comparison with live sources lives in ``creditledger.application.audit.against_live``;
it is named here too, beside the jobs that make the reports it compares."""

Progress = Callable[[int, int], object]
"""Called with (done, total) after each batch."""


def _no_progress(done: int, total: int) -> None:
    del done, total


def creditledger_version() -> str:
    try:
        return version("creditledger")
    except PackageNotFoundError:  # pragma: no cover - the project is always installed
        return "unknown"


def describe_store(database_url: str) -> str:
    """The store's URL without its password, for export headers."""
    parts = urlsplit(database_url)
    if parts.password is None:
        return database_url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


def export_log(
    ledger: CreditLedger,
    out: TextIO,
    *,
    store: str,
    exported_at: datetime,
    namespace: str | None = None,
    from_position: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Progress = _no_progress,
) -> ExportResult:
    """Write the log up to the store's current last position (the cut) to ``out``."""
    # Checkpoints first, then the cut: every checkpoint read was taken at or below the cut.
    checkpoints = tuple(checkpoint_store(ledger).all())
    cut = last_position(ledger)
    exporter = LogExporter(
        ExportRequest(
            last_position=cut,
            store=store,
            creditledger_version=creditledger_version(),
            exported_at=exported_at,
            namespace=namespace,
            from_position=from_position,
            checkpoints=checkpoints,
        ),
        out.write,
        namespace_lookup(ledger),
    )
    with second_part_apart(
        ledger, cut=cut, from_position=from_position, namespace=namespace, batch_size=batch_size
    ) as second:
        up_to = cut if second is None else second.after
        _export_entries(ledger, exporter, 0, up_to, cut, batch_size, on_progress)
        lines = None if second is None else second.lines()
        if lines is None:
            # No second process, or it failed: this process exports the rest.
            _export_entries(ledger, exporter, up_to, cut, cut, batch_size, on_progress)
        else:
            for count, (position, canonical) in enumerate(lines, start=1):
                exporter.add_canonical(position, canonical)
                if count % batch_size == 0:
                    on_progress(position, cut)
    on_progress(cut, cut)
    return exporter.finish()


def _export_entries(  # noqa: PLR0917  # one loop of export_log, its state passed in
    ledger: CreditLedger,
    exporter: LogExporter,
    after: int,
    up_to: int,
    cut: int,
    batch_size: int,
    on_progress: Progress,
) -> None:
    """Export the positions after ``after`` up to ``up_to`` in this process."""
    for batch in read_log(ledger, after=after, up_to=up_to, batch_size=batch_size):
        for entry in batch:
            exporter.add(entry)
        on_progress(batch[-1].position, cut)


def export_to_file(
    ledger: CreditLedger,
    path: str,
    *,
    store: str,
    exported_at: datetime,
    namespace: str | None = None,
    from_position: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Progress = _no_progress,
) -> ExportResult:
    """``export_log`` into a file (``-``: standard output) that appears only once complete."""
    with export_file(path) as out:
        return export_log(
            ledger,
            out,
            store=store,
            exported_at=exported_at,
            namespace=namespace,
            from_position=from_position,
            batch_size=batch_size,
            on_progress=on_progress,
        )


def take_checkpoint(
    ledger: CreditLedger,
    recorded_at: datetime,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Progress = _no_progress,
) -> Checkpoint | None:
    """Record the chain hash of the whole log at its last position; None for an empty log.

    The chain is computed from the beginning, and every checkpoint already recorded is checked
    on the way: a checkpoint is never recorded on top of a log that no longer matches the last
    one (``VerificationFailedError`` names the position).
    """
    store = checkpoint_store(ledger)
    # Checkpoints first, then the cut: every checkpoint read was taken at or below the cut.
    checker = CheckpointChecker(store.all())
    cut = last_position(ledger)
    chain = LogChain(namespace_lookup(ledger))
    for batch in read_log(ledger, up_to=cut, batch_size=batch_size):
        for entry in batch:
            chain.add(entry)
            next_checkpoint = checker.next_position
            if next_checkpoint is not None and entry.position >= next_checkpoint:
                checker.at(entry.position, chain.chain_hash)
        on_progress(batch[-1].position, cut)
    checker.end(cut)
    if checker.unchecked:
        beyond = checker.unchecked[0].checkpoint
        raise VerificationFailedError(
            Finding(
                "checkpoint_beyond_log",
                f"a checkpoint was recorded at position {beyond.position}, beyond the log's "
                f"last position {cut}: events were removed from the store",
                beyond.position,
            )
        )
    if chain.event_count == 0:
        return None
    return store.record(
        Checkpoint(position=chain.position, chain_hash=chain.chain_hash, recorded_at=recorded_at)
    )


UNEXPECTED_BY_A_TRUSTING_PASS = (TypeError, ValueError, KeyError, AttributeError, ArithmeticError)
"""What a pass that trusts part of the checks may raise on input those checks refuse (a float
amount the domain cannot round raises ``decimal.InvalidOperation``): the file is then verified in
order, which judges it."""

SPLIT_FROM_BYTES = 4 * 1024 * 1024
"""Files at least this large are verified in two processes by default (see ``verify_file``);
below it, starting a process costs more than it saves."""


def verify_file(
    path: str,
    *,
    checkpoints: Iterable[Checkpoint] = (),
    on_progress: Progress = _no_progress,
    progress_every: int = 10_000,
    closed: ClosedPurchases | None = None,
    split: bool | None = None,
) -> VerificationReport:
    """Verify an export file offline; stops reading at the first failure.

    Closed purchases go to ``closed``, by default a temporary file that lives as long as the
    report (``--against-live`` reads them back), so memory does not grow with the log.

    ``split`` (default: for files of ``SPLIT_FROM_BYTES`` or more, with the default ``closed``):
    the fast paths, in two processes. First in halves (``creditledger.application.audit.
    pairing``): a child process checks the JSON and the hash chain and replays the wallet events,
    this one replays the purchase events; their result is used only if both pass and agree
    (``creditledger.application.audit.halves.joined``), and then it is the one verification in
    order gives. If a half cannot stand for verification in order (a partial export, a version 1
    export, a payment failure whose grant only the other half knows), a child checks what
    ``ChainCheck`` checks while this one does the rest, trusting those (``ExportVerifier``'s
    ``chain_checked_apart``), used likewise only if both pass. Otherwise the file is verified
    again in order, in this process, which reports the same first failure as it always did. A
    failing export so costs about two verifications. Standard input is never split (it cannot be
    read twice).
    """
    if split is None:
        split = closed is None and path != STDIO and Path(path).stat().st_size >= SPLIT_FROM_BYTES
    if split and closed is not None:
        msg = "a split verification makes its own scratch store for each pass"
        raise ValueError(msg)
    doubted = False
    if split and path != STDIO:
        report, doubted = _verify_in_halves(path, checkpoints, on_progress, progress_every)
        if report is not None:
            return report
    if doubted:
        with _chain_checked_apart(path) as chain_passed:
            try:
                report = _verify_in_order(
                    path, checkpoints, on_progress, progress_every, None, chain_checked_apart=True
                )
            except UNEXPECTED_BY_A_TRUSTING_PASS:
                # Input the trusting half did not expect (the in-order pass judges it).
                pass
            else:
                if report.ok and chain_passed():
                    return report
    return _verify_in_order(path, checkpoints, on_progress, progress_every, closed)


def _verify_in_order(
    path: str,
    checkpoints: Iterable[Checkpoint],
    on_progress: Progress,
    progress_every: int,
    closed: ClosedPurchases | None,
    *,
    chain_checked_apart: bool = False,
) -> VerificationReport:
    verifier = ExportVerifier(
        checkpoints,
        closed=closed if closed is not None else SqliteClosedPurchases(),
        chain_checked_apart=chain_checked_apart,
    )
    with export_lines(path) as lines:
        for count, line in enumerate(lines, start=1):
            verifier.feed(line)
            if verifier.failed:
                break
            if count % progress_every == 0:
                _report_progress(verifier, on_progress)
    report = verifier.finish()
    _report_progress(verifier, on_progress)
    return report


def _verify_in_halves(
    path: str, checkpoints: Iterable[Checkpoint], on_progress: Progress, progress_every: int
) -> tuple[VerificationReport | None, bool]:
    """The purchase half here, the wallet half in a child: the report of verification in order,
    or None; and whether a half was in doubt (rather than failed)."""
    checkpoints = list(checkpoints)
    with _wallet_half_apart(path, checkpoints) as wallet_half:
        purchases = ExportVerifier(checkpoints, closed=SqliteClosedPurchases(), half=Half.PURCHASES)
        try:
            _feed_file(purchases, path, on_progress, progress_every)
            if purchases.failed or purchases.in_doubt is not None:
                return None, purchases.in_doubt is not None
            return joined(purchases, wallet_half()), False
        except UNEXPECTED_BY_A_TRUSTING_PASS:
            # Input the trusting half did not expect (the in-order pass judges it).
            return None, False


def _feed_file(
    verifier: ExportVerifier, path: str, on_progress: Progress, progress_every: int
) -> None:
    """Every line of the file, until a failure or a doubt."""
    with export_lines(path) as lines:
        for count, line in enumerate(lines, start=1):
            verifier.feed(line)
            if verifier.failed or verifier.in_doubt is not None:
                break
            if count % progress_every == 0:
                _report_progress(verifier, on_progress)
    _report_progress(verifier, on_progress)


@contextmanager
def _wallet_half_apart(
    path: str, checkpoints: list[Checkpoint]
) -> Iterator[Callable[[], WalletHalfResult]]:
    """The wallet half over the file in a child process (forked); yields a function that waits
    for its result. Leaving early stops the child."""
    if "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover - not Linux
        yield lambda: _wallet_half(path, checkpoints)
        return
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(
        target=_send_wallet_half, args=(path, checkpoints, sending), daemon=True
    )
    child.start()
    sending.close()

    def result() -> WalletHalfResult:
        try:
            received: WalletHalfResult = receiving.recv()
        except EOFError:  # the child died without a result (killed, out of memory)
            received = WalletHalfResult(passed=False, pairing_digest="", fold=None)
        child.join()
        return received

    try:
        yield result
    finally:
        if child.is_alive():
            child.terminate()
            child.join()
        receiving.close()


def _send_wallet_half(path: str, checkpoints: list[Checkpoint], sending: Connection) -> None:
    sending.send(_wallet_half(path, checkpoints))
    sending.close()


def _wallet_half(path: str, checkpoints: list[Checkpoint]) -> WalletHalfResult:
    wallets = ExportVerifier(checkpoints, half=Half.WALLETS)
    try:
        _feed_file(wallets, path, _no_progress, 10**9)
        return wallet_half_result(wallets)
    except UNEXPECTED_BY_A_TRUSTING_PASS:
        return WalletHalfResult(passed=False, pairing_digest="", fold=None)


@contextmanager
def _chain_checked_apart(path: str) -> Iterator[Callable[[], bool]]:
    """``ChainCheck`` over the file in a child process (forked: nothing to import again); yields
    a function that waits for its verdict. Leaving early stops the child."""
    if "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover - not Linux
        yield lambda: _check_chain(path)
        return
    receiving, sending = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_send_chain_verdict, args=(path, sending), daemon=True
    )
    child.start()
    sending.close()

    def verdict() -> bool:
        try:
            passed = bool(receiving.recv())
        except EOFError:  # the child died without a verdict (killed, out of memory)
            passed = False
        child.join()
        return passed

    try:
        yield verdict
    finally:
        if child.is_alive():
            child.terminate()
            child.join()
        receiving.close()


def _send_chain_verdict(path: str, sending: Connection) -> None:
    sending.send(_check_chain(path))
    sending.close()


def _check_chain(path: str) -> bool:
    check = ChainCheck()
    with export_lines(path) as lines:
        for line in lines:
            check.feed(line)
            if not check.passed:
                break
    return check.passed


def _report_progress(verifier: ExportVerifier, on_progress: Progress) -> None:
    header = verifier.header
    if header is None:
        return
    total = header.last_position - header.from_position + 1
    done = (verifier.last_position or header.from_position - 1) - header.from_position + 1
    on_progress(max(done, 0), max(total, 0))
