"""The settled revenue read model: payments settled per namespace, currency and UTC day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date
from decimal import Context, Decimal
from typing import assert_never

from creditledger.application.projections.projection import (
    Projection,
    PurchaseTerms,
    Recorded,
    WalletRecorded,
)
from creditledger.application.projections.rows import ReadModelName, RevenueRow, Tables
from creditledger.application.projections.store import TableStore
from creditledger.domain.events import (
    WALLET_EVENT_CLASSES,
    CreditsConsumed,
    GrantAdded,
    GrantExpired,
    GrantRevoked,
    GrantVoided,
    Initiated,
    InvoiceCreated,
    PaymentAuthorized,
    PaymentFailed,
    PaymentRefunded,
    PaymentSettled,
    PurchaseVoided,
)
from creditledger.domain.money import payment_amount

# A day's total of amounts below 10^18 with up to 18 decimals needs more than the default 28
# digits; in this context no sum of them rounds.
_EXACT_SUM = Context(prec=80, Emax=999, Emin=-999)


def utc_day(event: PaymentSettled | PaymentRefunded) -> date:
    return event.at.astimezone(UTC).date()


class SettledRevenueProjection(Projection):
    # It needs only the revenue rows of a store: the stream's report consumer applies it to
    # its own database (infrastructure/relay/revenue_report.py).
    name = ReadModelName.SETTLED_REVENUE
    # Settled revenue is what was paid; spending credit does not change it.
    ignores = frozenset(WALLET_EVENT_CLASSES)

    def prefetch(self, batch: Sequence[Recorded], terms: PurchaseTerms, store: TableStore) -> None:
        keys = set()
        for recorded in batch:
            if isinstance(recorded.event, PaymentSettled | PaymentRefunded):
                initiated = terms.of(recorded.event)
                keys.add((initiated.namespace, utc_day(recorded.event), initiated.currency))
        store.load(Tables.REVENUE, keys)

    def apply_wallet(
        self, recorded: WalletRecorded, terms: PurchaseTerms, store: TableStore
    ) -> None:
        match recorded.event:
            case GrantAdded() | CreditsConsumed() | GrantExpired() | GrantVoided() | GrantRevoked():
                return  # settled revenue is what was paid; spending credit does not change it
            case _:
                assert_never(recorded.event)

    def apply(self, recorded: Recorded, terms: Initiated, store: TableStore) -> None:
        event = recorded.event
        match event:
            case PaymentSettled():
                if terms.cost_basis is None:  # pragma: no cover - promotional never settles
                    return
                # What the customer paid: the amount the payment was authorized for, computed
                # the same way (credit amount x cost basis, rounded once to the currency).
                paid = payment_amount(terms.credit_amount, terms.cost_basis, terms.currency)
                self._add(store, terms, utc_day(event), settled=(paid, terms.credit_amount))
            case PaymentRefunded():
                # Booked on the refund's day: a report of a past day never changes.
                self._add(store, terms, utc_day(event), refunded=event.cash_amount)
            case (
                Initiated()
                | PaymentAuthorized()
                | PurchaseVoided()
                | InvoiceCreated()
                | PaymentFailed()
            ):
                return  # revenue is what settled, less what was refunded; nothing else moves it
            case _:
                assert_never(event)

    @staticmethod
    def _add(
        store: TableStore,
        terms: Initiated,
        day: date,
        settled: tuple[Decimal, Decimal] | None = None,
        refunded: Decimal | None = None,
    ) -> None:
        row = store.get(Tables.REVENUE, (terms.namespace, day, terms.currency))
        zero = Decimal(0)
        paid, credits = settled or (zero, zero)
        store.put(
            Tables.REVENUE,
            RevenueRow(
                namespace=terms.namespace,
                currency=terms.currency,
                day=day,
                amount=_EXACT_SUM.add(row.amount if row else zero, paid),
                credits=_EXACT_SUM.add(row.credits if row else zero, credits),
                settlements=(row.settlements if row else 0) + (1 if settled else 0),
                refunded=_EXACT_SUM.add(row.refunded if row else zero, refunded or zero),
                refunds=(row.refunds if row else 0) + (1 if refunded is not None else 0),
            ),
        )
