"""Replaying exported credit-wallet events through the domain's own ``CreditWallet.apply``.

Every rule the aggregate enforces live refuses a forged history here too: a consumption drawing
more than a grant holds, or from a grant expired, voided or used up; an expiry of the wrong amount
or at the wrong time; a void of the wrong amount; a version gap. The fold adds what the aggregate
takes on trust from its own decisions: each event names its wallet's namespace, customer and
currency (and the wallet's id is derived from them), time never runs backwards within a wallet, a
consumption happens at its recording time, draws exactly what the burn-down order gives
(``CreditWallet.draw``, the rule ``consume`` decides with; unchanged since wallets exist, so
older exports are held to it too) and states the balance left after it. Ledger entries come from
``creditledger.domain.ledger.wallet_entries`` (``wallet_postings`` without the routing; a grant's
terms route a posting by cost basis, which balances do not need).

Memory: one ``CreditWallet`` per (namespace, customer, currency) met, holding only its *open*
grants (something can still be drawn from or forfeited). A grant used
up, expired or voided can never move again, so the fold forgets it (the aggregate would keep it
forever, and every keyed consumption's record for retries, which an auditor does not answer). So
memory grows with the number of wallets and of grants still open, not with the log's length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import assert_never
from uuid import UUID

from creditledger.application.audit.findings import fail
from creditledger.domain.errors import CreditsNotGrantedError, LedgerError
from creditledger.domain.events import (
    CreditsConsumed,
    GrantAdded,
    GrantExpired,
    GrantRevoked,
    GrantVoided,
    Initiated,
    WalletEvent,
)
from creditledger.domain.identity import wallet_id_for
from creditledger.domain.ledger import Entry, wallet_entries
from creditledger.domain.wallet import CreditWallet, Grant

ZERO = Decimal(0)

WalletKey = tuple[str, str, str]
"""(namespace, customer id, currency): whose wallet."""


@dataclass(slots=True)
class _FoldedWallet:
    wallet: CreditWallet

    @property
    def key(self) -> WalletKey:
        wallet = self.wallet
        return (wallet.namespace, wallet.customer_id, wallet.currency)


class WalletFold:
    """The credit wallets that a run of exported wallet events adds up to.

    Wallets are keyed by their id exactly as the export writes it (lowercase, hyphenated).
    """

    def __init__(
        self,
        *,
        partial_history_allowed: bool,
        on_forget: Callable[[UUID, Grant], None] | None = None,
    ) -> None:
        """``on_forget``: told of each closed grant the fold forgets, as it was last."""
        # As for purchases: an export starting after the log's beginning meets wallets in the
        # middle of their history; those are set aside (their balances are not compared).
        self.partial_history_allowed = partial_history_allowed
        self._on_forget = on_forget
        self.partial: set[str] = set()
        self.partial_events = 0
        self._wallets: dict[str, _FoldedWallet] = {}

    def apply(
        self, position: int, wallet_id: str, event: WalletEvent, terms: Initiated | None
    ) -> list[Entry] | None:
        """Replay one event; its ledger entries, or None if its wallet's history is partial.

        ``terms``: for a ``GrantAdded``, its purchase's ``Initiated`` (None only when that lies
        before a partial export's start). Raises ``VerificationFailedError`` naming ``position``.
        """
        if wallet_id in self.partial:
            self.partial_events += 1
            return None
        folded = self._wallets.get(wallet_id)
        if self.partial_history_allowed and (
            (folded is None and event.originator_version > 1)
            or (isinstance(event, GrantAdded) and terms is None)
        ):
            self._set_aside(wallet_id)
            return None
        if folded is None:
            folded = self._new_wallet(position, wallet_id, event)
        wallet = folded.wallet
        if (event.namespace, event.customer_id, event.currency) != folded.key:
            namespace, customer, currency = folded.key
            raise fail(
                "wallet_mismatch",
                f"{event.TYPE.value} v{event.originator_version} names customer "
                f"{event.customer_id!r} in {event.currency} of namespace {event.namespace!r}; "
                f"wallet {wallet_id} is {customer!r}'s in {currency} of {namespace!r}",
                position,
            )
        if wallet.updated_at is not None and event.timestamp < wallet.updated_at:
            raise fail(
                "wallet_time_reversed",
                f"{event.TYPE.value} v{event.originator_version} of wallet {wallet_id} is "
                f"recorded at {event.timestamp.isoformat()}, before the wallet's previous event "
                f"({wallet.updated_at.isoformat()})",
                position,
            )
        # The burn-down decision is the wallet's as it stood before the consumption: taken now,
        # compared once the aggregate's own checks (what each grant holds) have passed.
        decided = _decided(wallet, event) if isinstance(event, CreditsConsumed) else None
        try:
            wallet.apply(event)
            entries = [entry for _, _, entry in wallet_entries(event)]
        except CreditsNotGrantedError as error:
            # The fold forgets closed grants: say what the aggregate would have said of one.
            raise fail(
                "event_sequence_broken",
                f"{event.TYPE.value} v{event.originator_version} of wallet {wallet_id} cannot be "
                f"replayed: {error.detail} (never granted to it, or its credit is closed: used "
                "up, expired or voided)",
                position,
            ) from None
        except LedgerError as error:
            raise fail(
                error.code,
                f"{event.TYPE.value} v{event.originator_version} of wallet {wallet_id} cannot be "
                f"replayed: {error.detail}",
                position,
            ) from None
        if isinstance(event, CreditsConsumed):
            self._check_consumption(position, wallet_id, folded, event)
            _check_allocations(position, wallet_id, event, decided)
        self._forget_closed(folded, event)
        return entries

    def _new_wallet(self, position: int, wallet_id: str, event: WalletEvent) -> _FoldedWallet:
        if str(event.originator_id) != wallet_id:
            raise fail(
                "malformed_line",
                f"wallet id {wallet_id!r} is not written as lowercase hyphenated hex",
                position,
            )
        derived = wallet_id_for(event.namespace, event.customer_id, event.currency)
        if derived != event.originator_id:
            raise fail(
                "wallet_mismatch",
                f"wallet {wallet_id} is not the wallet of customer {event.customer_id!r} in "
                f"{event.currency} of namespace {event.namespace!r} (that is {derived})",
                position,
            )
        wallet = CreditWallet(
            event.originator_id, event.namespace, event.customer_id, event.currency
        )
        folded = self._wallets[wallet_id] = _FoldedWallet(wallet)
        return folded

    def _set_aside(self, wallet_id: str) -> None:
        self._wallets.pop(wallet_id, None)
        self.partial.add(wallet_id)
        self.partial_events += 1

    @staticmethod
    def _check_consumption(
        position: int, wallet_id: str, folded: _FoldedWallet, event: CreditsConsumed
    ) -> None:
        # The live wallet decides at its recording time, and states what it left spendable.
        if event.consumed_at != event.timestamp:
            raise fail(
                "wallet_time_reversed",
                f"consumption {event.consumption_id} of wallet {wallet_id} says it happened at "
                f"{event.consumed_at.isoformat()}, but was recorded at "
                f"{event.timestamp.isoformat()}",
                position,
            )
        left = folded.wallet.balance(event.consumed_at)
        if event.balance_after != left:
            raise fail(
                "balance_after_mismatch",
                f"consumption {event.consumption_id} of wallet {wallet_id} says "
                f"{event.balance_after} was left, the wallet's grants leave {left}",
                position,
            )

    def grant(self, wallet_id: str, purchase_id: UUID) -> Grant | None:
        """A grant the fold still holds (None once closed and forgotten, or never met)."""
        folded = self._wallets.get(wallet_id)
        return folded.wallet.grants.get(purchase_id) if folded is not None else None

    def _forget_closed(self, folded: _FoldedWallet, event: WalletEvent) -> None:
        match event:
            case GrantAdded():
                return
            case CreditsConsumed():
                touched = [allocation.purchase_id for allocation in event.allocations]
                # Records for answering retries: an auditor answers none.
                folded.wallet.consumptions.clear()
            case GrantExpired() | GrantVoided() | GrantRevoked():
                touched = [event.purchase_id]
            case _:
                assert_never(event)
        grants = folded.wallet.grants
        for purchase_id in touched:
            grant = grants.get(purchase_id)
            # The aggregate's own criterion for a grant that can no longer move.
            if grant is not None and (grant.closed or grant.remaining <= 0):
                del grants[purchase_id]
                if self._on_forget is not None:
                    self._on_forget(purchase_id, grant)

    def attach(self, on_forget: Callable[[UUID, Grant], None] | None) -> None:
        """Tell ``on_forget`` of closed grants from now on (None: nobody, as before pickling)."""
        self._on_forget = on_forget

    # -- what the fold adds up to ---------------------------------------------------------------

    def remaining(self) -> dict[WalletKey, Decimal]:
        """Per wallet, the sum over its grants of what remains (closed grants hold nothing)."""
        return {
            folded.key: sum((grant.remaining for grant in folded.wallet.grants.values()), ZERO)
            for folded in self._wallets.values()
        }

    @property
    def wallet_count(self) -> int:
        return len(self._wallets)

    @property
    def open_grant_count(self) -> int:
        return sum(len(folded.wallet.grants) for folded in self._wallets.values())


def _decided(wallet: CreditWallet, event: CreditsConsumed) -> list[tuple[UUID, Decimal]] | str:
    """What the wallet's burn-down rule draws for this consumption (``CreditWallet.draw``,
    the live path's own decision), or why it draws nothing."""
    try:
        return wallet.draw(event.amount, event.consumed_at, event.feature_key)
    except LedgerError as error:
        return error.detail


def _check_allocations(
    position: int,
    wallet_id: str,
    event: CreditsConsumed,
    decided: list[tuple[UUID, Decimal]] | str | None,
) -> None:
    """A consumption draws what the burn-down order gives: the spendable grants (open, not due,
    matching its feature) by priority, expiry, grant time and id, each up to what it holds. Each
    grant holding what the event drew is not enough: drawing from the wrong grant moves credit
    between purchases (and their breakage, refunds and failures) while every balance adds up."""
    drawn = [(allocation.purchase_id, allocation.amount) for allocation in event.allocations]
    if drawn == decided:
        return
    if isinstance(decided, str):
        rule = f"the burn-down order draws nothing: {decided}"
    else:
        rule = f"the burn-down order draws {_listed(decided or [])}"
    raise fail(
        "allocation_mismatch",
        f"consumption {event.consumption_id} of wallet {wallet_id} drew {_listed(drawn)}; "
        f"over the wallet's spendable grants{_for_feature(event.feature_key)} {rule}",
        position,
    )


def _listed(allocations: list[tuple[UUID, Decimal]]) -> str:
    return "[" + ", ".join(f"{amount} from {purchase}" for purchase, amount in allocations) + "]"


def _for_feature(feature_key: str | None) -> str:
    return f" for feature {feature_key!r}" if feature_key is not None else ""
