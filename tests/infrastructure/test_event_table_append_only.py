"""The events table is append-only at the database, for every role (issue 16, point 11).

Triggers, created with the table, refuse UPDATE, DELETE and (PostgreSQL) TRUNCATE; the service
itself, run as a role with only the rights docs/postgresql-role.md grants, still works.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.bootstrap import open_ledger, open_read_models
from tests.application.builders import external_purchase
from tests.stores import POSTGRES_URL, postgres_schema, postgres_url

REFUSED = "the events table is append-only"


def _refusals_on_sqlite(path: Path) -> list[str]:
    refusals = []
    with closing(sqlite3.connect(path)) as connection:
        for statement in ("UPDATE stored_events SET topic = topic", "DELETE FROM stored_events"):
            with pytest.raises(sqlite3.DatabaseError) as refused:
                connection.execute(statement)
            refusals.append(str(refused.value))
    return refusals


def _refusals_on_postgres(schema: str) -> list[str]:
    table = sql.Identifier(schema, "creditledger_events")
    statements = (
        sql.SQL("UPDATE {} SET topic = topic").format(table),
        sql.SQL("DELETE FROM {}").format(table),
        sql.SQL("TRUNCATE {}").format(table),
    )
    refusals = []
    # As the superuser: the triggers bind every role, the table's owner included.
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        for statement in statements:
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
                connection.execute(statement)
            refusals.append(str(refused.value))
    return refusals


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_every_change_to_a_stored_event_is_refused(
    ledger: CreditLedger, store_url: str, backend: str
) -> None:
    ledger.initiate(external_purchase())

    if backend == "sqlite":
        refusals = _refusals_on_sqlite(Path(store_url.removeprefix("sqlite:///")))
    else:
        refusals = _refusals_on_postgres(store_url.rsplit("schema=", 1)[-1])

    assert len(refusals) == (2 if backend == "sqlite" else 3)
    assert all(REFUSED in refusal for refusal in refusals)
    # The purchase's Initiated and its wallet's GrantAdded, both untouched.
    assert len(list(ledger.recorder.select_notifications(1, 10))) == 2


@pytest.fixture
def service_role() -> Iterator[str]:
    name = f"creditledger_service_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE ROLE "{name}" LOGIN')
    yield name
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'DROP OWNED BY "{name}"')
        connection.execute(f'DROP ROLE "{name}"')


def _grant_service_rights(schema: str, role: str) -> None:
    """docs/postgresql-role.md's grants, word for word."""
    grants = (Path(__file__).parents[2] / "docs" / "postgresql-role.md").read_text()
    sql = grants.split("```sql", 1)[1].split("```", 1)[0]
    sql = sql.replace("creditledger_service", role).replace("ledger_schema", schema)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        for statement in sql.split(";"):
            lines = [line for line in statement.splitlines() if not line.startswith("--")]
            if "".join(lines).strip() and "CREATE ROLE" not in statement:
                connection.execute("\n".join(lines))


def _may_append(schema: str, role: str) -> bool:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        row = connection.execute(
            "SELECT has_function_privilege(%s, %s, 'EXECUTE')",
            (role, f'"{schema}".creditledger_events_append(uuid[], bigint[], text[], bytea[])'),
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.usefixtures("postgres_session_schema")
def test_the_service_runs_as_a_role_without_ddl_or_update_rights(service_role: str) -> None:
    with postgres_schema() as schema:
        owner_url = postgres_url(schema)
        with open_ledger(owner_url) as ledger, open_read_models(ledger, run_projector=False):
            pass  # made by the owner, once
        may_append_before_grants = _may_append(schema, service_role)
        _grant_service_rights(schema, service_role)
        service_url = owner_url.replace("postgres@", f"{service_role}@", 1)

        with open_ledger(service_url) as ledger:
            created = ledger.initiate(external_purchase())
            with open_read_models(ledger, run_projector=False) as views:
                views.runner.catch_up()
                listed = views.read_models.position()
            events = sql.Identifier(schema, "creditledger_events")
            with psycopg.connect(service_url.split("?")[0], autocommit=True) as connection:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    connection.execute(sql.SQL("DELETE FROM {}").format(events))
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    connection.execute(
                        sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(schema, "x"))
                    )

    assert not may_append_before_grants  # the append function is not PUBLIC's
    assert created.created
    assert listed == 2  # the Initiated and its GrantAdded
