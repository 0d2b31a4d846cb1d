"""How far a relay running in another process got, read from the stream itself.

The relay keeps no position aside: the stream's last message carries the log position it
relayed (``read_tail``). A server whose relay runs elsewhere (``creditledger relay``, the usual
deployment) reads that tail for /readyz and /metrics, so the lag is visible wherever the relay
runs. The connection is opened on first use, in the server's event loop, and kept.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import nats
from nats.aio.client import Client

from creditledger.infrastructure.relay.stream import StreamSpec, read_tail

WATCH_TIMEOUT_SECONDS = 2.0
"""The longest a readiness probe waits for the broker: an answer, or 'unreachable', fast."""


@dataclass(frozen=True)
class Relayed:
    """The log position the stream holds up to, or why it could not be read."""

    position: int | None
    problem: str | None = None


class StreamWatch:
    """Reads the stream's tail on demand; never raises (a broker outage is a report)."""

    def __init__(self, url: str, spec: StreamSpec) -> None:
        self.url = url
        self.spec = spec
        self._client: Client | None = None

    async def relayed(self) -> Relayed:
        try:
            client = await asyncio.wait_for(self._connected(), WATCH_TIMEOUT_SECONDS)
            tail = await asyncio.wait_for(
                read_tail(client.jetstream(), self.spec), WATCH_TIMEOUT_SECONDS
            )
        except (TimeoutError, OSError, nats.errors.Error, ValueError) as error:
            reason = str(error) or type(error).__name__
            return Relayed(None, f"stream {self.spec.name} at {self.url}: {reason}")
        return Relayed(tail.position)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            await client.close()

    async def _connected(self) -> Client:
        if self._client is None or self._client.is_closed:
            self._client = await nats.connect(
                self.url,
                connect_timeout=WATCH_TIMEOUT_SECONDS,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                error_cb=_ignore,
            )
        return self._client


async def _ignore(error: Exception) -> None:
    # Each probe reports the broker's state itself; the client's own traceback per failed
    # reconnect would only repeat it.
    del error
