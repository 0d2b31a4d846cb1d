"""The SQLite application recorder, with an append-only events table.

Triggers, created with the table (and added to a store made before them), refuse every UPDATE and
DELETE of a stored event: the log is the truth, and nothing the service or anyone with the file
runs through SQL may rewrite it without first dropping a trigger (which an audit against a
checkpoint would still catch). SQLite has no TRUNCATE; ``DELETE`` without a WHERE is refused too.
"""

from __future__ import annotations

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
