"""The lines of an export: a header, one line per event, a trailer (``docs/audit-export.md``).

Event lines are built and read as plain dicts, because a verifier handles millions of them; the
header, the trailer and checkpoints are small and validated as models. Every line is one JSON
object with a ``kind`` member: ``header``, ``event`` or ``trailer``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from creditledger.application.audit.canonical import canonical_text
from creditledger.application.audit.chain import is_chain_hash

FORMAT: Final = "creditledger-audit-export"
FORMAT_VERSION: Final = 3
"""Version 2 adds the credit wallets' event lines (``wallet_id``); a purchase's line is as in 1.
Version 3 adds event types (invoice, payment failure, refund, revocation) and books postings in
credit and cash units; its lines are shaped as in version 2."""
READABLE_FORMAT_VERSIONS: Final = frozenset({1, 2, 3})
"""Version 1 files (written before wallets existed: purchase lines only) and version 2 files
(before invoices, failures and refunds) still verify, with the current posting rules."""
WALLETS_FORMAT_VERSION: Final = 2
"""The first version with wallet lines."""

EVENT_TYPES_SINCE: Final = {
    "Initiated": 1,
    "PaymentAuthorized": 1,
    "PaymentSettled": 1,
    "PurchaseVoided": 1,
    "GrantAdded": 2,
    "CreditsConsumed": 2,
    "GrantExpired": 2,
    "GrantVoided": 2,
    "InvoiceCreated": 3,
    "PaymentFailed": 3,
    "PaymentRefunded": 3,
    "GrantRevoked": 3,
}
"""The format version that introduced each event type: an older file cannot hold it (its
exporter could not have written it), so verify refuses it there (``unknown_event_type``)."""


class Aggregate(StrEnum):
    """Whose event a line is: the member naming its id says so (``purchase_id``, ``wallet_id``)."""

    PURCHASE = "purchase"
    WALLET = "wallet"

    @property
    def id_member(self) -> str:
        return f"{self.value}_id"


def _members(aggregate: Aggregate) -> frozenset[str]:
    return frozenset(
        {"kind", "position", aggregate.id_member, "version", "type", "namespace", "recorded_at"}
        | {"data"}
    )


EVENT_MEMBERS = _members(Aggregate.PURCHASE)
"""What the canonical bytes of a purchase event cover: every member of its line except ``hash``.
Unchanged since version 1, so the chain over purchase events (and every checkpoint recorded
before wallets existed) is the same in both versions."""
WALLET_EVENT_MEMBERS = _members(Aggregate.WALLET)
"""The same for a wallet event (version 2): ``wallet_id`` in place of ``purchase_id``."""

EVENT_LINE_MEMBERS = EVENT_MEMBERS | {"hash"}
WALLET_EVENT_LINE_MEMBERS = WALLET_EVENT_MEMBERS | {"hash"}


def _chain_hash(value: str) -> str:
    if not is_chain_hash(value):
        msg = "must be 64 lowercase hexadecimal characters"
        raise ValueError(msg)
    return value


ChainHash = Annotated[str, AfterValidator(_chain_hash)]
Position = Annotated[int, Field(ge=0, strict=True)]


class _Line(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def line(self) -> str:
        """The line's text (canonical JSON), without the newline."""
        return canonical_text(self.model_dump(mode="json"))


class Checkpoint(_Line):
    """The chain hash of the whole log at a position, recorded durably in the store."""

    position: Annotated[int, Field(ge=1, strict=True)]
    chain_hash: ChainHash
    recorded_at: datetime | None = None


class ChainScope(StrEnum):
    LOG = "log"
    """The chain runs over the whole log: its hashes equal the store's, checkpoints apply."""
    NAMESPACE = "namespace"
    """The chain runs over this export's lines only (a namespace's events): no checkpoints."""


class ExportHeader(_Line):
    """The first line: what was exported, from which store, and where its chain starts."""

    kind: Literal["header"] = "header"
    format: Literal["creditledger-audit-export"] = FORMAT
    format_version: int
    creditledger_version: str
    store: str
    exported_at: datetime
    namespace: str | None
    from_position: Annotated[int, Field(ge=1, strict=True)]
    first_position: Position | None
    """The position of the first event line, or None when the export holds no event."""
    last_position: Position
    """The cut: every event at or below this position (and at or above ``from_position``, in
    ``namespace`` if set) is in the export, and none above it."""
    chain: ChainScope
    chain_start_position: Position
    """The position after which this export's chain starts (0: the beginning of the log)."""
    chain_start_hash: ChainHash
    checkpoints: tuple[Checkpoint, ...] = ()
    """The store's checkpoints at export time, for verify to check without the store."""


class ExportTrailer(_Line):
    """The last line: how many events there were and the chain's final hash."""

    kind: Literal["trailer"] = "trailer"
    event_count: Annotated[int, Field(ge=0, strict=True)]
    last_event_position: Position | None
    final_hash: ChainHash


_ID_MEMBERS: Final = {aggregate: aggregate.id_member for aggregate in Aggregate}
"""``id_member`` looked up rather than formatted, once per exported event."""


def event_object(
    *,
    position: int,
    aggregate: Aggregate,
    aggregate_id: str,
    version: int,
    type_: str,
    namespace: str | None,
    recorded_at: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """An event line's members, without its hash."""
    return {
        "kind": "event",
        "position": position,
        _ID_MEMBERS[aggregate]: aggregate_id,
        "version": version,
        "type": type_,
        "namespace": namespace,
        "recorded_at": recorded_at,
        "data": data,
    }


def event_line(canonical: str, chain_hash: str) -> str:
    """An event line: its canonical text with the chain hash added as the last member.

    A reader can see exactly what was hashed, but a verifier must not rely on the line's layout:
    it parses the line and computes the canonical bytes again.
    """
    return f'{canonical[:-1]},"hash":"{chain_hash}"}}'
