"""Taking credit back from a grant (``CreditWallet.revoke``): a failed payment takes everything that
remains, a refund the amount refunded; what was consumed stays consumed, and revoked credit is
never spendable again. ``apply`` refuses revocations that do not fit the grant."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from creditledger.domain.consumption import normalize_consumption
from creditledger.domain.errors import (
    CreditGrantExpiredError,
    CreditsNotGrantedError,
    EventSequenceError,
    InsufficientCreditError,
)
from creditledger.domain.events import GrantExpired, GrantRevoked
from creditledger.domain.status import RevocationCause
from creditledger.domain.wallet import CreditWallet, WalletContext
from tests.domain.purchases import NOW, Lifecycle

FAILED = RevocationCause.PAYMENT_FAILED
REFUND = RevocationCause.REFUND
AT = WalletContext(at=NOW + timedelta(hours=1))


def spend(wallet: CreditWallet, amount: str, at: WalletContext = AT) -> None:
    request = normalize_consumption(
        namespace="acme", customer_id="cust-1", currency="USD", amount=amount
    )
    wallet.consume(uuid4(), request, at)


def test_a_failed_payment_takes_back_everything_that_remains() -> None:
    lifecycle = Lifecycle.start()
    wallet, purchase_id = lifecycle.wallet, lifecycle.purchase.id
    spend(wallet, "30")
    wallet.collect_events()

    revoked = wallet.revoke(purchase_id, None, FAILED, AT)

    assert isinstance(revoked, GrantRevoked)
    assert (revoked.purchase_id, revoked.amount, revoked.cause) == (
        purchase_id,
        Decimal(70),
        FAILED,
    )
    assert wallet.collect_events() == [revoked]
    grant = wallet.grants[purchase_id]
    assert (grant.consumed, grant.revoked, grant.remaining) == (
        Decimal(30),
        Decimal(70),
        Decimal(0),
    )
    assert wallet.balance(AT.at) == 0
    assert wallet.spendable(AT.at) == []


def test_a_refund_takes_back_only_its_amount_and_the_rest_stays_spendable() -> None:
    lifecycle = Lifecycle.start()
    wallet, purchase_id = lifecycle.wallet, lifecycle.purchase.id

    wallet.revoke(purchase_id, Decimal(25), REFUND, AT)
    wallet.revoke(purchase_id, Decimal(25), REFUND, AT)

    assert wallet.grants[purchase_id].revoked == 50
    assert wallet.available(AT.at) == 50
    with pytest.raises(InsufficientCreditError) as refused:
        spend(wallet, "50.01")
    assert Decimal(refused.value.available) == 50
    spend(wallet, "50")
    assert wallet.grants[purchase_id].remaining == 0


def test_revoked_credit_leaves_the_other_grants_alone() -> None:
    lifecycle = Lifecycle.start()
    other = Lifecycle.start()
    wallet = lifecycle.wallet
    wallet.add_grant(other.initiated, AT)

    wallet.revoke(lifecycle.purchase.id, None, FAILED, AT)

    assert wallet.available(AT.at) == 100
    assert [grant.purchase_id for grant in wallet.spendable(AT.at)] == [other.purchase.id]


def test_nothing_remaining_records_nothing() -> None:
    lifecycle = Lifecycle.start()
    wallet, purchase_id = lifecycle.wallet, lifecycle.purchase.id
    spend(wallet, "100")
    wallet.collect_events()

    assert wallet.revoke(purchase_id, None, FAILED, AT) is None
    assert wallet.collect_events() == []


def test_an_expiry_due_is_recorded_first_and_leaves_nothing_to_revoke() -> None:
    expires_at = NOW + timedelta(minutes=30)
    lifecycle = Lifecycle.start(expires_at=expires_at)
    wallet, purchase_id = lifecycle.wallet, lifecycle.purchase.id
    spend(wallet, "30", WalletContext(at=NOW + timedelta(minutes=1)))
    wallet.collect_events()

    assert wallet.revoke(purchase_id, None, FAILED, AT) is None

    (expired,) = wallet.collect_events()
    assert isinstance(expired, GrantExpired)
    assert (expired.amount, expired.effective_at) == (Decimal(70), expires_at)


def test_more_than_remains_cannot_be_taken_back() -> None:
    lifecycle = Lifecycle.start()
    wallet, purchase_id = lifecycle.wallet, lifecycle.purchase.id
    spend(wallet, "30")
    wallet.collect_events()

    with pytest.raises(EventSequenceError):
        wallet.revoke(purchase_id, Decimal("70.01"), REFUND, AT)
    with pytest.raises(EventSequenceError):
        wallet.revoke(purchase_id, Decimal(-1), REFUND, AT)
    assert wallet.collect_events() == []
    assert wallet.grants[purchase_id].remaining == 70


def test_a_grant_the_wallet_does_not_hold_cannot_be_revoked() -> None:
    lifecycle = Lifecycle.start()

    with pytest.raises(CreditsNotGrantedError):
        lifecycle.wallet.revoke(uuid4(), None, FAILED, AT)


class TestApplyGuards:
    def revocation(
        self, wallet: CreditWallet, purchase_id: object, amount: str, cause: RevocationCause
    ) -> GrantRevoked:
        return GrantRevoked(
            originator_id=wallet.id,
            originator_version=wallet.version + 1,
            timestamp=AT.at,
            namespace=wallet.namespace,
            customer_id=wallet.customer_id,
            currency=wallet.currency,
            purchase_id=purchase_id,
            amount=Decimal(amount),
            cause=cause,
        )

    def test_a_payment_failure_that_leaves_credit_behind_is_refused(self) -> None:
        lifecycle = Lifecycle.start()
        wallet = lifecycle.wallet

        with pytest.raises(EventSequenceError):
            wallet.apply(self.revocation(wallet, lifecycle.purchase.id, "99", FAILED))
        assert wallet.grants[lifecycle.purchase.id].revoked == 0

    @pytest.mark.parametrize("amount", ["100.01", "0", "-5"])
    def test_a_revocation_that_does_not_fit_the_grant_is_refused(self, amount: str) -> None:
        lifecycle = Lifecycle.start()
        wallet = lifecycle.wallet

        with pytest.raises(EventSequenceError):
            wallet.apply(self.revocation(wallet, lifecycle.purchase.id, amount, REFUND))
        assert wallet.grants[lifecycle.purchase.id].remaining == 100

    def test_a_revocation_after_the_grant_expired_is_refused(self) -> None:
        lifecycle = Lifecycle.start(expires_at=NOW + timedelta(minutes=30))
        wallet = lifecycle.wallet

        with pytest.raises(CreditGrantExpiredError):
            wallet.apply(self.revocation(wallet, lifecycle.purchase.id, "10", REFUND))

    def test_a_revocation_of_a_voided_grant_is_refused(self) -> None:
        lifecycle = Lifecycle.start()
        lifecycle.consume("30")
        lifecycle.void()
        wallet = lifecycle.wallet

        with pytest.raises(EventSequenceError):
            wallet.apply(self.revocation(wallet, lifecycle.purchase.id, "10", REFUND))
