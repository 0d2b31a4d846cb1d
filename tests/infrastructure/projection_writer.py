"""A writer process for the projection tests: races other writers on shared purchases.

``python -m tests.infrastructure.projection_writer URL SEED COMMANDS`` issues ``COMMANDS``
commands against the store at ``URL``: initiates with idempotency keys shared by every writer
(racing creates collide on version 1), and authorizes and settles of those same purchases
(racing changes collide too). Every collision is a rolled-back insert: a hole in the log's ids.
Refusals (already authorized, not found yet...) are part of the race and are ignored.
"""

from __future__ import annotations

import random
import sys
import time

from eventsourcing.persistence import PersistenceError

from creditledger.application.commands import (
    AuthorizePayment,
    InitiatePurchase,
    SettlementInput,
    SettlePayment,
)
from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import LedgerError
from creditledger.domain.identity import purchase_id_for_key
from creditledger.infrastructure.bootstrap import open_ledger

SHARED_KEYS = 40


def open_when_free(url: str, rng: random.Random) -> CreditLedger:
    # The library creates its tables (and replaces a function) on every open; processes opening
    # at the same instant can collide there ("tuple concurrently updated"). Try again.
    for _ in range(20):
        try:
            return open_ledger(url)
        except PersistenceError:
            time.sleep(rng.uniform(0.01, 0.2))
    return open_ledger(url)


def main(url: str, seed: int, commands: int) -> None:
    rng = random.Random(seed)
    with open_when_free(url, rng) as ledger:
        for _ in range(commands):
            key = f"race-{rng.randrange(SHARED_KEYS)}"
            purchase_id = purchase_id_for_key("race", key)
            action = rng.choice(("initiate", "initiate", "authorize", "settle"))
            try:
                if action == "initiate":
                    ledger.initiate(
                        InitiatePurchase(
                            namespace="race",
                            customer_id=f"cust-{rng.randrange(4)}",
                            currency="USD",
                            credit_amount="10",
                            cost_basis="0.5",
                            settlement=SettlementInput(type="external"),
                            idempotency_key=key,
                        )
                    )
                elif action == "authorize":
                    ledger.authorize(AuthorizePayment(namespace="race", purchase_id=purchase_id))
                else:
                    ledger.settle(SettlePayment(namespace="race", purchase_id=purchase_id))
            except LedgerError:
                continue


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
