"""The state machine against a real ledger on SQLite and on PostgreSQL, restarts included.

Each example gets an empty store (a new SQLite file; the session's PostgreSQL schema emptied),
and may close its ledger and open another on the same store mid-history.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis.stateful import run_state_machine_as_test

from creditledger.application.ledger import CreditLedger
from creditledger.application.testing import CreditPurchaseMachine, settings_for
from creditledger.infrastructure.bootstrap import open_ledger
from tests.stores import postgres_url, truncate_schema


class StoreMachine(CreditPurchaseMachine):
    """A machine whose store outlives its ledger: ``store_url()`` names a fresh one."""

    restartable = True

    def store_url(self) -> str:
        raise NotImplementedError

    def make_ledger(self) -> CreditLedger:
        self.url = self.store_url()
        return open_ledger(self.url, clock=self.clock, ids=self.ids)

    def reopen_ledger(self) -> CreditLedger:
        return open_ledger(self.url, clock=self.clock, ids=self.ids)


def test_the_ledger_on_sqlite_behaves_as_the_reference_model_says(tmp_path: Path) -> None:
    files = itertools.count()

    class OnSQLite(StoreMachine):
        def store_url(self) -> str:
            return f"sqlite:///{tmp_path / f'ledger-{next(files)}.sqlite'}"

    run_state_machine_as_test(OnSQLite, settings=settings_for("sqlite"))


@pytest.mark.postgres
def test_the_ledger_on_postgresql_behaves_as_the_reference_model_says(
    postgres_session_schema: str,
) -> None:
    class OnPostgreSQL(StoreMachine):
        def store_url(self) -> str:
            truncate_schema(postgres_session_schema)
            return postgres_url(postgres_session_schema)

    run_state_machine_as_test(OnPostgreSQL, settings=settings_for("postgres"))
