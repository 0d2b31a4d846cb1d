"""The state machine with the read models checked after every step, on every store.

The views are fed by the projector thread of ``open_read_models``, as in the service, and the
machine waits for them after each step (``ReadModels.wait_until``). Examples are bounded so the
three stores together stay well under a minute here.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from creditledger.application.ledger import CreditLedger
from creditledger.application.testing import settings_for
from creditledger.application.testing.profiles import Target
from creditledger.application.testing.read_models import ReadModelHandle, ReadModelMachine
from creditledger.infrastructure.bootstrap import open_ledger, open_read_models
from tests.stores import postgres_url, truncate_schema

EXAMPLES = {"memory": 15, "sqlite": 5, "postgres": 4}
STEPS = 20


def bounded(target: Target) -> settings:
    """The profile's settings, capped: every step here also waits for a projector."""
    base = settings_for(target)
    return settings(
        base,
        max_examples=min(base.max_examples, EXAMPLES[target]),
        stateful_step_count=min(base.stateful_step_count, STEPS),
    )


class WithReadModels(ReadModelMachine):
    def make_read_models(self, ledger: CreditLedger) -> ReadModelHandle:
        return open_read_models(ledger)


class StoreWithReadModels(WithReadModels):
    restartable = True

    def store_url(self) -> str:
        raise NotImplementedError

    def make_ledger(self) -> CreditLedger:
        self.url = self.store_url()
        return open_ledger(self.url, clock=self.clock, ids=self.ids)

    def reopen_ledger(self) -> CreditLedger:
        return open_ledger(self.url, clock=self.clock, ids=self.ids)


def test_the_read_models_follow_the_model_in_memory() -> None:
    class InMemory(WithReadModels):
        def make_ledger(self) -> CreditLedger:
            return open_ledger("memory://", clock=self.clock, ids=self.ids)

    run_state_machine_as_test(InMemory, settings=bounded("memory"))


def test_the_read_models_follow_the_model_on_sqlite(tmp_path: Path) -> None:
    files = itertools.count()

    class OnSQLite(StoreWithReadModels):
        def store_url(self) -> str:
            return f"sqlite:///{tmp_path / f'ledger-{next(files)}.sqlite'}"

    run_state_machine_as_test(OnSQLite, settings=bounded("sqlite"))


@pytest.mark.postgres
def test_the_read_models_follow_the_model_on_postgresql(postgres_session_schema: str) -> None:
    class OnPostgreSQL(StoreWithReadModels):
        def store_url(self) -> str:
            truncate_schema(postgres_session_schema)
            return postgres_url(postgres_session_schema)

    run_state_machine_as_test(OnPostgreSQL, settings=bounded("postgres"))
