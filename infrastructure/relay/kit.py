"""The consumer kit: follow a ledger's stream into your own database without skipping an event.

The application gives a function that applies a batch of events inside a transaction of its own
database. The kit stores where it stands (the stream sequence and the log position of the last
event applied) in that same transaction, so the effects and the position commit together or not
at all. At start it reads that position and asks the broker, with a disposable pull consumer and
no acks, for the messages after it: the broker keeps no state that could run ahead of the
database (a durable consumer with acks does, and loses events: see docs/scale-out.md). Every
message must follow the last one: the next stream sequence and a later log position; anything
else raises ``StreamHoleError`` with nothing of the batch written. The next batch is fetched only
when the last one is committed: a slow database slows the fetching, nothing piles up in memory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

import nats.errors
import nats.js.errors
from eventsourcing.persistence import JSONTranscoder, StoredEvent
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from creditledger.domain.errors import LedgerError
from creditledger.domain.events import EVENT_CLASSES, LedgerEvent, WalletEventBase
from creditledger.infrastructure.persistence.mapper import PurchaseEventMapper
from creditledger.infrastructure.relay import stream as headers
from creditledger.infrastructure.relay.checkpoint import ConsumerDatabase, SqlTransaction
from creditledger.infrastructure.relay.stream import StreamSpec

DEFAULT_BATCH_SIZE = 500
FETCH_WAIT_SECONDS = 0.5
STREAM_WAIT_SECONDS = 0.5
_MAPPER = PurchaseEventMapper(JSONTranscoder())
logger = logging.getLogger(__name__)


class StreamHoleError(LedgerError):
    """A message does not follow the last one applied: the stream skipped or repeated events."""

    code = "stream_hole"
    title = "Stream hole"


@dataclass(frozen=True)
class StreamPosition:
    """How far a consumer has applied the stream: (0, 0) before the first event."""

    sequence: int
    position: int


class NotAPurchaseEventError(ValueError):
    """``Delivered.purchase_id`` asked of a credit wallet's event (read ``aggregate_id``)."""


@dataclass(frozen=True)
class Delivered:
    """One event as the stream delivers it: a purchase's, or a customer's credit wallet's."""

    sequence: int
    """The message's stream sequence."""
    position: int
    """The event's position in the ledger's log."""
    namespace: str
    aggregate_id: UUID
    """The purchase's id, or the credit wallet's (``is_wallet_event`` says which)."""
    version: int
    """The aggregate's version after this event."""
    type: str
    topic: str
    payload: bytes
    """The event as the ledger stores it (JSON)."""

    @property
    def is_wallet_event(self) -> bool:
        """Whether the event is a credit wallet's (granted, consumed, expired, voided)."""
        event_class = EVENT_CLASSES.get(self.topic)
        return event_class is not None and issubclass(event_class, WalletEventBase)

    @property
    def purchase_id(self) -> UUID:
        """The purchase of a purchase's event (as before wallets existed: consumers that read
        it keep working); a wallet's event has none and raises ``NotAPurchaseEventError``."""
        if self.is_wallet_event:
            raise NotAPurchaseEventError(
                f"stream message {self.sequence} is an event of credit wallet "
                f"{self.aggregate_id}, not of a purchase: read aggregate_id"
            )
        return self.aggregate_id

    @property
    def wallet_id(self) -> UUID | None:
        """The credit wallet of a wallet's event; None for a purchase's."""
        return self.aggregate_id if self.is_wallet_event else None

    def event(self) -> LedgerEvent:
        """The domain event, read back as the ledger reads it."""
        return _MAPPER.to_domain_event(
            StoredEvent(
                originator_id=self.aggregate_id,
                originator_version=self.version,
                topic=self.topic,
                state=self.payload,
            )
        )


ApplyBatch = Callable[[SqlTransaction, Sequence[Delivered]], None]
"""The application's part: apply the batch's events inside the transaction it is handed."""


def delivered(message: Msg) -> Delivered:
    found = message.headers or {}
    # Messages relayed before wallets existed name their purchase only.
    aggregate_id = found.get(headers.AGGREGATE_ID) or found[headers.PURCHASE_ID]
    return Delivered(
        sequence=message.metadata.sequence.stream,
        position=int(found[headers.POSITION]),
        namespace=found[headers.NAMESPACE],
        aggregate_id=UUID(aggregate_id),
        version=int(found[headers.VERSION]),
        type=found[headers.TYPE],
        topic=found[headers.TOPIC],
        payload=message.data,
    )


def check_follows(last: StreamPosition, batch: Sequence[Delivered]) -> StreamPosition:
    """The position after ``batch``; raises if any event does not follow the one before it."""
    for item in batch:
        if item.sequence != last.sequence + 1 or item.position <= last.position:
            raise StreamHoleError(
                f"stream message {item.sequence} (log position {item.position}) does not follow "
                f"message {last.sequence} (log position {last.position})"
            )
        last = StreamPosition(item.sequence, item.position)
    return last


class StreamConsumer:
    """Applies a ledger's stream to the application's database, batch by batch, exactly once."""

    def __init__(
        self,
        js: JetStreamContext,
        spec: StreamSpec,
        name: str,
        database: ConsumerDatabase,
        apply: ApplyBatch,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.js = js
        self.spec = spec
        self.name = name
        self.database = database
        self._apply = apply
        self.batch_size = batch_size
        database.ensure_checkpoint_table()
        self.position = self._read_position()

    def _read_position(self) -> StreamPosition:
        with self.database.transaction() as transaction:
            sequence, position = self.database.checkpoint(transaction, self.name)
        return StreamPosition(sequence, position)

    def apply(self, batch: Sequence[Delivered]) -> StreamPosition:
        """Apply one batch and its new position in one transaction of the consumer's database."""
        with self.database.transaction() as transaction:
            sequence, position = self.database.checkpoint(transaction, self.name, lock=True)
            after = check_follows(StreamPosition(sequence, position), batch)
            self._apply(transaction, batch)
            self.database.save_checkpoint(transaction, self.name, after.sequence, after.position)
        self.position = after
        return after

    async def _subscribe(self, stop: threading.Event) -> JetStreamContext.PullSubscription | None:
        """A disposable pull consumer from the message after our position, no acks.

        A stream that does not exist yet (the relay has not started) is waited for.
        """
        while not stop.is_set():
            try:
                return await self.js.pull_subscribe(
                    f"{self.spec.subject_prefix}.>",
                    stream=self.spec.name,
                    config=ConsumerConfig(
                        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                        opt_start_seq=self.position.sequence + 1,
                        ack_policy=AckPolicy.NONE,
                        # The broker forgets it soon after this process goes away.
                        inactive_threshold=30.0,
                    ),
                )
            except nats.js.errors.NotFoundError:
                logger.warning("stream %s not found; waiting for the relay", self.spec.name)
                await asyncio.sleep(STREAM_WAIT_SECONDS)
        return None

    async def run(
        self,
        stop: threading.Event,
        *,
        until_position: int | None = None,
        on_batch: Callable[[StreamPosition], None] | None = None,
    ) -> StreamPosition:
        """Consume until ``stop`` is set (or the log position ``until_position`` is applied)."""
        subscription = await self._subscribe(stop)
        if subscription is None:
            return self.position
        try:
            while not stop.is_set():
                if until_position is not None and self.position.position >= until_position:
                    break
                try:
                    messages = await subscription.fetch(self.batch_size, timeout=FETCH_WAIT_SECONDS)
                except nats.errors.TimeoutError:
                    continue
                except nats.errors.Error as error:
                    # The broker restarted or dropped the disposable consumer: make another
                    # from our committed position (nothing is lost: nothing was acked).
                    logger.warning(
                        "fetch failed (%s: %s); resubscribing", type(error).__name__, error
                    )
                    await asyncio.sleep(STREAM_WAIT_SECONDS)
                    subscription = await self._subscribe(stop) or subscription
                    continue
                batch = [delivered(message) for message in messages]
                # The database work runs beside the event loop, which keeps the connection alive.
                reached = await asyncio.to_thread(self.apply, batch)
                if on_batch is not None:
                    on_batch(reached)
        finally:
            await subscription.unsubscribe()
        return self.position
