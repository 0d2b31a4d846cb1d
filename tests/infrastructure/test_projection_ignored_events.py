"""Events every model of a runner ignores are moved past without being read back, and nothing
the views hold changes for it: on a log of every event kind, each model alone, the three the
parent of a catch-up apart keeps, and all four, project the same rows and positions as when
every event is read and applied."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.ledger import LedgerProjection
from creditledger.application.projections.purchases import PurchasesProjection
from creditledger.application.projections.receivables import ReceivablesProjection
from creditledger.application.projections.revenue import SettledRevenueProjection
from creditledger.application.projections.rows import ReadModelName, ReadModelSnapshot
from creditledger.application.projections.source import EventLog
from creditledger.domain.events import EVENT_CLASSES, GrantAdded, GrantRevoked, GrantVoided
from creditledger.infrastructure.projections.layout import live_layout
from creditledger.infrastructure.projections.runner import ProjectionRunner
from creditledger.infrastructure.projections.sqlite import SqliteViewDatabase
from tests.application.audit_support import populate, populate_credit_changes, populate_wallet
from tests.clock import FixedClock

PROJECTIONS = (
    LedgerProjection,
    PurchasesProjection,
    ReceivablesProjection,
    SettledRevenueProjection,
)
LEDGER = ReadModelName.LEDGER
MODEL_SETS = [
    *((model,) for model in ReadModelName),
    tuple(model for model in ReadModelName if model is not LEDGER),
    tuple(ReadModelName),
]


def _project(
    ledger: CreditLedger, path: Path, models: tuple[ReadModelName, ...]
) -> ReadModelSnapshot:
    database = SqliteViewDatabase(str(path))
    try:
        # Batches of 3: some end with an ignored event, some hold nothing else.
        runner = ProjectionRunner(
            EventLog(ledger), database, layout=live_layout(models), batch_size=3
        )
        assert runner.catch_up() == EventLog(ledger).head()
        return database.snapshot()
    finally:
        database.close()


@pytest.mark.parametrize("models", MODEL_SETS, ids=lambda models: "+".join(m.value for m in models))
def test_moving_past_ignored_events_projects_what_applying_them_does(
    ledger: CreditLedger,
    clock: FixedClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    models: tuple[ReadModelName, ...],
) -> None:
    populate(ledger, clock)
    populate_wallet(ledger, clock)
    populate_credit_changes(ledger, clock)
    topics = Counter(n.topic for n in EventLog(ledger).read(0, 10_000))
    # Every kind of event, the three every model ignores among them.
    assert set(topics) == set(EVENT_CLASSES)

    skipping = _project(ledger, tmp_path / "skipping.sqlite", models)
    for projection in PROJECTIONS:
        monkeypatch.setattr(projection, "ignores", frozenset())
    applying = _project(ledger, tmp_path / "applying.sqlite", models)

    assert skipping == applying


def test_every_model_ignores_what_the_purchase_events_carry() -> None:
    ignored_by_all = frozenset.intersection(*(p.ignores for p in PROJECTIONS))
    assert ignored_by_all == {GrantAdded, GrantVoided, GrantRevoked}
