"""HTTP load: a few dozen concurrent clients drive whole purchase lifecycles through a real
``creditledger serve`` on loopback; commands per second and p50/p99 latency per backend.

A lifecycle is create (with an Idempotency-Key), authorize, settle: 3 commands, 3 requests,
4 events (the create also writes the grant to the customer's credit wallet). Every client is
an asyncio task on one aiohttp connection pool (one connection each). aiohttp, not httpx: on
this 2-core VM httpx spent 2.8 ms of client CPU per request, more than the server, and the row
measured the client; aiohttp spends about 0.2 ms.
The run is bounded twice: a number of lifecycles and a time limit, whichever comes first. The
server and the clients share the machine (loopback only), so the figures are the whole
system's on this machine, client included, not the server's alone.

Run: ``.venv/bin/python -m bench.http_load [--backends sqlite,postgres] [--clients 32]
[--lifecycles N] [--time-limit SECONDS]``. ``http_load`` and ``http_load_rows`` are what the
bench suite calls.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import aiohttp
from rich.table import Table

from bench.machine import load_average, machine_facts
from bench.report import Row, console
from bench.stores import BACKENDS, Backend, fresh_store, postgres_problem
from bench.timing import Rate, Timing
from creditledger.infrastructure.http.process import ServerProcess

HTTP_BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")
DEFAULT_CLIENTS = 32
DEFAULT_LIFECYCLES: dict[Backend, int] = {"memory": 2000, "sqlite": 1500, "postgres": 1200}
DEFAULT_TIME_LIMIT_SECONDS = 60.0
WARMUP_LIFECYCLES = 20
COMMANDS_PER_LIFECYCLE = 3
CREATE_EVENTS = 2
"""A create writes the purchase's first event and the grant in the customer's wallet."""
NAMESPACE = "load"


@dataclass
class HttpLoad:
    """What one run measured: every command's latency, and every refusal by status and code."""

    backend: Backend
    clients: int
    lifecycles: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    events: int = 0
    """Events the answered commands wrote: 2 per create, 1 per authorize or settle."""
    server_log_tail: str = ""
    server_cpu_seconds: float | None = None
    """CPU time the server process spent during the measured part (Linux): robust to a busy
    machine, where wall-clock rates mostly measure the neighbours."""

    @property
    def server_cpu_ms_per_command(self) -> float | None:
        if self.server_cpu_seconds is None or not self.commands:
            return None
        return self.server_cpu_seconds / self.commands * 1000

    @property
    def commands(self) -> int:
        return len(self.latencies)

    @property
    def commands_per_second(self) -> float:
        return self.commands / self.seconds if self.seconds else 0.0

    def percentile_ms(self, percent: int) -> float:
        if len(self.latencies) < 2:
            return 0.0
        cut = statistics.quantiles(self.latencies, n=100, method="inclusive")[percent - 1]
        return cut * 1000


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far, from /proc (None where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def _purchase(customer: int) -> dict[str, object]:
    return {
        "customer_id": f"load-{customer}",
        "currency": "USD",
        "credit_amount": "100.123",
        "cost_basis": "0.5",
        "settlement": {"type": "external"},
    }


async def _command(
    client: aiohttp.ClientSession,
    load: HttpLoad | None,
    path: str,
    body: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, object] | None:
    """One POST; its JSON answer, or None (the refusal or transport error counted)."""
    started = time.perf_counter()
    try:
        async with client.post(path, json=body, headers=headers) as response:
            content = await response.read()
    except aiohttp.ClientError as error:
        if load is not None:
            load.failures[f"transport {type(error).__name__}"] += 1
        return None
    elapsed = time.perf_counter() - started
    answer = cast(dict[str, object], json.loads(content)) if content else {}
    if response.status >= 300:
        if load is not None:
            load.failures[f"{response.status} {answer.get('code', '?')}"] += 1
        return None
    if load is not None:
        load.latencies.append(elapsed)
    return answer


async def _lifecycle(client: aiohttp.ClientSession, load: HttpLoad | None, number: int) -> bool:
    base = f"/v1/namespaces/{NAMESPACE}/credit-purchases"
    created = await _command(
        client,
        load,
        base,
        _purchase(number),
        {"Idempotency-Key": f"load-{uuid.uuid4()}"},
    )
    if created is None:
        return False
    if load is not None:
        load.events += CREATE_EVENTS
    purchase = f"{base}/{created['id']}"
    for step in ("authorize", "settle"):
        if await _command(client, load, f"{purchase}/{step}") is None:
            return False
        if load is not None:
            load.events += 1
    return True


async def _drive(
    base_url: str, pid: int | None, load: HttpLoad, lifecycles: int, time_limit: float
) -> None:
    connector = aiohttp.TCPConnector(limit=load.clients)
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as client:
        for number in range(WARMUP_LIFECYCLES):  # connections opened, code paths warm
            await _lifecycle(client, None, -1 - number)
        numbers = itertools.count()
        deadline = time.monotonic() + time_limit

        async def one_client() -> None:
            while time.monotonic() < deadline:
                number = next(numbers)
                if number >= lifecycles:
                    return
                if await _lifecycle(client, load, number):
                    load.lifecycles += 1

        cpu_before = _cpu_seconds(pid)
        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(load.clients)))
        load.seconds = time.perf_counter() - started
        cpu_after = _cpu_seconds(pid)
        if cpu_before is not None and cpu_after is not None:
            load.server_cpu_seconds = cpu_after - cpu_before


def http_load(
    backend: Backend,
    *,
    clients: int = DEFAULT_CLIENTS,
    lifecycles: int | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT_SECONDS,
) -> HttpLoad:
    """Start a server on a fresh store of the backend, drive the load, stop it, report."""
    load = HttpLoad(backend=backend, clients=clients)
    count = lifecycles if lifecycles is not None else DEFAULT_LIFECYCLES[backend]
    with (
        fresh_store(backend) as store,
        tempfile.TemporaryDirectory(prefix="creditledger-http-load-") as directory,
        ServerProcess(store.url, Path(directory) / "server.log") as server,
    ):
        asyncio.run(_drive(server.base_url, server.pid, load, count, time_limit))
        if load.failures:
            load.server_log_tail = server.log_tail()
    return load


def http_load_rows(
    backends: Sequence[Backend] = HTTP_BACKENDS, *, clients: int = DEFAULT_CLIENTS
) -> list[Row]:
    """One report row per backend, for the bench suite: commands (and events) per second."""
    rows = []
    for backend in backends:
        title = f"HTTP lifecycles, {clients} clients"
        if backend == "postgres" and (problem := postgres_problem()) is not None:
            rows.append(Row("http", title, backend, "-", None, note=problem))
            continue
        load = http_load(backend, clients=clients)
        timing = Timing(
            operations=load.commands,
            events=load.events,
            seconds=load.seconds,
            commands=load.commands,
        )
        note = f"p50 {load.percentile_ms(50):.1f} ms, p99 {load.percentile_ms(99):.1f} ms"
        if (cpu := load.server_cpu_ms_per_command) is not None:
            note += f", server CPU {cpu:.2f} ms/command"
        if load.failures:
            note += f"; refused: {dict(load.failures)}"
        rows.append(
            Row(
                "http",
                title,
                backend,
                f"{load.lifecycles} lifecycles",
                Rate(f"HTTP commands ({clients} clients)", "command", (timing,)),
                note=note,
            )
        )
    return rows


def _table(loads: list[HttpLoad]) -> Table:
    table = Table(title="HTTP load (loopback; server and clients share the machine)")
    for column in ("backend", "clients", "lifecycles", "commands", "seconds", "commands/s"):
        table.add_column(column, justify="right")
    for column in ("p50 ms", "p99 ms", "server CPU ms/command", "refused"):
        table.add_column(column, justify="right")
    for load in loads:
        table.add_row(
            load.backend,
            str(load.clients),
            str(load.lifecycles),
            str(load.commands),
            f"{load.seconds:.2f}",
            f"{load.commands_per_second:,.0f}",
            f"{load.percentile_ms(50):.1f}",
            f"{load.percentile_ms(99):.1f}",
            "-" if (cpu := load.server_cpu_ms_per_command) is None else f"{cpu:.2f}",
            ", ".join(f"{key}: {value}" for key, value in load.failures.items()) or "-",
        )
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_load", description=__doc__)
    parser.add_argument("--backends", default=",".join(HTTP_BACKENDS))
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS)
    parser.add_argument("--lifecycles", type=int, default=None, help="per backend")
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_SECONDS)
    args = parser.parse_args(argv)
    out = console()
    for key, value in machine_facts().items():
        out.print(f"{key}: {value}")
    loads = []
    for name in args.backends.split(","):
        if name not in BACKENDS:
            parser.error(f"unknown backend {name!r}; use {', '.join(BACKENDS)}")
        backend = cast(Backend, name)
        if backend == "postgres" and (problem := postgres_problem()) is not None:
            out.print(f"postgres skipped: {problem}")
            continue
        loads.append(
            http_load(
                backend,
                clients=args.clients,
                lifecycles=args.lifecycles,
                time_limit=args.time_limit,
            )
        )
    out.print(_table(loads))
    for load in loads:
        if load.server_log_tail:
            out.print(
                f"[bold]{load.backend} server log, last lines:[/bold]\n{load.server_log_tail}"
            )
    out.print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
