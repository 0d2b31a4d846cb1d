"""The domain layer does no I/O: no store, network, files, environment or clock.

Checked two ways: statically, over every import and call in ``domain/``; and dynamically, by
importing the whole domain in a fresh interpreter and looking at what got loaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"

# iso4217 reads its own packaged XML table once at import; that is data, not I/O of ours.
ALLOWED_ROOTS = {
    "__future__",
    "bisect",
    "collections",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "functools",
    "json",
    "re",
    "typing",
    "uuid",
    "pydantic",
    "iso4217",
    "creditledger",
}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "getenv", "open", "urandom", "uuid1", "uuid4"}
# (Not "socket": pydantic imports the stdlib email package, which imports socket; the static
# tests above already show the domain itself never touches it.)
FORBIDDEN_MODULES = (
    "sqlite3",
    "psycopg",
    "asyncio",
    "http.client",
    "urllib.request",
    "eventsourcing.persistence",
    "eventsourcing.application",
    "fastapi",
    "typer",
    "creditledger.infrastructure",
    "creditledger.application",
)


def _sources() -> list[Path]:
    return sorted(DOMAIN.rglob("*.py"))


def test_the_domain_imports_only_pure_modules() -> None:
    offenders = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {name}" for name in names if name.split(".")[0] not in ALLOWED_ROOTS
            ]
    assert offenders == []


def test_the_domain_reads_no_clock_environment_or_files() -> None:
    offenders = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in FORBIDDEN_CALLS:
                    offenders.append(f"{path.name}:{node.lineno} {name}()")
            if isinstance(node, ast.Attribute) and node.attr == "environ":
                offenders.append(f"{path.name}:{node.lineno} environ")
    assert offenders == []


def test_importing_the_whole_domain_loads_no_io_module() -> None:
    modules = [f"creditledger.domain.{path.stem}" for path in _sources() if path.stem != "__init__"]
    script = (
        "import json, sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout)
    leaked = [
        module
        for module in loaded
        if any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN_MODULES)
    ]
    assert leaked == []
