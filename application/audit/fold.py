"""Replaying exported events through the domain, in log order, in one pass.

Every event is read back exactly as the live path reads it (the event class for its name, upcast
from its stored class version, validated by the model). A purchase event is applied with
``creditledger.domain.purchase.project_purchase`` (the live repository's projector) and booked with
``creditledger.domain.ledger.entries_for`` (``postings_for``'s entries, without the routing every
posting of an event repeats); a credit-wallet event is applied with the domain's
``CreditWallet.apply`` and booked with ``wallet_entries`` (``wallet_postings``'s)
(``creditledger.application.audit.wallets``).
Every event's transaction groups must sum to zero.

The two aggregates are written together where they share a fact, and the fold checks that they
agree (export format 2): a purchase's ``Initiated`` (or an invoice purchase's ``InvoiceCreated``)
and its wallet's ``GrantAdded`` (same amount, cost basis, priority, expiry, filters, grant time;
the wallet of the purchase's customer and currency), a ``PurchaseVoided`` and its
``GrantVoided`` (same amount), a ``PaymentFailed`` that took credit back or a
``PaymentRefunded`` and its ``GrantRevoked`` (same amount, its cause; format 3). Each pair is
one transaction, so in the log the wallet's event comes after its purchase's events of that
transaction and before any other aggregate's (a revocation records its wallet's due expiries
first). A failure must also say what its wallet's grant consumed, and leave the purchase's open
receivable at minus that. At the end, per (namespace, customer, currency): the ledger's FBO
balance equals what remains of the wallet's grants.

Memory: only open purchases stay in memory. A purchase whose status becomes final (paid, or its
payment failed) goes, with its history, to a ``ClosedPurchases`` store
(``creditledger.application.audit.closed``), and comes back only if a later line mentions it (a
void or a refund of its credit does). Wallets keep their open grants only (see
``creditledger.application.audit.wallets``); an open purchase keeps its own grant once its
wallet closed it (it may still fail). So the fold holds the open purchases, one
wallet per (namespace, customer, currency) with its open grants, one balance per (namespace,
customer, currency, account), and nothing that grows with the log's length.

In halves (``creditledger.application.audit.pairing``) a fold replays one aggregate kind, and
writes its side of what the kinds share; the wallet half also keeps, per purchase not yet settled,
failed, voided or refunded, its grant's wallet and the grant once the wallet fold forgot it (for a
failure's comparison): bounded like the open purchases.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any, TypeVar, assert_never, cast
from uuid import UUID

from pydantic import ValidationError

from creditledger.application.audit.closed import (
    ClosedPurchases,
    DuplicatePurchaseError,
    History,
    MemoryClosedPurchases,
    RecordedEvent,
)
from creditledger.application.audit.findings import fail, reason_of
from creditledger.application.audit.pairing import Half, PairingFacts
from creditledger.application.audit.state import (
    BalanceKey,
    LedgerSnapshot,
    Positions,
    state_of_purchase,
)
from creditledger.application.audit.wallets import WalletFold
from creditledger.domain.errors import LedgerError
from creditledger.domain.events import (
    PURCHASE_EVENT_CLASSES,
    WALLET_EVENT_CLASSES,
    GrantAdded,
    GrantExpired,
    GrantRevoked,
    GrantVoided,
    Initiated,
    InvoiceCreated,
    LedgerEvent,
    PaymentAuthorized,
    PaymentFailed,
    PaymentRefunded,
    PaymentSettled,
    PurchaseEvent,
    PurchaseVoided,
    WalletEvent,
)
from creditledger.domain.identity import wallet_id_for
from creditledger.domain.ledger import Account, Entry, entries_for
from creditledger.domain.purchase import CreditPurchase, project_purchase
from creditledger.domain.status import MetaStatus, PurchaseStatus, RevocationCause, Unit
from creditledger.domain.wallet import Grant

EVENT_CLASS_OF_TYPE: dict[str, type[PurchaseEvent]] = {
    cls.TYPE.value: cls for cls in PURCHASE_EVENT_CLASSES
}
WALLET_EVENT_CLASS_OF_TYPE: dict[str, type[WalletEvent]] = {
    cls.TYPE.value: cls for cls in WALLET_EVENT_CLASSES
}

_TYPE_NAMES: dict[type[PurchaseEvent], str] = {
    cls: name for name, cls in EVENT_CLASS_OF_TYPE.items()
}

_Event = TypeVar("_Event", bound=LedgerEvent)

_wallet_id_of = lru_cache(maxsize=4096)(wallet_id_for)
"""``wallet_id_for`` (a ``uuid5``) remembered for the wallets met lately: a customer's purchases
each ask for their wallet's id, and a pure function's answer does not change."""


def decode_event(
    cls: type[_Event], aggregate_id: UUID | str, version: int, data: dict[str, Any]
) -> _Event:
    """The domain event from its stored JSON data, as the store's mapper reads it.

    Consumes ``data`` (upcasting works in place), so pass a dict nobody needs afterwards.
    """
    stored_version = data.pop("class_version", 1)
    while stored_version < cls.class_version:
        getattr(cls, f"upcast_v{stored_version}_v{stored_version + 1}")(data)
        stored_version += 1
    data["originator_id"] = aggregate_id
    data["originator_version"] = version
    # A TypeVar bound to a union: mypy sees the union's classmethod, not ``cls``'s own.
    return cast("_Event", cls.model_validate(data))


def replay_history(purchase_id: str, history: History) -> CreditPurchase:
    """The purchase a history (already verified once) folds into."""
    purchase: CreditPurchase | None = None
    for recorded in history:
        cls = EVENT_CLASS_OF_TYPE[recorded.type]
        event = decode_event(cls, purchase_id, recorded.version, dict(recorded.data))
        purchase = project_purchase(purchase, (event,))
    if purchase is None:  # pragma: no cover - a closed purchase has at least one event
        msg = f"purchase {purchase_id} has an empty history"
        raise ValueError(msg)
    return purchase


@dataclass(slots=True)
class _OpenPurchase:
    purchase: CreditPurchase
    history: list[RecordedEvent]
    closed_grant: Grant | None = None
    """Its grant, once closed in its wallet (used up, expired, voided): the wallet fold forgets
    it, but a failure of this still open purchase must agree with what it consumed."""


class _Pairing(Enum):
    GRANT = GrantAdded
    VOID = GrantVoided
    REVOKE = GrantRevoked


_PairedEvent = Initiated | InvoiceCreated | PurchaseVoided | PaymentFailed | PaymentRefunded
"""A purchase event whose wallet event is written with it."""

_PAIRED_SOURCES = {
    GrantAdded: "Initiated or InvoiceCreated",
    GrantVoided: "PurchaseVoided",
    GrantRevoked: "PaymentFailed or PaymentRefunded",
}


@dataclass(frozen=True, slots=True)
class _Awaited:
    """A purchase event whose wallet event must come with it (same transaction)."""

    pairing: _Pairing
    position: int
    event: _PairedEvent
    initiated: Initiated
    """The purchase's terms (its wallet, the grant's terms)."""

    @property
    def purchase_id(self) -> UUID:
        return self.event.originator_id

    def describe(self) -> str:
        wanted = self.pairing.value.TYPE.value
        return (
            f"the {self.event.TYPE.value} of purchase {self.purchase_id} at position "
            f"{self.position} has no {wanted} written with it"
        )

    @classmethod
    def after(cls, event: PurchaseEvent, position: int, initiated: Initiated) -> _Awaited | None:
        """What ``event`` awaits: the wallet event written in its transaction, if any."""
        match event:
            case Initiated():
                # An invoice purchase grants when its invoice exists, not at initiation.
                if event.credit_grant_transaction_group_id is None:
                    return None
                return cls(_Pairing.GRANT, position, event, initiated)
            case InvoiceCreated():
                return cls(_Pairing.GRANT, position, event, initiated)
            case PurchaseVoided():
                return cls(_Pairing.VOID, position, event, initiated)
            case PaymentFailed():
                # The wallet records nothing when nothing remained to take back.
                if event.revoked <= 0:
                    return None
                return cls(_Pairing.REVOKE, position, event, initiated)
            case PaymentRefunded():
                return cls(_Pairing.REVOKE, position, event, initiated)
            case PaymentAuthorized() | PaymentSettled():
                return None
            case _:
                assert_never(event)

    def expected(self) -> list[tuple[str, object]]:
        """What the wallet event must say, member by member, besides its wallet."""
        event, initiated = self.event, self.initiated
        match event:
            case Initiated() | InvoiceCreated():
                return [
                    ("amount", initiated.credit_amount),
                    ("cost_basis", initiated.cost_basis),
                    ("priority", initiated.priority),
                    ("expires_at", initiated.expires_at),
                    ("feature_filters", initiated.feature_filters),
                    ("granted_at", event.granted_at),
                ]
            case PurchaseVoided():
                return [("amount", event.amount)]
            case PaymentFailed():
                return [("amount", event.revoked), ("cause", RevocationCause.PAYMENT_FAILED)]
            case PaymentRefunded():
                return [("amount", event.amount), ("cause", RevocationCause.REFUND)]
            case _:
                assert_never(event)


_PAIRED_MEMBERS: dict[_Pairing, tuple[str, ...]] = {
    _Pairing.GRANT: (
        "amount",
        "cost_basis",
        "priority",
        "expires_at",
        "feature_filters",
        "granted_at",
    ),
    _Pairing.VOID: ("amount",),
    _Pairing.REVOKE: ("amount", "cause"),
}
"""The members of a paired wallet event that ``_Awaited.expected`` names, in its order."""


_FINAL_TYPES = frozenset(
    cls.TYPE.value for cls in (PaymentSettled, PaymentFailed, PurchaseVoided, PaymentRefunded)
)
"""Purchase events after which the wallet half stops tracking the purchase's grant."""

_DomainBalanceKey = tuple[str, str, str, Account]


@dataclass(frozen=True)
class WalletHalfFold:
    """The wallet half's wallets and balances (``LedgerFold.wallet_half``)."""

    wallets: WalletFold
    balances: dict[_DomainBalanceKey, Decimal]
    positions: dict[_DomainBalanceKey, int]
    first_moved: dict[_DomainBalanceKey, int]


_UNIT_OF: dict[Account, Unit] = {account: account.unit for account in Account}


class LedgerFold:
    """The purchases and balances that a run of exported events adds up to.

    Purchases are keyed by their id exactly as the export writes it (lowercase, hyphenated: a
    purchase's first line must spell it so), which spares parsing a UUID per line.
    """

    def __init__(
        self,
        *,
        partial_history_allowed: bool,
        closed: ClosedPurchases | None = None,
        wallets: bool = True,
        new_ids_checked_late: bool = False,
        half: Half | None = None,
    ) -> None:
        """``wallets``: the export holds the credit wallets' events (format 2), so every grant
        and void of a purchase must come with its wallet's; a version 1 file has none.

        ``new_ids_checked_late``: a purchase's first line (version 1) is not looked up among the
        closed purchases, which a valid log never needs (its id is new) and which costs a read of
        the scratch file per purchase. A reused id is still found, later: when the second
        purchase closes (``ClosedPurchases.add`` refuses an id it holds) or at ``finish`` (an
        open id that is also closed), and fails, though not at the line where a fold that looks
        it up fails. So use it only where a failure is then verified again without it (the fast
        path of ``creditledger.infrastructure.audit.jobs.verify_file``).

        ``half``: fold one aggregate kind only (``creditledger.application.audit.pairing``): the
        purchase half does not replay wallet events, the wallet half no purchase events; each
        writes its side of the pairing comparisons to ``pairing``, and the FBO equation waits
        for ``join_wallet_half``. ``doubt`` says why a half cannot stand for the fold in order
        (a check that needs both kinds' state at once): then verify another way."""
        # An export that starts after the beginning of the log meets purchases in the middle of
        # their history: those are set aside. In a whole-log export that is a gap: an error.
        self.partial_history_allowed = partial_history_allowed
        self.partial: set[str] = set()
        self.partial_events = 0
        self.with_wallets = wallets
        self.wallets = WalletFold(
            partial_history_allowed=partial_history_allowed, on_forget=self._grant_closed
        )
        self.failures = 0
        """Failed payments checked: each left owed exactly what was consumed."""
        self.owed_after_failures: dict[str, Decimal] = {}
        """Per currency: the credit consumed before those failures, still owed."""
        self._awaited: _Awaited | None = None
        self._new_ids_checked_late = new_ids_checked_late
        self._open: dict[str, _OpenPurchase] = {}
        self._closed: ClosedPurchases = closed if closed is not None else MemoryClosedPurchases()
        self._closed_statuses: Counter[str] = Counter()
        # Balances from purchase postings and from wallet postings, apart: a live source that
        # does not book wallet events yet is compared with the first only.
        self._balances: dict[_DomainBalanceKey, Decimal] = {}
        self._wallet_balances: dict[_DomainBalanceKey, Decimal] = {}
        self._balance_positions: dict[_DomainBalanceKey, int] = {}
        self.half = half
        self.pairing = PairingFacts()
        self.doubt: str | None = None
        self._first_moved: dict[_DomainBalanceKey, int] = {}
        """In halves: where each balance first moved (joined, the order of the fold in order)."""
        self._granted: dict[str, tuple[str, int]] = {}
        """The wallet half's: per purchase, its grant's wallet and how many grants it got."""
        self._forgotten: dict[str, Grant] = {}
        """The wallet half's: per purchase, its grant once the wallet fold forgot it."""

    def apply(
        self,
        position: int,
        purchase_id: str,
        version: int,
        cls: type[PurchaseEvent],
        data: dict[str, Any],
    ) -> None:
        """Replay one event; raises ``VerificationFailedError`` naming ``position``."""
        awaited = self._awaited
        if awaited is not None and str(awaited.purchase_id) != purchase_id:
            raise fail(
                f"{awaited.pairing.name.lower()}_missing", awaited.describe(), awaited.position
            )
        if purchase_id in self.partial:
            self.partial_events += 1
            return
        entry = self._entry(purchase_id, version)
        purchase = entry.purchase if entry is not None else None
        if purchase is None and version > 1 and self.partial_history_allowed:
            self.partial.add(purchase_id)
            self.partial_events += 1
            return
        recorded = RecordedEvent(position, version, _TYPE_NAMES[cls], data)
        try:
            event = decode_event(cls, purchase_id, version, dict(data))
        except (ValidationError, TypeError, ValueError, AttributeError) as error:
            raise fail(
                "invalid_event_data",
                f"{cls.TYPE.value} v{version} of purchase {purchase_id} does not read back as "
                f"the domain event: {reason_of(error)}",
                position,
            ) from None
        if purchase is None and str(event.originator_id) != purchase_id:
            raise fail(
                "malformed_line",
                f"purchase id {purchase_id!r} is not written as lowercase hyphenated hex",
                position,
            )
        try:
            purchase = project_purchase(purchase, (event,))
            if purchase is None:  # pragma: no cover - one event always makes a purchase
                raise fail("invalid_event_data", "no purchase", position)
            intent = purchase.intent
            entries = entries_for(intent, event)
        except LedgerError as error:
            raise fail(
                error.code,
                f"{cls.TYPE.value} v{version} of purchase {purchase_id} cannot be replayed: "
                f"{error.detail}",
                position,
            ) from None
        except ValueError as error:
            # Facts the event model lets through but the domain cannot compute with (an unknown
            # currency has no minor unit): found by the fast-path property test.
            raise fail(
                "invalid_event_data",
                f"{cls.TYPE.value} v{version} of purchase {purchase_id} cannot be replayed: "
                f"{error}",
                position,
            ) from None
        routing = (intent.namespace, intent.customer_id, intent.currency)
        self._book(position, routing, entries, self._balances)
        if entry is None:
            entry = self._open[purchase_id] = _OpenPurchase(purchase, [recorded])
        else:
            entry.history.append(recorded)
        self._shared_facts(position, purchase, event, entry.history)
        if purchase.status is not None and purchase.status.meta is MetaStatus.FINAL:
            self._close(position, purchase_id, entry, purchase.status)

    def _close(
        self, position: int, purchase_id: str, entry: _OpenPurchase, status: PurchaseStatus
    ) -> None:
        """Final (paid, or its payment failed) accepts no payment event any more: out of memory
        until a line mentions it again (a void or a refund does)."""
        del self._open[purchase_id]
        try:
            self._closed.add(purchase_id, tuple(entry.history))
        except DuplicatePurchaseError as error:
            raise fail("event_sequence_broken", str(error), position) from None
        self._closed_statuses[status.value] += 1

    def apply_wallet_event(
        self,
        position: int,
        wallet_id: str,
        version: int,
        cls: type[WalletEvent],
        data: dict[str, Any],
    ) -> None:
        """Replay one credit-wallet event; raises ``VerificationFailedError`` naming
        ``position``."""
        try:
            event = decode_event(cls, wallet_id, version, dict(data))
        except (ValidationError, TypeError, ValueError, AttributeError) as error:
            raise fail(
                "invalid_event_data",
                f"{cls.TYPE.value} v{version} of wallet {wallet_id} does not read back as "
                f"the domain event: {reason_of(error)}",
                position,
            ) from None
        if self.half is Half.WALLETS:
            self._say_pairing(position, event)
            terms = None  # a GrantAdded's terms serve partial exports only, never split
        else:
            terms = self._paired(position, event)
        try:
            entries = self.wallets.apply(position, wallet_id, event, terms)
        except ValueError as error:
            # As for purchases: facts the model lets through that the domain cannot compute with.
            raise fail(
                "invalid_event_data",
                f"{cls.TYPE.value} v{version} of wallet {wallet_id} cannot be replayed: {error}",
                position,
            ) from None
        if entries is not None:
            routing = (event.namespace, event.customer_id, event.currency)
            self._book(position, routing, entries, self._wallet_balances)

    def pass_wallet_line(self, position: int, wallet_id: str, type_: str) -> None:
        """The purchase half's part of a wallet line: what the line must say if a purchase event
        awaits it, as ``_paired`` would compare it (``_say_pairing`` writes what it says)."""
        awaited, self._awaited = self._awaited, None
        if awaited is None:
            return  # the line must not be a paired event: the wallet half says if it is one
        initiated = awaited.initiated
        wanted = _wallet_id_of(initiated.namespace, initiated.customer_id, initiated.currency)
        if (
            awaited.pairing is _Pairing.REVOKE
            and type_ == GrantExpired.TYPE.value
            and wallet_id == str(wanted)
        ):
            self._awaited = awaited  # the expiries a revocation records first
            return
        self.pairing.add(
            position, awaited.pairing.name, awaited.purchase_id, wanted, awaited.expected()
        )

    def _say_pairing(self, position: int, event: WalletEvent) -> None:
        """The wallet half's part of a wallet line: what a paired event says."""
        if isinstance(event, GrantAdded):
            purchase_id = str(event.purchase_id)
            known = self._granted.get(purchase_id)
            self._granted[purchase_id] = (str(event.originator_id), known[1] + 1 if known else 1)
        if isinstance(event, GrantAdded | GrantVoided | GrantRevoked):
            pairing = _Pairing(type(event))
            said = [(name, getattr(event, name)) for name in _PAIRED_MEMBERS[pairing]]
            self.pairing.add(position, pairing.name, event.purchase_id, event.originator_id, said)

    def _paired(self, position: int, event: WalletEvent) -> Initiated | None:
        """Check a wallet event against the purchase event it must come with, if any; for a
        ``GrantAdded``, its purchase's ``Initiated`` (None: before a partial export's start)."""
        awaited, self._awaited = self._awaited, None
        if not self.with_wallets:  # pragma: no cover - a version 1 line cannot be a wallet's
            return None
        if awaited is None:
            if not isinstance(event, GrantAdded | GrantVoided | GrantRevoked):
                return None
            purchase_id = str(event.purchase_id)
            if self.partial_history_allowed and (
                purchase_id in self.partial or self.purchase(purchase_id) is None
            ):
                # Its purchase's events lie before the export's start.
                return None
            pairing = _Pairing(type(event)).name.lower()
            raise fail(
                f"{pairing}_unmatched",
                f"{event.TYPE.value} v{event.originator_version} of wallet {event.originator_id} "
                f"for purchase {event.purchase_id} is not written with its purchase's "
                f"{_PAIRED_SOURCES[type(event)]}",
                position,
            )
        initiated = awaited.initiated
        wanted = _wallet_id_of(initiated.namespace, initiated.customer_id, initiated.currency)
        if (
            awaited.pairing is _Pairing.REVOKE
            and isinstance(event, GrantExpired)
            and event.originator_id == wanted
        ):
            # A revocation records the expiries due in its wallet first, in its transaction.
            self._awaited = awaited
            return None
        if not isinstance(event, awaited.pairing.value) or event.purchase_id != awaited.purchase_id:
            raise fail(
                f"{awaited.pairing.name.lower()}_missing", awaited.describe(), awaited.position
            )
        differences: list[tuple[str, object, object]] = []
        if event.originator_id != wanted:
            differences.append(("wallet", event.originator_id, wanted))
        differences += [
            (name, getattr(event, name), expected)
            for name, expected in awaited.expected()
            if getattr(event, name) != expected
        ]
        if differences:
            pairing = awaited.pairing.name.lower()
            shown = "; ".join(
                f"{name} {found} where the purchase says {expected}"
                for name, found, expected in differences
            )
            raise fail(
                f"{pairing}_mismatch",
                f"{event.TYPE.value} v{event.originator_version} for purchase "
                f"{event.purchase_id} does not match its purchase's {awaited.event.TYPE.value} "
                f"(position {awaited.position}): {shown}",
                position,
            )
        return initiated if isinstance(event, GrantAdded) else None

    def _shared_facts(
        self,
        position: int,
        purchase: CreditPurchase,
        event: PurchaseEvent,
        history: list[RecordedEvent],
    ) -> None:
        """What a purchase event shares with its wallet: the wallet event written with it (checked
        when it comes), and what a failure says the customer consumed."""
        if self.with_wallets:
            awaiting = _Awaited.after(event, position, purchase.intent)
            if awaiting is not None:
                self._awaited = awaiting
        if isinstance(event, PaymentFailed):
            self._check_failure(position, purchase, event, history)

    def _check_failure(
        self,
        position: int,
        purchase: CreditPurchase,
        event: PaymentFailed,
        history: list[RecordedEvent],
    ) -> None:
        """A failed payment leaves owed exactly what was consumed: the failure says what its
        wallet's grant consumed, and the purchase's open receivable (its postings over its whole
        history) is minus that."""
        if self.half is Half.PURCHASES:
            # Its grant is the wallet half's: compared through the pairing facts.
            self._say_failure(position, purchase, event)
            grant = None
        else:
            grant = self._grant_of(purchase)
        if grant is not None and grant.consumed != event.consumed:
            raise fail(
                "failure_mismatch",
                f"PaymentFailed v{event.originator_version} of purchase {purchase.id} says "
                f"{event.consumed} was consumed, its wallet's grant says {grant.consumed}",
                position,
            )
        purchase_id = str(purchase.id)
        receivable = sum(
            (
                entry.amount
                for recorded in history
                for entry in entries_for(
                    purchase.intent,
                    decode_event(
                        EVENT_CLASS_OF_TYPE[recorded.type],
                        purchase_id,
                        recorded.version,
                        dict(recorded.data),
                    ),
                )
                if entry.account is Account.CUSTOMER_RECEIVABLE_OPEN
            ),
            Decimal(0),
        )
        if receivable != -event.consumed:
            raise fail(
                "receivable_mismatch",
                f"purchase {purchase.id}'s open receivable after its failure is {receivable}, "
                f"not minus the {event.consumed} consumed",
                position,
            )
        self.failures += 1
        currency = purchase.intent.currency
        owed = self.owed_after_failures
        owed[currency] = owed.get(currency, Decimal(0)) + event.consumed

    def _grant_of(self, purchase: CreditPurchase) -> Grant | None:
        """The purchase's grant as its wallet holds it (None: nothing granted, or its wallet is
        set aside in a partial export)."""
        if not self.with_wallets or purchase.granted is None:
            return None
        intent = purchase.intent
        wallet_id = _wallet_id_of(intent.namespace, intent.customer_id, intent.currency)
        grant = self.wallets.grant(str(wallet_id), purchase.id)
        if grant is not None:
            return grant
        entry = self._open.get(str(purchase.id))
        return entry.closed_grant if entry is not None else None

    def _say_failure(self, position: int, purchase: CreditPurchase, event: PaymentFailed) -> None:
        """The purchase half's side of ``_grant_of``'s comparison: the wallet the grant must be
        in and what it must have consumed (nothing to compare if nothing was granted)."""
        if not self.with_wallets or purchase.granted is None:
            self.pairing.add(position, "failure", str(purchase.id), None, None)
            return
        intent = purchase.intent
        wanted = _wallet_id_of(intent.namespace, intent.customer_id, intent.currency)
        self.pairing.add(position, "failure", str(purchase.id), str(wanted), event.consumed)

    def pass_purchase_line(self, position: int, purchase_id: str, type_: str) -> None:
        """The wallet half's part of a purchase line: for a failure, its side of ``_grant_of``'s
        comparison (``_say_failure``). It knows a purchase's grant from its ``GrantAdded`` until
        the purchase's status can be final; a purchase granted twice it does not claim to know.
        Whatever it does not know makes the digests differ, never a wrong equality."""
        if type_ == PaymentFailed.TYPE.value:
            known = self._granted.get(purchase_id)
            grant = None
            if known is not None and known[1] == 1:
                grant = self.wallets.grant(known[0], UUID(purchase_id))
                if grant is None:
                    grant = self._forgotten.get(purchase_id)
            if grant is None or known is None:
                self.pairing.add(position, "failure", purchase_id, None, None)
            else:
                self.pairing.add(position, "failure", purchase_id, known[0], grant.consumed)
        if type_ in _FINAL_TYPES:
            # Memory: kept while the purchase may still fail, as the purchase half keeps it open.
            self._granted.pop(purchase_id, None)
            self._forgotten.pop(purchase_id, None)

    def _grant_closed(self, purchase_id: UUID, grant: Grant) -> None:
        """The wallet fold forgets a closed grant: an open purchase keeps it (it may still fail)."""
        if self.half is Half.WALLETS:
            # Only while the purchase is tracked: a grant consumed after its purchase settled
            # would otherwise stay here to the end (the memory would grow with the log), and
            # ``pass_purchase_line`` never looks at an untracked purchase's grant.
            if str(purchase_id) in self._granted:
                self._forgotten[str(purchase_id)] = grant
            return
        entry = self._open.get(str(purchase_id))
        if entry is not None:
            entry.closed_grant = grant

    def _book(
        self,
        position: int,
        routing: tuple[str, str, str],
        entries: list[Entry],
        totals: dict[_DomainBalanceKey, Decimal],
    ) -> None:
        """Book one event's entries for (namespace, customer, currency) ``routing``: each
        transaction group must sum to zero. Sums as ``unbalanced_groups`` and ``balances`` of
        the event's postings would (from zero, in entry order), so balances are the same."""
        zero = Decimal(0)
        moves: dict[Account, Decimal] = {}
        for _, account, amount in entries:
            moves[account] = moves.get(account, zero) + amount
        # Each group must sum to zero in each unit, as ``unbalanced_groups`` sums (per (group,
        # unit), the first non-zero sum in the order the entries first name it is reported).
        # Most events book one group of two entries of one unit sharing one id object: spared
        # hashing it (a UUID hashes in Python).
        sums: Iterable[tuple[UUID, Decimal]]
        if (
            len(entries) == 2
            and entries[0][0] is entries[1][0]
            and _UNIT_OF[entries[0][1]] is _UNIT_OF[entries[1][1]]
        ):
            sums = ((entries[0][0], zero + entries[0][2] + entries[1][2]),)
        else:
            groups: dict[tuple[UUID, Unit], Decimal] = {}
            for group, account, amount in entries:
                in_unit = (group, _UNIT_OF[account])
                groups[in_unit] = groups.get(in_unit, zero) + amount
            sums = ((group, total) for (group, _), total in groups.items())
        for group, total in sums:
            if total != 0:
                raise fail(
                    "unbalanced_transaction_group",
                    f"transaction group {group} sums to {total}, not zero",
                    position,
                )
        moved = self._balance_positions
        namespace, customer, currency = routing
        for account, amount in moves.items():
            key = (namespace, customer, currency, account)
            totals[key] = totals[key] + amount if key in totals else amount
            if self.half is not None and key not in moved:
                self._first_moved[key] = position
            moved[key] = position

    def finish(self) -> None:
        """The checks that need the whole export: every pair complete, and the FBO equation."""
        awaited, self._awaited = self._awaited, None
        if awaited is not None:
            raise fail(
                f"{awaited.pairing.name.lower()}_missing", awaited.describe(), awaited.position
            )
        if self._new_ids_checked_late:
            try:
                self._closed.settle()
            except DuplicatePurchaseError as error:
                raise fail("event_sequence_broken", str(error)) from None
            for purchase_id, entry in self._open.items():
                if self._closed.get(purchase_id) is not None:
                    raise fail(
                        "event_sequence_broken",
                        f"purchase {purchase_id} is initiated again after it was closed",
                        entry.history[0].position,
                    )
        if not self.with_wallets or self.partial_history_allowed or self.half is not None:
            # A partial export has partial balances and wallets: nothing to equate. A half has
            # half of them: equated once joined.
            return
        self._check_fbo()

    def join_wallet_half(self, wallet_half: WalletHalfFold) -> None:
        """The purchase half joined with the wallet half's fold (both finished, their pairing
        digests equal): from then on, the fold in order over the same lines. Checks the FBO
        equation (``VerificationFailedError``)."""
        if self.half is not Half.PURCHASES:
            msg = "only the purchase half joins the wallet half"
            raise ValueError(msg)
        self.wallets = wallet_half.wallets
        self.wallets.attach(self._grant_closed)
        self._wallet_balances = dict(wallet_half.balances)
        firsts = dict(self._first_moved)
        for key, at in wallet_half.first_moved.items():
            firsts[key] = min(firsts.get(key, at), at)
        # Each half's balances in the order they first moved, as the fold in order keeps them.
        order = sorted(firsts, key=firsts.__getitem__)
        lasts = self._balance_positions
        self._balance_positions = {
            key: max(lasts.get(key, 0), wallet_half.positions.get(key, 0)) for key in order
        }
        self.half = None
        self._first_moved = {}
        if self.with_wallets and not self.partial_history_allowed:
            self._check_fbo()

    def wallet_half(self) -> WalletHalfFold:
        """What the wallet half's fold adds up to, for ``join_wallet_half`` (in another process:
        picklable)."""
        if self.half is not Half.WALLETS:
            msg = "only the wallet half gives a wallet half"
            raise ValueError(msg)
        self.wallets.attach(None)
        return WalletHalfFold(
            wallets=self.wallets,
            balances=self._wallet_balances,
            positions=self._balance_positions,
            first_moved=self._first_moved,
        )

    def _check_fbo(self) -> None:
        """Per (namespace, customer, currency): the ledger's FBO balance equals what remains of
        the wallet's grants."""
        zero = Decimal(0)
        remaining = self.wallets.remaining()
        fbo = {
            (namespace, customer, currency): amount
            for (namespace, customer, currency, account), amount in self.balances_by_account(
                wallet_postings=True
            ).items()
            if account is Account.CUSTOMER_FBO
        }
        mismatched = [
            (self._balance_positions.get((*key, Account.CUSTOMER_FBO)), key)
            for key in fbo.keys() | remaining.keys()
            if fbo.get(key, zero) != remaining.get(key, zero)
        ]
        if not mismatched:
            return
        position, key = min(mismatched, key=lambda item: (item[0] or 0, item[1]))
        namespace, customer, currency = key
        raise fail(
            "fbo_mismatch",
            f"customer {customer!r} of namespace {namespace!r} holds {fbo.get(key, zero)} "
            f"{currency} in customer_fbo, but the grants of its wallet hold "
            f"{remaining.get(key, zero)}",
            position,
        )

    def _entry(self, purchase_id: str, version: int) -> _OpenPurchase | None:
        """The open purchase a line of ``version`` applies to, reopened if closed; None if new."""
        entry = self._open.get(purchase_id)
        if entry is None and not (version == 1 and self._new_ids_checked_late):
            entry = self._reopened(purchase_id)
        return entry

    def _reopened(self, purchase_id: str) -> _OpenPurchase | None:
        """A closed purchase a line mentions again, back in memory (None if it is not closed)."""
        history = self._closed.take(purchase_id)
        if history is None:
            return None
        purchase = replay_history(purchase_id, history)
        if purchase.status is not None:
            self._closed_statuses[purchase.status.value] -= 1
        entry = self._open[purchase_id] = _OpenPurchase(purchase, list(history))
        return entry

    def namespace_of(self, purchase_id: str) -> str | None:
        entry = self._open.get(purchase_id) or self._reopened(purchase_id)
        return entry.purchase.intent.namespace if entry is not None else None

    def purchase(self, purchase_id: str) -> CreditPurchase | None:
        """The purchase as folded so far (a closed one is replayed from its history)."""
        entry = self._open.get(purchase_id)
        if entry is not None:
            return entry.purchase
        history = self._closed.get(purchase_id)
        return replay_history(purchase_id, history) if history is not None else None

    def _histories(self) -> Iterator[tuple[CreditPurchase, History]]:
        for entry in self._open.values():
            yield entry.purchase, tuple(entry.history)
        for purchase_id, history in self._closed.histories():
            yield replay_history(purchase_id, history), history

    def histories_in_order(self) -> Iterator[tuple[str, CreditPurchase, History]]:
        """Every purchase folded (whole histories only) with its history, in ascending id order
        (the ids as the export writes them: the order of the ``UUID``s too): the open ones,
        sorted, merged with the closed store's. One closed purchase is replayed at a time; an
        open one is the fold's own aggregate, not to be changed."""
        open_ids = iter(sorted(self._open))
        open_id = next(open_ids, None)
        for closed_id, history in self._closed.histories():
            while open_id is not None and open_id < closed_id:
                yield self._open_history(open_id)
                open_id = next(open_ids, None)
            yield closed_id, replay_history(closed_id, history), history
        while open_id is not None:
            yield self._open_history(open_id)
            open_id = next(open_ids, None)

    def _open_history(self, purchase_id: str) -> tuple[str, CreditPurchase, History]:
        entry = self._open[purchase_id]
        return purchase_id, entry.purchase, tuple(entry.history)

    @property
    def purchase_count(self) -> int:
        return len(self._open) + len(self._closed)

    def balances_by_account(self, *, wallet_postings: bool) -> dict[_DomainBalanceKey, Decimal]:
        totals = dict(self._balances)
        if wallet_postings:
            for key, amount in self._wallet_balances.items():
                totals[key] = totals[key] + amount if key in totals else amount
        return totals

    @property
    def balances(self) -> dict[BalanceKey, Decimal]:
        """Every balance, per (namespace, customer, currency, account)."""
        return self.balances_of(wallet_postings=True)

    def balances_of(self, *, wallet_postings: bool) -> dict[BalanceKey, Decimal]:
        """Every balance, with or without what wallet events (consumption, expiry) booked."""
        totals = self.balances_by_account(wallet_postings=wallet_postings)
        return {_balance_key(key): amount for key, amount in totals.items()}

    def positions(self) -> Positions:
        """Where each purchase's events and each balance's last movement are in the export."""
        return Positions(
            purchases={
                purchase.id: [recorded.position for recorded in history]
                for purchase, history in self._histories()
            },
            balances=self.balance_positions(),
        )

    def balance_positions(self) -> dict[BalanceKey, int]:
        """Where each balance last moved in the export."""
        return {_balance_key(key): at for key, at in self._balance_positions.items()}

    def snapshot(self, position: int | None, *, wallet_postings: bool = True) -> LedgerSnapshot:
        """The purchases (whole histories only) and balances, as plain rows; without
        ``wallet_postings``, balances as purchase events alone book them."""
        return LedgerSnapshot(
            purchases={
                purchase.id: state_of_purchase(purchase) for purchase, _ in self._histories()
            },
            balances=self.balances_of(wallet_postings=wallet_postings),
            position=position,
            wallet_postings=wallet_postings,
        )

    def statuses(self) -> dict[str, int]:
        counts = self._closed_statuses + Counter(
            entry.purchase.status.value for entry in self._open.values() if entry.purchase.status
        )
        return dict(sorted(counts.items()))

    def totals(self) -> dict[tuple[str, str], Decimal]:
        """Balances summed per (currency, account): each currency's accounts sum to zero."""
        sums: dict[tuple[str, str], Decimal] = {}
        for (_, _, currency, account), amount in self.balances_by_account(
            wallet_postings=True
        ).items():
            total_key = (currency, account.value)
            sums[total_key] = sums.get(total_key, Decimal(0)) + amount
        return dict(sorted(sums.items()))


def _balance_key(key: _DomainBalanceKey) -> BalanceKey:
    namespace, customer, currency, account = key
    return BalanceKey(namespace, customer, currency, account.value)
