"""The property-test kit: strategies, a reference model and a state machine for the ledger.

Install with ``pip install 'creditledger[testing]'`` (it needs Hypothesis; nothing else in
creditledger does). See ``docs/property-testing.md``.

- ``strategies``: valid and invalid intents, idempotency keys, external references, times;
- ``model``: the reference model (``TransitionTable``, ``LedgerModel``), independent of the
  aggregate; ``model_wallet``: its own credit wallet (burn-down order, feature filters, expiry,
  void), independent of ``creditledger.domain.wallet``; ``model_postings``: the postings it derives;
- ``machine``: ``CreditPurchaseMachine``, to subclass with a ``make_ledger`` and your invariants;
- ``read_models``: ``ReadModelMachine``, the same machine checking the read models after every
  step (subclass with ``make_ledger`` and ``make_read_models``; ``read_models_follow_wallets``
  adds the wallet checks once the read models apply wallet events);
- ``clock``: ``ManualClock``, a thread-safe clock the test moves;
- ``ids``: ``CountingIds``, new ids that are the same in every run of an example;
- ``profiles``: the ``dev``, ``ci`` and ``thorough`` Hypothesis profiles; importing the kit
  loads the one ``HYPOTHESIS_PROFILE`` names (else ``ci`` under ``CI``, else ``dev``), unless a
  profile of yours is already loaded.
"""

from __future__ import annotations

try:
    import hypothesis  # noqa: F401 - fail here, with the fix, rather than deep in an import
except ImportError as error:  # pragma: no cover - the dev install has it
    msg = "creditledger.application.testing needs Hypothesis: pip install 'creditledger[testing]'"
    raise ImportError(msg) from error

from creditledger.application.testing.clock import ManualClock
from creditledger.application.testing.ids import CountingIds
from creditledger.application.testing.machine import (
    CreditPurchaseMachine,
    InvariantViolation,
    check,
)
from creditledger.application.testing.model import LedgerModel, TransitionTable, Verdict
from creditledger.application.testing.profiles import (
    apply_selected_profile,
    budget_for,
    load_profile,
    settings_for,
)
from creditledger.application.testing.read_models import ReadModelMachine
from creditledger.application.testing.strategies import (
    InvalidInitiation,
    invalid_initiations,
    valid_initiations,
)

# HYPOTHESIS_PROFILE takes effect in any project that imports the kit (see profiles).
apply_selected_profile()

__all__ = [
    "CountingIds",
    "CreditPurchaseMachine",
    "InvalidInitiation",
    "InvariantViolation",
    "LedgerModel",
    "ManualClock",
    "ReadModelMachine",
    "TransitionTable",
    "Verdict",
    "apply_selected_profile",
    "budget_for",
    "check",
    "invalid_initiations",
    "load_profile",
    "settings_for",
    "valid_initiations",
]
