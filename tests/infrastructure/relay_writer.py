"""A writer process for the relay tests: many purchases, plus races that leave holes in the ids.

``python -m tests.infrastructure.relay_writer URL SEED PURCHASES`` initiates, authorizes and
settles ``PURCHASES`` purchases of its own in two namespaces, and between them races the other
writers on a few shared idempotency keys (each lost race is a rolled-back insert: a hole).
"""

from __future__ import annotations

import random
import sys

from creditledger.application.commands import (
    AuthorizePayment,
    InitiatePurchase,
    SettlementInput,
    SettlePayment,
)
from creditledger.domain.errors import LedgerError
from tests.infrastructure.projection_writer import open_when_free

SHARED_KEYS = 20


def main(url: str, seed: int, purchases: int) -> None:
    rng = random.Random(seed)
    with open_when_free(url, rng) as ledger:
        for index in range(purchases):
            shared = index % 10 == 0
            key = f"race-{rng.randrange(SHARED_KEYS)}" if shared else f"w{seed}-{index}"
            try:
                purchase = ledger.initiate(
                    InitiatePurchase(
                        namespace=rng.choice(("acme", "globex")),
                        customer_id=f"cust-{rng.randrange(8)}",
                        currency=rng.choice(("USD", "EUR")),
                        credit_amount=str(rng.randrange(1, 500)),
                        cost_basis="0.37",
                        settlement=SettlementInput(type="external"),
                        idempotency_key=key,
                    )
                ).purchase
                if rng.random() < 0.8:
                    ledger.authorize(
                        AuthorizePayment(namespace=purchase.namespace, purchase_id=purchase.id)
                    )
                    ledger.settle(
                        SettlePayment(namespace=purchase.namespace, purchase_id=purchase.id)
                    )
            except LedgerError:
                continue


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
