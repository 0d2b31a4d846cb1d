"""What the figures were measured on: a benchmark figure means little without its machine."""

from __future__ import annotations

import os
import platform
import sqlite3
from importlib.metadata import version

import psycopg

from bench.stores import postgres_connect, postgres_problem


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _postgres_version() -> str:
    problem = postgres_problem()
    if problem is not None:
        return f"unavailable ({problem})"
    with postgres_connect() as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine makes figures noisy."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine_facts() -> dict[str, str]:
    return {
        "cores": str(os.cpu_count() or "unknown"),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "eventsourcing": version("eventsourcing"),
        "pydantic": version("pydantic"),
        "psycopg": psycopg.__version__,
        "postgresql": _postgres_version(),
        "sqlite": sqlite3.sqlite_version,
        "load average at start": load_average(),
    }
