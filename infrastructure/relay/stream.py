"""The ledger's stream in NATS JetStream: its settings, subjects, message headers and tail.

One stream per ledger store. Each message is one logged event: the subject says its namespace and
type, the payload is the event's stored JSON, the headers carry its identity in the log. The
stream only distributes; the log stays the record (a lost tail is re-filled from it).
"""

from __future__ import annotations

from dataclasses import dataclass

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from creditledger.infrastructure.settings import Settings

DEFAULT_STREAM = "CREDITLEDGER"
DEFAULT_SUBJECT_PREFIX = "creditledger"
DEFAULT_DUPLICATE_WINDOW_SECONDS = 120.0

MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_SEQUENCE = "Nats-Expected-Last-Sequence"
POSITION = "Creditledger-Position"
AGGREGATE_ID = "Creditledger-Aggregate-Id"
"""Every event's aggregate: the purchase's id, or the credit wallet's."""
PURCHASE_ID = "Creditledger-Purchase-Id"
"""On a purchase's events only (as before wallets existed): the purchase's id."""
WALLET_ID = "Creditledger-Wallet-Id"
"""On a credit wallet's events only: the wallet's id (one per namespace, customer, currency)."""
VERSION = "Creditledger-Version"
TYPE = "Creditledger-Type"
TOPIC = "Creditledger-Topic"
NAMESPACE = "Creditledger-Namespace"

WRONG_LAST_SEQUENCE = 10071
"""JetStream's error code when ``Nats-Expected-Last-Sequence`` is not the stream's last one."""
STREAM_NOT_FOUND = 10059


@dataclass(frozen=True)
class StreamSpec:
    """Where a ledger's events go: the stream's name and its subjects' prefix."""

    name: str = DEFAULT_STREAM
    subject_prefix: str = DEFAULT_SUBJECT_PREFIX
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW_SECONDS
    replicas: int = 1

    def subject(self, namespace: str, event_type: str) -> str:
        return f"{self.subject_prefix}.{namespace}.{event_type}"

    def msg_id(self, position: int) -> str:
        """The event's identity at its source, the same from every relay."""
        return f"{self.name}:{position}"

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            description="creditledger event log, relayed (the log is the record)",
            subjects=[f"{self.subject_prefix}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            # Nothing is ever discarded or removed: consumers rely on contiguous sequences.
            discard=DiscardPolicy.NEW,
            deny_delete=True,
            deny_purge=True,
            duplicate_window=self.duplicate_window,
            num_replicas=self.replicas,
        )


async def ensure_stream(js: JetStreamContext, spec: StreamSpec) -> None:
    """Create the stream if it does not exist (an existing one is used as it is)."""
    try:
        await js.stream_info(spec.name)
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(spec.config())
        except nats.js.errors.BadRequestError:
            # Another relay created it in between ("stream name already in use").
            await js.stream_info(spec.name)


@dataclass(frozen=True)
class Tail:
    """The stream's last message: its sequence and the log position it carries (0, 0: empty)."""

    sequence: int
    position: int


async def read_tail(js: JetStreamContext, spec: StreamSpec) -> Tail:
    """Where the stream ends, read from its last message's headers (no position kept aside)."""
    info = await js.stream_info(spec.name)
    last = info.state.last_seq
    if info.state.messages == 0 or last == 0:
        return Tail(last, 0)
    message = await js.get_msg(spec.name, seq=last)
    position = (message.headers or {}).get(POSITION)
    if position is None:
        msg = (
            f"stream {spec.name}: message {last} has no {POSITION} header; another publisher "
            "shares the stream's subjects (give this ledger its own stream and prefix)"
        )
        raise ValueError(msg)
    return Tail(last, int(position))


def stream_spec(settings: Settings) -> StreamSpec:
    return StreamSpec(
        name=settings.relay_stream,
        subject_prefix=settings.relay_subject_prefix,
        duplicate_window=settings.relay_duplicate_window,
        replicas=settings.relay_replicas,
    )
