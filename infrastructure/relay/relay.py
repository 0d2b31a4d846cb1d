"""The relay: follows the log in commit order and publishes every event once to the stream.

It reads the log as the projector does (``EventLog`` plus the store's commit-order guard, so an
id that may still commit is never passed over). It keeps no position of its own: the stream's
last message says which log position was relayed last, and every publish says which stream
sequence it must follow (``Nats-Expected-Last-Sequence``) and who it is (``Nats-Msg-Id``). So a
relay killed at any point, two relays at once, a broker that lost its tail, or a stream deleted
and created again all end with the stream equal to the log: a message is refused rather than
stored twice, and the refused relay reads the tail again and carries on from there.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

import nats
from eventsourcing.persistence import Notification
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.projection import PurchaseTerms
from creditledger.application.projections.source import EventLog
from creditledger.domain.events import EVENT_CLASSES, Initiated, WalletEventBase
from creditledger.domain.identity import wallet_id_for
from creditledger.infrastructure.bootstrap import open_view_database
from creditledger.infrastructure.projections.database import CommitOrderGuard, ViewDatabase
from creditledger.infrastructure.relay import stream as headers
from creditledger.infrastructure.relay.stream import (
    StreamSpec,
    Tail,
    ensure_stream,
    read_tail,
    stream_spec,
)
from creditledger.infrastructure.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
"""Events read and published per round: also the most acks awaited at once when pipelined."""
ACK_TIMEOUT_SECONDS = 10.0
MAX_BATCHES_IN_FLIGHT = 1
"""Batches left unacknowledged while the next is read and sent (beyond the one just sent)."""
MAX_BACKOFF_SECONDS = 5.0
STOP_CHECK_SECONDS = 0.1
WALLETS_REMEMBERED = 20_000


@dataclass(frozen=True)
class _Sent:
    """A batch sent and not yet acknowledged, and where the stream ends once it is stored."""

    futures: list[asyncio.Future[PubAck]]
    reaches: Tail


HOLE_WAIT_SECONDS = 0.05
"""How long a catch-up waits before looking again at a hole in the log right after its tail."""


class WalletNamespaces:
    """The namespace of each credit wallet met lately, so a wallet's events go out unread.

    A wallet's namespace never changes (it is part of the wallet's id), so an entry is never
    stale; bounded like ``PurchaseTerms``, and a wallet forgotten is read from its own event.
    """

    def __init__(self, capacity: int = WALLETS_REMEMBERED) -> None:
        self._capacity = capacity
        self._namespaces: OrderedDict[UUID, str] = OrderedDict()

    def remember(self, wallet_id: UUID, namespace: str) -> None:
        self._namespaces[wallet_id] = namespace
        self._namespaces.move_to_end(wallet_id)
        while len(self._namespaces) > self._capacity:
            self._namespaces.popitem(last=False)

    def get(self, wallet_id: UUID) -> str | None:
        return self._namespaces.get(wallet_id)


def _wallet_of(initiated: Initiated) -> UUID:
    return wallet_id_for(initiated.namespace, initiated.customer_id, initiated.currency)


@dataclass(frozen=True)
class Outgoing:
    subject: str
    payload: bytes
    headers: dict[str, str]


class Relay:
    """Publishes one ledger's log to its stream, in log order, each event once."""

    def __init__(
        self,
        log: EventLog,
        guard: CommitOrderGuard,
        js: JetStreamContext,
        spec: StreamSpec,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        pipelined: bool = True,
    ) -> None:
        self.log = log
        self.guard = guard
        self.js = js
        self.spec = spec
        self.batch_size = batch_size
        self.pipelined = pipelined
        self.terms = PurchaseTerms(log.initiated)
        self.wallets = WalletNamespaces()
        self.tail: Tail | None = None
        """Where the stream will end once what was sent is stored (None: read it again)."""
        self.confirmed: Tail | None = None
        """Where the stream ends as acknowledged."""
        self._in_flight: deque[_Sent] = deque()

    @classmethod
    def of_ledger(
        cls,
        ledger: CreditLedger,
        js: JetStreamContext,
        spec: StreamSpec,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        pipelined: bool = True,
    ) -> Relay:
        """The relay of a ledger's log, reading it as the ledger's own projector does."""
        guard = open_view_database(ledger).guard()
        return cls(EventLog(ledger), guard, js, spec, batch_size=batch_size, pipelined=pipelined)

    @property
    def relayed(self) -> int | None:
        """The log position the stream is known to hold up to (None before the first look)."""
        return None if self.confirmed is None else self.confirmed.position

    async def resync(self) -> Tail:
        await ensure_stream(self.js, self.spec)
        self.tail = self.confirmed = await read_tail(self.js, self.spec)
        return self.tail

    async def relay_batch(self) -> int:
        """Send the next batch of the log; return how many events were sent (0: none left).

        Pipelined, a batch is sent while the one before it is still being acknowledged: its
        i-th message expects the stream to end at the sequence the batches before it will have
        reached, so if anything before it is refused, it is refused too. On any failure every
        batch in flight is abandoned, the tail forgotten (the next call reads it from the
        stream) and the error raised: what was stored stays stored, nothing is stored twice.
        """
        tail = self.tail or await self.resync()
        notifications = self.log.read(tail.position, self.batch_size)
        usable = self.guard.usable(tail.position, notifications)
        try:
            if not usable:
                await self.settle()
                return 0
            outgoing = [self.outgoing(notification) for notification in usable]
            if not self.pipelined:
                acks = await self._publish_one_at_a_time(outgoing, tail.sequence)
                self.tail = self.confirmed = Tail(acks[-1].seq, usable[-1].id)
                return len(usable)
            futures = await self._send(outgoing, tail.sequence)
            self.tail = Tail(tail.sequence + len(usable), usable[-1].id)
            self._in_flight.append(_Sent(futures, self.tail))
            while len(self._in_flight) > MAX_BATCHES_IN_FLIGHT:
                await self._settle_oldest()
        except BaseException:
            self._abandon()
            raise
        return len(usable)

    async def settle(self) -> None:
        """Wait until every batch sent is acknowledged (raises if one is refused)."""
        while self._in_flight:
            await self._settle_oldest()

    async def _settle_oldest(self) -> None:
        sent = self._in_flight.popleft()
        async with asyncio.timeout(ACK_TIMEOUT_SECONDS):
            acks = await asyncio.gather(*sent.futures)
        if acks[-1].seq != sent.reaches.sequence:
            # A duplicate answered with another sequence: the stream is not what this relay
            # believed. Read its tail again.
            msg = f"stream sequence {acks[-1].seq} where {sent.reaches.sequence} was expected"
            raise RuntimeError(msg)
        self.confirmed = sent.reaches

    def _abandon(self) -> None:
        for sent in self._in_flight:
            for future in sent.futures:
                future.cancel()
        self._in_flight.clear()
        self.tail = None

    async def catch_up(self) -> int:
        """Relay until the stream holds the whole log as it stood when called; return events
        published.

        An empty batch does not mean caught up: right after the stream's tail the log may show a
        hole (an id drawn by a transaction that has not ended, or rolled back), and the guard
        holds back everything after it until the hole's writers have ended. Wait for them, then
        go on, until the stream reaches the head read at the start.
        """
        head = self.log.head()
        total = 0
        while True:
            published = await self.relay_batch()
            total += published
            if published:
                continue
            reached = self.confirmed.position if self.confirmed is not None else 0
            if reached >= head:
                return total
            await asyncio.sleep(HOLE_WAIT_SECONDS)

    def outgoing(self, notification: Notification) -> Outgoing:
        # Only an Initiated event is read (it names the namespace, remembered for the
        # purchase's later events and for its customer's wallet), or a wallet's event whose
        # wallet this relay has not met: the payload goes out as stored.
        aggregate_id = notification.originator_id
        if not isinstance(aggregate_id, UUID):
            aggregate_id = UUID(aggregate_id)
        event_class = EVENT_CLASSES[notification.topic]
        identity = {headers.AGGREGATE_ID: str(aggregate_id)}
        if issubclass(event_class, WalletEventBase):
            namespace = self.wallets.get(aggregate_id) or self._wallet_namespace(notification)
            identity[headers.WALLET_ID] = str(aggregate_id)
        else:
            if notification.topic == Initiated.TOPIC:
                initiated = self.log.decode(notification).event
                if isinstance(initiated, Initiated):
                    self.terms.remember(initiated)
                    self.wallets.remember(_wallet_of(initiated), initiated.namespace)
            namespace = self.terms.of_purchase(aggregate_id).namespace
            identity[headers.PURCHASE_ID] = str(aggregate_id)
        event_type = event_class.TYPE.value
        return Outgoing(
            subject=self.spec.subject(namespace, event_type),
            payload=notification.state,
            headers={
                headers.MSG_ID: self.spec.msg_id(notification.id),
                headers.POSITION: str(notification.id),
                **identity,
                headers.VERSION: str(notification.originator_version),
                headers.TYPE: event_type,
                headers.TOPIC: notification.topic,
                headers.NAMESPACE: namespace,
            },
        )

    def _wallet_namespace(self, notification: Notification) -> str:
        """Every wallet event names its namespace: read once, remembered for the wallet."""
        event = self.log.ledger.mapper.to_domain_event(notification)
        if not isinstance(event, WalletEventBase):  # pragma: no cover - the topic said wallet
            msg = f"log position {notification.id}: {notification.topic} is not a wallet event"
            raise TypeError(msg)
        self.wallets.remember(event.originator_id, event.namespace)
        return event.namespace

    async def _publish_one_at_a_time(self, outgoing: Sequence[Outgoing], base: int) -> list[PubAck]:
        acks = []
        for index, message in enumerate(outgoing):
            acks.append(
                await self.js.publish(
                    message.subject,
                    message.payload,
                    timeout=ACK_TIMEOUT_SECONDS,
                    headers=_expecting(message, base + index),
                )
            )
        return acks

    async def _send(self, outgoing: Sequence[Outgoing], base: int) -> list[asyncio.Future[PubAck]]:
        # The i-th message expects base + i: if one is refused, every later one is too, so the
        # stream never holds a message out of order.
        return [
            await self.js.publish_async(
                message.subject, message.payload, headers=_expecting(message, base + index)
            )
            for index, message in enumerate(outgoing)
        ]


def _expecting(message: Outgoing, sequence: int) -> dict[str, str]:
    return {**message.headers, headers.EXPECTED_LAST_SEQUENCE: str(sequence)}


async def _log_error(error: Exception) -> None:
    # The client's default prints a traceback per failed attempt; one line names the cause.
    logger.warning("nats: %s: %s", type(error).__name__, error)


async def connect(url: str) -> Client:
    """A connection that reconnects for ever (a broker restart is waited out, not fatal)."""
    return await nats.connect(
        url,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
        connect_timeout=2,
        allow_reconnect=True,
        error_cb=_log_error,
    )


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[Client]:
    """``connect``, closed when the block ends."""
    client = await connect(url)
    try:
        yield client
    finally:
        await client.close()


async def run_relay(
    log: EventLog,
    guard: CommitOrderGuard,
    url: str,
    spec: StreamSpec,
    stop: threading.Event,
    *,
    poll_interval: float = 0.02,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_relay: Callable[[Relay], None] | None = None,
) -> None:
    """Relay until ``stop`` is set; a broker or store failure is retried with back-off."""
    client: Client | None = None
    relay: Relay | None = None
    failures = 0
    try:
        while not stop.is_set():
            try:
                if client is None or relay is None:
                    client = client or await _connect_unless_stopped(url, stop)
                    if client is None:
                        break
                    relay = Relay(log, guard, client.jetstream(), spec, batch_size=batch_size)
                    if on_relay is not None:
                        on_relay(relay)
                published = await relay.relay_batch()
            except Exception as error:  # logged and retried: the stream says where to resume
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 0.05 * 2 ** min(failures, 10))
                logger.warning(
                    "relay: %s: %s; retrying in %.2fs", type(error).__name__, error, delay
                )
                await _sleep_unless_stopped(delay, stop)
                continue
            failures = 0
            if not published:
                await asyncio.sleep(poll_interval)
    finally:
        if client is not None:
            await client.close()


async def _sleep_unless_stopped(seconds: float, stop: threading.Event) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not stop.is_set() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(STOP_CHECK_SECONDS)


async def _connect_unless_stopped(url: str, stop: threading.Event) -> Client | None:
    """``connect`` (which waits for an unreachable broker for ever), given up when stopped."""
    attempt = asyncio.ensure_future(connect(url))
    while not attempt.done():
        if stop.is_set():
            attempt.cancel()
            return None
        await asyncio.wait({attempt}, timeout=STOP_CHECK_SECONDS)
    return attempt.result()


class RelayThread:
    """Runs the relay in a background thread of this process (the server's optional mode)."""

    def __init__(self, log: EventLog, guard: CommitOrderGuard, url: str, spec: StreamSpec) -> None:
        self._stop = threading.Event()
        self.relay: Relay | None = None
        self._thread = threading.Thread(
            target=lambda: asyncio.run(
                run_relay(log, guard, url, spec, self._stop, on_relay=self._keep)
            ),
            name="creditledger-relay",
            daemon=True,
        )

    def _keep(self, relay: Relay) -> None:
        self.relay = relay

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def relayed(self) -> int | None:
        """The log position the stream holds up to (None until the relay has looked)."""
        return None if self.relay is None else self.relay.relayed

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


def start_relay_thread(
    ledger: CreditLedger, views: ViewDatabase, settings: Settings
) -> RelayThread:
    """The relay in the server's process, reading the log as the server's projector does."""
    thread = RelayThread(EventLog(ledger), views.guard(), settings.nats_url, stream_spec(settings))
    thread.start()
    return thread
