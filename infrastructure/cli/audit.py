"""``creditledger audit ...``: export the log, verify an export offline, record checkpoints.

The export format is documented in ``docs/audit-export.md``. Verification reads nothing but the
export unless ``--against-live`` asks it to compare with the configured store's read models and
event store as well.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from creditledger.infrastructure.audit.files import STDIO
from creditledger.infrastructure.cli.invocation import (
    EXIT_CODES_HELP,
    ExitCode,
    ledger_for,
    print_json,
    state,
)
from creditledger.infrastructure.cli.output import field_table, json_wanted, print_table, table
from creditledger.infrastructure.cli.progress import progress_bar

if TYPE_CHECKING:
    from creditledger.application.audit.against_live import LiveLedger
    from creditledger.application.audit.records import Checkpoint
    from creditledger.application.audit.verify import VerificationReport
    from creditledger.infrastructure.audit.jobs import LiveComparison

# The auditor's machinery (the export, the verifier, the live comparison: ~0.05 s to import) is
# imported inside the commands below, not here: every other command of the CLI would pay for it.

audit_app = typer.Typer(
    help="Export the event log, verify an export offline (hash chain, checkpoints, full replay), "
    f"and record checkpoints. Format: docs/audit-export.md. {EXIT_CODES_HELP}",
    no_args_is_help=True,
)

Json = Annotated[
    bool,
    typer.Option(
        "--json", help="Print JSON on a terminal too (no progress bar); a pipe always gets JSON."
    ),
]
MAX_DIFFERENCES_SHOWN = 20


class LiveSource(StrEnum):
    """What ``--against-live`` compares the export with."""

    BOTH = "both"
    READ_MODELS = "read-models"
    EVENT_STORE = "event-store"


SOURCE_NAMES = {"read_models": "the read models", "event_store": "the event store"}


def _fail(message: str, code: ExitCode = ExitCode.VERIFY_FAILED) -> typer.Exit:
    sys.stderr.write(message.rstrip() + "\n")
    return typer.Exit(code)


def _checkpoint_option(values: list[str]) -> list[Checkpoint]:
    from creditledger.application.audit.chain import is_chain_hash  # noqa: PLC0415 - see the top
    from creditledger.application.audit.records import Checkpoint  # noqa: PLC0415

    checkpoints = []
    for value in values:
        position, _, chain_hash = value.partition(":")
        if not position.isdigit() or int(position) < 1 or not is_chain_hash(chain_hash):
            msg = f"a checkpoint is POSITION:HASH (64 lowercase hex characters), got {value!r}"
            raise typer.BadParameter(msg)
        checkpoints.append(Checkpoint(position=int(position), chain_hash=chain_hash))
    return checkpoints


@audit_app.command("export")
def export(
    ctx: typer.Context,
    out: Annotated[str, typer.Argument(help="File to write (JSON Lines), or - for stdout.")],
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", help="Only this namespace's purchases (whole histories)."
        ),
    ] = None,
    from_position: Annotated[
        int, typer.Option("--from-position", min=1, help="Only events at or after this position.")
    ] = 1,
    as_json: Json = False,
) -> None:
    """Export every event up to the store's last position now (a consistent cut)."""
    from creditledger.application.audit.transcribe import (  # noqa: PLC0415 - see the top
        UnreadableEventError,
    )
    from creditledger.infrastructure.audit.jobs import (  # noqa: PLC0415
        describe_store,
        export_to_file,
    )

    if as_json and out == STDIO:
        msg = "--json prints a summary on stdout: write the export to a file"
        raise typer.BadParameter(msg)
    store = describe_store(state(ctx).settings().database_url)
    quiet = as_json or out == STDIO
    with ledger_for(ctx) as ledger, progress_bar("export", quiet=quiet) as on_progress:
        try:
            result = export_to_file(
                ledger,
                out,
                store=store,
                exported_at=datetime.now(UTC),
                namespace=namespace,
                from_position=from_position,
                on_progress=on_progress,
            )
        except UnreadableEventError as error:
            raise _fail(f"export failed: {error}") from None
    header, trailer = result.header, result.trailer
    summary = {
        "path": out,
        "events": trailer.event_count,
        "namespace": header.namespace,
        "chain": header.chain.value,
        "from_position": header.from_position,
        "first_position": header.first_position,
        "last_position": header.last_position,
        "last_event_position": trailer.last_event_position,
        "final_hash": trailer.final_hash,
        "checkpoints_included": len(header.checkpoints),
    }
    if out == STDIO:
        return  # stdout carries the export itself
    if json_wanted(as_json):
        print_json(summary)
    else:
        print_table(_fields_table("Export", summary))


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    export_path: Annotated[
        str, typer.Argument(metavar="EXPORT", help="The export file, or - for stdin.")
    ],
    *,
    against_live: Annotated[
        bool,
        typer.Option(
            "--against-live",
            help="Also compare every purchase and balance with the configured store's read "
            "models and event store (see --live-source), and check the store's checkpoints.",
        ),
    ] = False,
    live_source: Annotated[
        LiveSource,
        typer.Option(
            "--live-source",
            help="With --against-live: compare with the read models (caught up to the export's "
            "cut first if behind), the event store, or both.",
        ),
    ] = LiveSource.BOTH,
    checkpoint: Annotated[
        list[str] | None,
        typer.Option(
            "--checkpoint",
            help="POSITION:HASH of a checkpoint you hold (repeatable); the export's own are "
            "checked too.",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Verify an export offline: chain, checkpoints, and a full replay of every purchase.

    Exit 0 when everything checks out; exit 6 naming the first position where the export (or,
    with --against-live, the live state) diverges.
    """
    as_json = json_wanted(as_json)
    checkpoints = _checkpoint_option(checkpoint or [])
    if export_path != STDIO and not Path(export_path).is_file():
        msg = f"no such export file: {export_path}"
        raise typer.BadParameter(msg)
    if not against_live:
        report = _verify(export_path, checkpoints, quiet=as_json)
        _finish_verify(report, None, as_json=as_json)
        return
    from creditledger.infrastructure.audit.checkpoints import (  # noqa: PLC0415 - see the top
        checkpoint_store,
    )
    from creditledger.infrastructure.audit.jobs import compare_with_sources  # noqa: PLC0415
    from creditledger.infrastructure.audit.live import StoreLiveLedger  # noqa: PLC0415
    from creditledger.infrastructure.audit.readmodels import (  # noqa: PLC0415
        ReadModelLiveLedger,
        ViewsBehindError,
    )
    from creditledger.infrastructure.audit.spill import ScratchFileError  # noqa: PLC0415
    from creditledger.infrastructure.bootstrap import open_read_models  # noqa: PLC0415

    with ledger_for(ctx) as ledger:
        checkpoints += checkpoint_store(ledger).all()
        report = _verify(export_path, checkpoints, quiet=as_json)
        if not report.ok:
            _finish_verify(report, [], as_json=as_json)
            return
        # The read models are only read here (and caught up to the cut if behind): no thread.
        with open_read_models(ledger, run_projector=False) as views:
            sources: dict[str, LiveLedger] = {}
            if live_source is not LiveSource.EVENT_STORE:
                sources["read_models"] = ReadModelLiveLedger(views)
            if live_source is not LiveSource.READ_MODELS:
                sources["event_store"] = StoreLiveLedger(ledger)
            try:
                comparisons = compare_with_sources(report, sources)
            except ViewsBehindError as error:
                raise _fail(f"verification failed: {error}", ExitCode.FAILED) from None
            except ScratchFileError as error:
                raise _fail(f"verify could not run: {error}", ExitCode.FAILED) from None
    _finish_verify(report, comparisons, as_json=as_json)


def _verify(path: str, checkpoints: list[Checkpoint], *, quiet: bool) -> VerificationReport:
    from creditledger.infrastructure.audit.jobs import verify_file  # noqa: PLC0415 - see the top
    from creditledger.infrastructure.audit.spill import ScratchFileError  # noqa: PLC0415

    try:
        with progress_bar("verify", quiet=quiet) as on_progress:
            return verify_file(path, checkpoints=checkpoints, on_progress=on_progress)
    except ScratchFileError as error:
        raise _fail(f"verify could not run: {error}", ExitCode.FAILED) from None


def _finish_verify(
    report: VerificationReport, comparisons: list[LiveComparison] | None, *, as_json: bool
) -> None:
    summary = report.summary()
    differences = [
        (comparison.source, item)
        for comparison in comparisons or []
        for item in comparison.differences
    ]
    if comparisons:
        first_source = comparisons[0]
        summary["live"] = {
            "purchases_compared": first_source.purchases,
            "balances_compared": (
                first_source.balances if first_source.balances_compared else None
            ),
            "difference_count": len(differences),
            "differences": [
                {"source": source, **item.as_dict()}
                for source, item in differences[:MAX_DIFFERENCES_SHOWN]
            ],
            "sources": {
                comparison.source: {
                    "difference_count": len(comparison.differences),
                    "first_difference": (
                        comparison.differences[0].as_dict() if comparison.differences else None
                    ),
                }
                for comparison in comparisons
            },
            "notes": sorted({note for comparison in comparisons for note in comparison.notes}),
        }
    failed = not report.ok or bool(differences)
    if as_json:
        summary["ok"] = not failed
        print_json(summary)
    else:
        _print_verify(report, comparisons or [])
    if report.failure is not None:
        raise _fail(f"verification failed {report.failure.describe()}")
    diverged = [comparison for comparison in comparisons or [] if comparison.differences]
    if diverged:
        # The first difference of each source that diverged, the earliest position first.
        lines = []
        for comparison in diverged:
            first = comparison.differences[0]
            where = f"at position {first.position}: " if first.position is not None else ""
            name = SOURCE_NAMES.get(comparison.source, "the live state")
            lines.append(
                f"verification failed {where}{first.kind} {first.key} {first.detail} in {name} "
                f"({len(comparison.differences)} difference(s) with {name})"
            )
        raise _fail("\n".join(lines))


@audit_app.command("checkpoint")
def checkpoint_command(ctx: typer.Context, as_json: Json = False) -> None:
    """Record the chain hash of the whole log at its last position, durably, in the store.

    The chain is recomputed from the beginning and checked against every earlier checkpoint
    first: a log that no longer matches them gets no new checkpoint (exit 6).
    """
    from creditledger.application.audit.findings import (  # noqa: PLC0415 - see the top
        VerificationFailedError,
    )
    from creditledger.application.audit.transcribe import UnreadableEventError  # noqa: PLC0415
    from creditledger.infrastructure.audit.checkpoints import (  # noqa: PLC0415
        CheckpointConflictError,
    )
    from creditledger.infrastructure.audit.jobs import take_checkpoint  # noqa: PLC0415

    with ledger_for(ctx) as ledger, progress_bar("checkpoint", quiet=as_json) as on_progress:
        try:
            recorded = take_checkpoint(ledger, datetime.now(UTC), on_progress=on_progress)
        except VerificationFailedError as error:
            raise _fail(f"no checkpoint recorded: {error.finding.describe()}") from None
        except (CheckpointConflictError, UnreadableEventError) as error:
            raise _fail(f"no checkpoint recorded: {error}") from None
    if recorded is None:
        raise _fail("no checkpoint recorded: the log is empty", ExitCode.FAILED)
    data = recorded.model_dump(mode="json")
    if json_wanted(as_json):
        print_json(data)
    else:
        print_table(_fields_table("Checkpoint recorded", data))


@audit_app.command("checkpoints")
def checkpoints_command(ctx: typer.Context, as_json: Json = False) -> None:
    """List the checkpoints recorded in the store (keep a copy outside it, too)."""
    from creditledger.infrastructure.audit.checkpoints import (  # noqa: PLC0415 - see the top
        checkpoint_store,
    )

    with ledger_for(ctx) as ledger:
        found = checkpoint_store(ledger).all()
    if json_wanted(as_json):
        print_json([item.model_dump(mode="json") for item in found])
        return
    listed = table("Checkpoints", "position", "chain_hash", "recorded_at")
    for item in found:
        recorded_at = item.recorded_at.isoformat() if item.recorded_at else ""
        listed.add_row(str(item.position), item.chain_hash, recorded_at)
    print_table(listed)


def _fields_table(title: str, values: dict[str, Any]) -> Table:
    return field_table(
        title, [(key, "" if value is None else str(value)) for key, value in values.items()]
    )


def _purchase_facts(purchases: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary's rows about purchases: by status, set aside, failed payments."""
    statuses = ", ".join(f"{count} {status}" for status, count in purchases["by_status"].items())
    rows = [("purchases", f"{purchases['total']:,} ({statuses or 'none'})")]
    if purchases["partial_histories"]:
        rows.append(("partial histories", f"{purchases['partial_histories']:,} (set aside)"))
    if purchases["failed_payments"]:
        owed = ", ".join(
            f"{amount} {currency}" for currency, amount in purchases["owed_after_failures"].items()
        )
        rows.append(
            (
                "failed payments",
                f"{purchases['failed_payments']:,} (credit consumed and still owed: {owed})",
            )
        )
    return rows


def _print_verify(report: VerificationReport, comparisons: list[LiveComparison]) -> None:
    console = Console()
    summary = report.summary()
    export_facts = summary["export"]
    diverged = any(comparison.differences for comparison in comparisons)
    # The verdict comes first: a failed verification must not read as a normal summary.
    if report.failure is not None:
        console.print(f"[bold red]FAILED[/] {report.failure.describe()}")
    elif diverged:
        console.print("[bold red]FAILED[/]: the live state differs from the export (see below)")
    verdict = "FAILED" if report.failure is not None or diverged else "verified"
    facts = table(f"Verification: {verdict}", "field", "value", show_header=False)
    facts.add_row("store", str(export_facts["store"]))
    facts.add_row("namespace", str(export_facts["namespace"] or "(all)"))
    facts.add_row("positions", f"{export_facts['from_position']}..{export_facts['last_position']}")
    facts.add_row("events", f"{report.events:,}")
    facts.add_row("final hash", str(report.final_hash))
    checkpoints = summary["checkpoints"]
    facts.add_row(
        "checkpoints",
        f"{len(checkpoints['checked'])} checked, {len(checkpoints['unchecked'])} not checkable",
    )
    for name, value in _purchase_facts(summary["purchases"]):
        facts.add_row(name, value)
    wallets = summary["wallets"]
    facts.add_row(
        "credit wallets",
        f"{wallets['total']:,} ({wallets['open_grants']:,} grants still open"
        + (
            f", {wallets['partial_histories']:,} partial, set aside)"
            if wallets["partial_histories"]
            else ")"
        ),
    )
    facts.add_row("balance rows", f"{summary['balances']['rows']:,}")
    facts.add_row(
        "double entry",
        "every currency sums to zero in each unit"
        if summary["balances"]["currencies_balanced"]
        else "[red]a currency does not sum to zero in some unit[/]",
    )
    for comparison in comparisons:
        facts.add_row(
            f"vs {SOURCE_NAMES.get(comparison.source, 'the live state')}",
            f"{comparison.purchases:,} purchases, "
            + (f"{comparison.balances:,} balances" if comparison.balances_compared else "")
            + f": {len(comparison.differences)} difference(s)",
        )
    print_table(facts)
    if summary["balances"]["totals"]:
        totals = table("Balances by currency and account", "currency", "account", "unit", "balance")
        for row in summary["balances"]["totals"]:
            totals.add_row(row["currency"], row["account"], row["unit"], row["balance"])
        print_table(totals)
    for unchecked in checkpoints["unchecked"]:
        console.print(f"checkpoint {unchecked['position']} not checked: {unchecked['reason']}")
    live_notes = sorted({note for comparison in comparisons for note in comparison.notes})
    for note in summary["notes"] + live_notes:
        console.print(f"note: {note}")
    for comparison in comparisons:
        for item in comparison.differences[:MAX_DIFFERENCES_SHOWN]:
            where = f"position {item.position}" if item.position is not None else "no position"
            console.print(
                f"[red]difference[/] with {SOURCE_NAMES.get(comparison.source, 'the live state')} "
                f"({where}) {item.kind} {item.key}: {item.detail}: "
                f"export {item.export!s}, live {item.live!s}"
            )
    if report.failure is None and not diverged:
        console.print("[green]verified[/]")
    elif report.failure is not None:
        console.print(f"[bold red]FAILED[/] {report.failure.describe()}")
