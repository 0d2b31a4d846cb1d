"""The SQLite application recorder, with an append-only events table.

Triggers, created with the table (and added to a store made before them), refuse every UPDATE and
DELETE of a stored event: the log is the truth, and nothing the service or anyone with the file
runs through SQL may rewrite it without first dropping a trigger (which an audit against a
checkpoint would still catch). SQLite has no TRUNCATE; ``DELETE`` without a WHERE is refused too.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.sqlite import SQLiteApplicationRecorder

APPEND_ONLY_MESSAGE = "the events table is append-only: {} refused"


class AppendOnlySQLiteRecorder(SQLiteApplicationRecorder):
    """``APPLICATION_RECORDER_TOPIC`` for the ledger's SQLite store."""

    def construct_create_table_statements(self) -> list[str]:
        table = self.events_table_name
        return [
            *super().construct_create_table_statements(),
            *(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} "
                f"BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE.format(operation)}'); END"
                for operation in ("UPDATE", "DELETE")
            ),
        ]

    def select_log_rows(
        self, after: int, up_to: int, limit: int, topics: Sequence[str] = ()
    ) -> list[tuple[int, str, int, str, bytes]]:
        """Up to ``limit`` stored events with ``after < position <= up_to``, oldest first, as
        plain rows: (position, originator id, version, topic, state), the id as stored (the
        library stores a UUID as 32 lowercase hex digits; the reader hyphenates it, which costs
        less in Python, with ids repeating, than SQLite's string functions on every row).
        ``select_notifications`` without a ``Notification`` or ``UUID`` per row."""
        # The table's name is the recorder's own; every value is a parameter.
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {self.events_table_name} WHERE rowid > ? AND rowid <= ? "
            + (f"AND topic IN ({','.join('?' * len(topics))}) " if topics else "")
            + "ORDER BY rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as cursor:
            rows = cursor.sqlite_cursor
            rows.row_factory = None  # plain tuples, not sqlite3.Row
            rows.execute(statement, [after, up_to, *topics, limit])
            return rows.fetchall()

    def select_first_events(
        self, after: str | None, up_to: int, limit: int, topic: str
    ) -> list[tuple[str, bytes]]:
        """Up to ``limit`` aggregates whose first event (version 1) has ``topic`` and a position
        at or below ``up_to``, in ascending id order, after the id ``after`` (as returned: the
        id as stored; None to start): (id as stored, state). Keyset pagination over the primary
        key (originator id, version), never a sort; the id is stored as 32 lowercase hex digits,
        whose order is the ``UUID``s'."""
        # The table's name is the recorder's own; every value is a parameter.
        statement = (
            f"SELECT originator_id, state FROM {self.events_table_name} "  # noqa: S608
            + ("WHERE originator_id > ? AND " if after is not None else "WHERE ")
            + "originator_version = 1 AND topic = ? AND rowid <= ? "
            "ORDER BY originator_id LIMIT ?"
        )
        params = [*([after] if after is not None else []), topic, up_to, limit]
        with self.datastore.transaction(commit=False) as cursor:
            rows = cursor.sqlite_cursor
            rows.row_factory = None  # plain tuples, not sqlite3.Row
            rows.execute(statement, params)
            return rows.fetchall()
