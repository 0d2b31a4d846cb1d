"""``projections verify`` compares what two SQLite stores hold, reading rows back only where it
differs (``compare_stored_table``), and must report exactly what comparing the rows reports.

The live SQLite views are changed behind the projector's back in ways that keep a row's meaning
while changing its stored text, that change its meaning, or that break it; each verification
is run twice, comparing stored values and (the dialect offering none) comparing rows, and both
must end the same: the same report, or the same error. Only a SQLite store holds its rows so
(PostgreSQL's arrive as Python values and are compared as rows, which the other tests of verify
cover on every store), so these run on SQLite alone.
"""

from __future__ import annotations

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.source import EventLog
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.operations import verify
from creditledger.infrastructure.projections.sqlite import SqliteDialect
from tests.clock import FixedClock
from tests.infrastructure.test_projection_verify_apart import ONE_PROCESS, tampered

STATEMENTS = {
    # The same rows in other stored text: no difference either way.
    "amount-text": "UPDATE readmodel_ledger_entries SET amount = amount || '0'",
    "group-id-case": "UPDATE readmodel_ledger_entries SET transaction_group_id = "
    "upper(transaction_group_id)",
    # Changed, removed and added rows.
    "version-fraction": "UPDATE readmodel_ledger_entries SET version = version + 0.5 "
    "WHERE line = 0",
    "time-removed": "UPDATE readmodel_receivables SET authorized_at = NULL",
    "entries-removed": "DELETE FROM readmodel_ledger_entries WHERE line = 1",
    "amount-not-a-number": "UPDATE readmodel_ledger_entries SET amount = 'NaN' WHERE line = 0",
    "account-added": "INSERT INTO readmodel_ledger_accounts SELECT namespace, 'cust-x', "
    "currency, account, balance, entries, last_at, last_position, last_line "
    "FROM readmodel_ledger_accounts LIMIT 1",
    # Broken: ids out of the store's key order, a status no purchase has.
    "purchase-id-case": "UPDATE readmodel_purchases SET purchase_id = upper(purchase_id) "
    "WHERE customer_id = 'cust-0'",
    "status-unknown": "UPDATE readmodel_purchases SET status = 'bogus' "
    "WHERE customer_id = 'cust-0'",
}


pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def outcome(database: ViewDatabase, log: EventLog) -> object:
    """The report as data, or the error verification ended with."""
    try:
        return verify(log, database, apart_from=ONE_PROCESS).as_dict(limit=1_000)
    except Exception as error:  # compared, whatever it is
        return (type(error), str(error))


@pytest.mark.parametrize("statement", STATEMENTS.values(), ids=STATEMENTS.keys())
def test_comparing_stored_values_reports_what_comparing_rows_reports(
    ledger: CreditLedger,
    database: ViewDatabase,
    clock: FixedClock,
    statement: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tampered(ledger, database, clock, "sqlite", statement)

    stored = outcome(database, log)
    monkeypatch.setattr(SqliteDialect, "stored_form", None)
    rows = outcome(database, log)

    assert stored == rows


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("amount-text", False),
        ("group-id-case", False),
        ("version-fraction", True),
        ("time-removed", True),
        ("entries-removed", True),
        ("account-added", True),
    ],
)
def test_changed_views_are_found_and_restated_ones_are_not(
    ledger: CreditLedger, database: ViewDatabase, clock: FixedClock, name: str, found: bool
) -> None:
    # The equality above would also hold for a comparison that finds nothing: this one finds.
    log = tampered(ledger, database, clock, "sqlite", STATEMENTS[name])

    report = verify(log, database, apart_from=ONE_PROCESS)

    assert report.ok is not found, report.as_dict()
