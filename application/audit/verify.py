"""Offline verification of an export, one line at a time, from the file alone.

For every line, in order: it is one JSON object of the documented shape; positions only grow and
stay within the header's range; the chain hash recomputed from the canonical bytes equals the
line's; checkpoints met on the way match; the event reads back as its domain event and replays
on its purchase or credit wallet (no gap, no second authorization, no drawing more than a grant
holds...), agreeing with the other aggregate where they share a fact; its postings balance. The
first failure stops verification and names its position. At the end the trailer must agree with
what was seen, and every customer's FBO balance with what remains of its wallet's grants.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from pydantic import ValidationError

from creditledger.application.audit.canonical import (
    NotCanonicalError,
    canonical_text_of_parsed,
    parse_json,
    writes_like_reference,
)
from creditledger.application.audit.chain import next_hash
from creditledger.application.audit.checkpoints import CheckpointChecker, UncheckedCheckpoint
from creditledger.application.audit.closed import ClosedPurchases
from creditledger.application.audit.findings import (
    Finding,
    VerificationFailedError,
    fail,
    reason_of,
)
from creditledger.application.audit.fold import (
    EVENT_CLASS_OF_TYPE,
    WALLET_EVENT_CLASS_OF_TYPE,
    LedgerFold,
)
from creditledger.application.audit.pairing import Half
from creditledger.application.audit.records import (
    EVENT_LINE_MEMBERS,
    EVENT_TYPES_SINCE,
    FORMAT_VERSION,
    READABLE_FORMAT_VERSIONS,
    WALLET_EVENT_LINE_MEMBERS,
    WALLETS_FORMAT_VERSION,
    Aggregate,
    ChainScope,
    Checkpoint,
    ExportHeader,
    ExportTrailer,
)
from creditledger.application.audit.state import AuditScope
from creditledger.domain.events import Initiated
from creditledger.domain.ledger import Account
from creditledger.domain.status import SettlementType, Unit


@dataclass
class VerificationReport:
    """What verification saw, and the first failure if there was one."""

    failure: Finding | None
    header: ExportHeader | None
    trailer: ExportTrailer | None
    events: int
    lines: int
    last_event_position: int | None
    final_hash: str | None
    checked_checkpoints: list[Checkpoint]
    unchecked_checkpoints: list[UncheckedCheckpoint]
    ledger: LedgerFold
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None

    def scope(self) -> AuditScope | None:
        """What a live provider must cover to be compared with this export."""
        if self.header is None:
            return None
        return AuditScope(
            last_position=self.header.last_position,
            namespace=self.header.namespace,
            balances=self.header.from_position == 1,
        )

    def summary(self) -> dict[str, Any]:
        """The report as JSON-ready data (``--json``)."""
        header = self.header
        ledger = self.ledger
        return {
            "ok": self.ok,
            "failure": self.failure.as_dict() if self.failure else None,
            "export": {
                "format_version": header.format_version if header else None,
                "creditledger_version": header.creditledger_version if header else None,
                "store": header.store if header else None,
                "exported_at": header.exported_at.isoformat() if header else None,
                "namespace": header.namespace if header else None,
                "chain": header.chain.value if header else None,
                "from_position": header.from_position if header else None,
                "first_position": header.first_position if header else None,
                "last_position": header.last_position if header else None,
            },
            "lines": self.lines,
            "events": self.events,
            "last_event_position": self.last_event_position,
            "final_hash": self.final_hash,
            "checkpoints": {
                "checked": [
                    {"position": c.position, "chain_hash": c.chain_hash}
                    for c in self.checked_checkpoints
                ],
                "unchecked": [
                    {"position": u.checkpoint.position, "reason": u.reason}
                    for u in self.unchecked_checkpoints
                ],
            },
            "purchases": {
                "total": ledger.purchase_count,
                "by_status": ledger.statuses(),
                "partial_histories": len(ledger.partial),
                "partial_history_events": ledger.partial_events,
                "failed_payments": ledger.failures,
                "owed_after_failures": {
                    currency: str(owed)
                    for currency, owed in sorted(ledger.owed_after_failures.items())
                },
            },
            "wallets": {
                "total": ledger.wallets.wallet_count,
                "open_grants": ledger.wallets.open_grant_count,
                "partial_histories": len(ledger.wallets.partial),
                "partial_history_events": ledger.wallets.partial_events,
            },
            "balances": {
                "rows": len(ledger.balances),
                "totals": [
                    {
                        "currency": currency,
                        "account": account,
                        "unit": Account(account).unit.value,
                        "balance": str(total),
                    }
                    for (currency, account), total in ledger.totals().items()
                ],
                "currencies_balanced": self.currencies_balanced(),
            },
            "notes": self.notes,
        }

    def currencies_balanced(self) -> bool:
        """Double entry: in every currency the accounts of each unit (credits, cash) sum to
        zero; amounts of different units are never added up."""
        per_unit: dict[tuple[str, Unit], Decimal] = {}
        for (currency, account), total in self.ledger.totals().items():
            key = (currency, Account(account).unit)
            per_unit[key] = per_unit.get(key, Decimal(0)) + total
        return all(total == 0 for total in per_unit.values())


_WALLET_ID = Aggregate.WALLET.id_member
_PURCHASE_ID = Aggregate.PURCHASE.id_member


def chain_hash_of_line(previous: str, line: str, item: dict[str, Any], given: object) -> str:
    """The chain hash after an event line, from the one before: ``item`` is the line parsed
    (by ``parse_json``), without its ``hash`` member ``given``."""
    # Fast path: an exporter writes an event line as its canonical text with the hash added as
    # the last member. If the text before that member hashes to the line's hash, it is the very
    # text that was hashed (SHA-256 resists collisions), so its content is the event's. Any other
    # layout (or a mismatch) takes the canonical bytes of the parsed line.
    if isinstance(given, str) and line.endswith(f',"hash":"{given}"}}'):
        chain_hash = next_hash(previous, (line[: -len(given) - 11] + "}").encode("utf-8"))
        if chain_hash == given:
            return chain_hash
    return next_hash(previous, canonical_text_of_parsed(item).encode("utf-8"))


class ChainCheck:
    """The other half of a split verification (see ``ExportVerifier``'s
    ``chain_checked_apart``): every line parses the same by orjson alone as by ``parse_json``
    (it holds no float, and no integer orjson would read as one), and every event line's hash is
    the chain's. ``passed`` is False at the first line that is not so, or on any doubt; it never
    says what is wrong: the whole verification is then done again, in order, which says it."""

    def __init__(self) -> None:
        self.passed = True
        self._hash: str | None = None

    def feed(self, line: str) -> None:
        if not self.passed:
            return
        line = line.rstrip("\r\n")
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.passed = False
            return
        if not writes_like_reference(item) or not isinstance(item, dict):
            self.passed = False
            return
        kind = item.get("kind")
        if self._hash is None:
            start = item.get("chain_start_hash")
            self.passed = kind == "header" and isinstance(start, str)
            self._hash = start if isinstance(start, str) else None
            return
        if kind != "event":
            return  # a trailer, or something the replay half refuses
        given = item.pop("hash", None)
        chain_hash = chain_hash_of_line(self._hash, line, item, given)
        if chain_hash != given:
            self.passed = False
        self._hash = chain_hash


class ExportVerifier:
    """Feed it an export's lines in order, then ``finish()`` for the report."""

    def __init__(
        self,
        checkpoints: Iterable[Checkpoint] = (),
        *,
        closed: ClosedPurchases | None = None,
        chain_checked_apart: bool = False,
        half: Half | None = None,
    ) -> None:
        """``closed``: where closed purchases go (default: memory; see ``LedgerFold``).

        ``chain_checked_apart``: the replay half of a split verification. What ``ChainCheck``
        checks is taken as checked: each line is parsed by orjson alone (no float check) and
        each event line's ``hash`` member is taken as the chain's hash. A new purchase's id is
        checked late (``LedgerFold``'s ``new_ids_checked_late``). Its report equals this
        verifier's without the flag only if it is ok *and* ``ChainCheck`` passed the same
        lines; any other outcome must be verified again without it.

        ``half``: one half of a verification in halves (``creditledger.application.audit.
        pairing``). Each checks the shape of the lines of its kind as this verifier does and
        replays their events (the header and the trailer: both), and takes from the other kind's
        lines only what the two share. The wallet half also checks every line's JSON and the
        hash chain, which the purchase half trusts (as ``chain_checked_apart``). Their reports
        stand for this verifier's only if both are ok, neither is ``in_doubt``, their
        ``pairing_digest``s are equal and the purchase half's fold joins the wallet half's
        (``LedgerFold.join_wallet_half``); the purchase half's report is then this verifier's.
        Only whole-log exports with wallets split so.
        """
        self._half = half
        self._trusted = chain_checked_apart or half is Half.PURCHASES
        self._given = list(checkpoints)
        self._closed = closed
        self._checker = CheckpointChecker(())
        self._header: ExportHeader | None = None
        self._trailer: ExportTrailer | None = None
        self._failure: Finding | None = None
        self._line = 0
        self._events = 0
        self._hash: str | None = None
        self._last_position: int | None = None
        self._fold = LedgerFold(partial_history_allowed=False)
        self._wallets = True
        self._notes: list[str] = []

    @property
    def failed(self) -> bool:
        return self._failure is not None

    @property
    def in_doubt(self) -> str | None:
        """Why this half cannot stand for verification in order (then verify another way)."""
        return self._fold.doubt

    @property
    def pairing_digest(self) -> str:
        return self._fold.pairing.digest()

    @property
    def last_position(self) -> int | None:
        """The position of the last event line read so far."""
        return self._last_position

    @property
    def header(self) -> ExportHeader | None:
        return self._header

    def feed(self, line: str) -> None:
        """One line of the export (with or without its newline)."""
        self._line += 1
        if self._failure is not None:
            return
        try:
            self._feed(line.rstrip("\r\n"))
        except VerificationFailedError as error:
            finding = error.finding
            self._failure = Finding(finding.code, finding.message, finding.position, self._line)

    def finish(self) -> VerificationReport:
        if self._failure is None:
            try:
                self._finish()
            except VerificationFailedError as error:
                self._failure = error.finding
        return VerificationReport(
            failure=self._failure,
            header=self._header,
            trailer=self._trailer,
            events=self._events,
            lines=self._line,
            last_event_position=self._last_position,
            final_hash=self._hash,
            checked_checkpoints=list(self._checker.checked),
            unchecked_checkpoints=list(self._checker.unchecked),
            ledger=self._fold,
            notes=self._notes,
        )

    # -- lines ---------------------------------------------------------------------------------

    def _feed(self, line: str) -> None:
        try:
            item = orjson.loads(line) if self._trusted else parse_json(line)
        except NotCanonicalError as error:
            raise fail("malformed_line", str(error), self._last_position) from None
        except ValueError:
            raise fail("malformed_line", "not a JSON line", self._last_position) from None
        if not isinstance(item, dict):
            raise fail("malformed_line", "not a JSON object", self._last_position)
        if self._trailer is not None:
            raise fail("malformed_line", "a line after the trailer", self._last_position)
        kind = item.get("kind")
        if self._header is None:
            if kind != "header":
                raise fail("missing_header", "the export does not start with its header")
            self._start(item)
        elif kind == "event":
            self._event(item, line)
        elif kind == "trailer":
            self._end(item)
        else:
            raise fail("malformed_line", f"unknown line kind {kind!r}", self._last_position)

    def _start(self, item: dict[str, Any]) -> None:
        version = item.get("format_version")
        if version not in READABLE_FORMAT_VERSIONS or type(version) is not int:
            readable = " and ".join(str(known) for known in sorted(READABLE_FORMAT_VERSIONS))
            raise fail(
                "unsupported_format",
                f"format version {version!r}; this verifier reads versions {readable}",
            )
        try:
            header = ExportHeader.model_validate(item)
        except ValidationError as error:
            raise fail("malformed_header", reason_of(error)) from None
        self._header = header
        self._hash = header.chain_start_hash
        self._wallets = header.format_version >= WALLETS_FORMAT_VERSION
        if header.format_version < FORMAT_VERSION:
            # Postings are never exported: they follow from the events, by this verifier's rules.
            self._notes.append(
                f"a format version {header.format_version} export: its events and hashes are "
                f"read as written, its balances computed with the posting rules of version "
                f"{FORMAT_VERSION} (credit and cash units: an authorization re-denominates the "
                "receivable through brokerage), so an authorized or settled purchase's balances "
                "are not the ones an earlier verifier printed"
            )
        self._fold = LedgerFold(
            partial_history_allowed=header.from_position > 1,
            closed=self._closed,
            wallets=self._wallets,
            new_ids_checked_late=self._trusted,
            half=self._half,
        )
        if self._half is not None and (header.from_position > 1 or not self._wallets):
            self._fold.doubt = "only whole-log exports with wallets are verified in halves"
        checkpoints = [*header.checkpoints, *self._given]
        self._checker = CheckpointChecker(checkpoints)
        if header.chain is ChainScope.NAMESPACE:
            self._checker.skip_all(
                f"the export holds only namespace {header.namespace!r}: checkpoints cover the "
                "whole log, so this export cannot check them"
            )
            if checkpoints:
                self._notes.append(
                    f"{len(checkpoints)} checkpoint(s) not checked: the export is filtered by "
                    "namespace; export the whole log to check them"
                )
            return
        start = header.chain_start_position
        if start > 0:
            # The chain before the export is summed up by its start hash: a checkpoint exactly
            # there checks it, earlier ones cannot be checked from this file.
            self._checker.skip_before(start, f"before the export's chain start (position {start})")
            self._checker.at(start, header.chain_start_hash)

    def _chain_hash(self, line: str, item: dict[str, Any], given: object) -> str:
        if self._trusted and isinstance(given, str):
            return given  # ChainCheck recomputed it
        return chain_hash_of_line(self._hash or "", line, item, given)

    def _event(self, item: dict[str, Any], line: str) -> None:
        header = self._header
        if header is None or self._hash is None:  # pragma: no cover - _feed starts first
            raise fail("missing_header", "the export does not start with its header")
        position = item.get("position")
        if type(position) is not int:
            raise fail("malformed_line", "an event line without an integer position")
        members = (
            WALLET_EVENT_LINE_MEMBERS
            if self._wallets and _WALLET_ID in item
            else EVENT_LINE_MEMBERS
        )
        if item.keys() != members:
            found = set(item.keys())
            raise fail(
                "malformed_line",
                "the event line's members are wrong: "
                f"missing {sorted(members - found)}, "
                f"unexpected {sorted(found - members)}",
                position,
            )
        given = item.pop("hash")
        try:
            chain_hash = self._chain_hash(line, item, given)
        except UnicodeEncodeError:
            # JSON can escape a lone surrogate; UTF-8 cannot encode one, so the line has no
            # canonical bytes and no exporter hashed it.
            raise fail(
                "malformed_line",
                "a string of the line holds a lone surrogate, which has no UTF-8 bytes to hash",
                position,
            ) from None
        if chain_hash != given:
            after = self._last_position
            where = f"after position {after}" if after is not None else "at the first event"
            raise fail(
                "hash_mismatch",
                f"the chain breaks here: the recomputed hash differs from the line's, so this "
                f"event was changed, or events {where} were deleted, inserted or reordered",
                position,
            )
        self._check_position(header, position)
        self._hash = chain_hash
        self._last_position = position
        self._events += 1
        next_checkpoint = self._checker.next_position
        if next_checkpoint is not None and position >= next_checkpoint:
            self._checker.at(position, chain_hash)
        self._replay(header, position, item)

    def _check_position(self, header: ExportHeader, position: int) -> None:
        if self._last_position is not None and position <= self._last_position:
            raise fail(
                "position_out_of_order",
                f"position {position} does not follow position {self._last_position}",
                position,
            )
        if position > header.last_position or position < header.from_position:
            raise fail(
                "position_out_of_range",
                f"position {position} is outside the export's range "
                f"{header.from_position}..{header.last_position}",
                position,
            )
        if self._last_position is None and position != header.first_position:
            raise fail(
                "position_out_of_range",
                f"the first event is at position {position}, the header says "
                f"{header.first_position}",
                position,
            )

    def _replay(self, header: ExportHeader, position: int, item: dict[str, Any]) -> None:
        type_ = item["type"]
        wallet = _WALLET_ID in item
        if self._half is not None and self._passed_to_other_half(position, item, wallet=wallet):
            return
        classes = WALLET_EVENT_CLASS_OF_TYPE if wallet else EVENT_CLASS_OF_TYPE
        cls = classes.get(type_) if isinstance(type_, str) else None
        if cls is None:
            whose = "a wallet" if wallet else "a purchase"
            raise fail("unknown_event_type", f"unknown event type {type_!r} of {whose}", position)
        since = EVENT_TYPES_SINCE.get(type_, FORMAT_VERSION)
        if since > header.format_version:
            raise fail(
                "unknown_event_type",
                f"event type {type_!r} came with format version {since}: a version "
                f"{header.format_version} export cannot hold it",
                position,
            )
        version = item["version"]
        if type(version) is not int or version < 1:
            raise fail("malformed_line", f"version {version!r} is not a positive integer", position)
        aggregate = Aggregate.WALLET if wallet else Aggregate.PURCHASE
        aggregate_id = item[_WALLET_ID if wallet else _PURCHASE_ID]
        if not isinstance(aggregate_id, str):
            raise fail(
                "malformed_line", f"{aggregate.value} id {aggregate_id!r} is not a string", position
            )
        data = item["data"]
        if not isinstance(data, dict):
            raise fail("malformed_line", "data is not a JSON object", position)
        if item["recorded_at"] != data.get("timestamp"):
            raise fail(
                "recorded_at_mismatch",
                f"recorded_at {item['recorded_at']!r} is not the event's timestamp "
                f"{data.get('timestamp')!r}",
                position,
            )
        namespace = item["namespace"]
        # A wallet event and a purchase's Initiated hold their namespace; a purchase's later
        # events take it from the Initiated.
        expected = (
            data.get("namespace")
            if wallet or cls is Initiated
            else self._fold.namespace_of(aggregate_id)
        )
        if expected is not None and namespace != expected:
            raise fail(
                "namespace_mismatch",
                f"the line says namespace {namespace!r}, the {aggregate.value}'s is {expected!r}",
                position,
            )
        if header.namespace is not None and namespace != header.namespace:
            raise fail(
                "namespace_mismatch",
                f"an event of namespace {namespace!r} in an export of {header.namespace!r}",
                position,
            )
        invoices_since = EVENT_TYPES_SINCE["InvoiceCreated"]
        if (
            cls is Initiated
            and header.format_version < invoices_since
            and data.get("settlement_type") == SettlementType.INVOICE.value
        ):
            # Invoice settlement came with its events: no earlier exporter wrote such a purchase.
            raise fail(
                "invalid_event_data",
                f"an invoice-settled purchase came with format version {invoices_since}: a "
                f"version {header.format_version} export cannot hold it",
                position,
            )
        if wallet:
            self._fold.apply_wallet_event(
                position, aggregate_id, version, WALLET_EVENT_CLASS_OF_TYPE[type_], data
            )
        else:
            self._fold.apply(position, aggregate_id, version, EVENT_CLASS_OF_TYPE[type_], data)

    def _passed_to_other_half(self, position: int, item: dict[str, Any], *, wallet: bool) -> bool:
        """A line of the other half's kind: that half checks and replays it; this one takes only
        what the two share (``LedgerFold.pass_wallet_line``, ``pass_purchase_line``)."""
        if wallet is not (self._half is Half.PURCHASES):
            return False
        if wallet:
            self._fold.pass_wallet_line(position, item[_WALLET_ID], item["type"])
        else:
            self._fold.pass_purchase_line(position, item[_PURCHASE_ID], item["type"])
        return True

    def _end(self, item: dict[str, Any]) -> None:
        try:
            trailer = ExportTrailer.model_validate(item)
        except ValidationError as error:
            raise fail("malformed_trailer", reason_of(error), self._last_position) from None
        self._trailer = trailer
        if trailer.event_count != self._events:
            raise fail(
                "event_count_mismatch",
                f"the trailer counts {trailer.event_count} events, the export has {self._events}",
                self._last_position,
            )
        if trailer.last_event_position != self._last_position:
            raise fail(
                "trailer_mismatch",
                f"the trailer says the last event is at {trailer.last_event_position}, "
                f"the export's is at {self._last_position}",
                self._last_position,
            )
        if trailer.final_hash != self._hash:
            raise fail(
                "final_hash_mismatch",
                f"the trailer's final hash {trailer.final_hash} is not the chain's {self._hash}",
                self._last_position,
            )

    def _finish(self) -> None:
        header = self._header
        if header is None:
            raise fail("missing_header", "the export is empty: no header")
        if self._trailer is None:
            after = self._last_position
            raise fail(
                "truncated",
                "the export ends without its trailer "
                + (f"after position {after}" if after is not None else "before any event")
                + f" (its header promises events up to position {header.last_position})",
                after,
            )
        if header.chain is ChainScope.LOG:
            self._checker.end(header.last_position)
            beyond = [
                unchecked.checkpoint
                for unchecked in self._checker.unchecked
                if unchecked.checkpoint in header.checkpoints
                and unchecked.checkpoint.position > header.last_position
            ]
            if beyond:
                # The store's own checkpoints were all taken at positions the log had reached;
                # the log only grows, so one beyond the export's cut means events were removed.
                raise fail(
                    "checkpoint_beyond_log",
                    f"the store recorded a checkpoint at position {beyond[0].position}, beyond "
                    f"the log's last position {header.last_position} when it was exported: "
                    "events were removed from the store",
                    beyond[0].position,
                )
            # The cut is the store's last position when the export began: always an event
            # (positions may skip numbers, but never at the top). So a whole-log export ends there.
            if header.last_position >= header.from_position and (
                self._last_position != header.last_position
            ):
                after = self._last_position
                raise fail(
                    "truncated",
                    f"the export's events end at position {after}, but its header says the log "
                    f"was exported up to position {header.last_position}",
                    after,
                )
        # Last, on a whole file: each grant and void came with its wallet's event, and each
        # customer's FBO balance is what remains of its wallet's grants.
        self._fold.finish()
