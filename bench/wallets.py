"""Customers' credit wallets for the synthetic logs the benchmarks bulk-load.

creditledger writes a purchase's ``Initiated`` and the grant in the customer's wallet
(``GrantAdded``) in one transaction, so a log the ledger could have written has each purchase's
first event followed by its grant, the wallet's versions rising in log order. ``Wallets`` makes
those grants with the real aggregate, as ``CreditLedger.initiate`` does.
"""

from __future__ import annotations

from uuid import UUID

from creditledger.domain.events import Initiated, WalletEvent
from creditledger.domain.identity import wallet_id_for
from creditledger.domain.wallet import CreditWallet, WalletContext


class Wallets:
    """Every wallet of a synthetic log, kept while the log is made (a grant needs its version)."""

    def __init__(self) -> None:
        self._wallets: dict[UUID, CreditWallet] = {}

    def grant(self, initiated: Initiated) -> list[WalletEvent]:
        """The wallet event that makes the purchase's credit spendable, as the ledger writes it
        with ``initiated``: call in log order."""
        wallet_id = wallet_id_for(initiated.namespace, initiated.customer_id, initiated.currency)
        wallet = self._wallets.get(wallet_id)
        if wallet is None:
            wallet = CreditWallet(
                wallet_id, initiated.namespace, initiated.customer_id, initiated.currency
            )
            self._wallets[wallet_id] = wallet
        wallet.add_grant(initiated, WalletContext(at=initiated.timestamp))
        return wallet.collect_events()

    def __len__(self) -> int:
        return len(self._wallets)
