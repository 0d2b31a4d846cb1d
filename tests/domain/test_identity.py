"""Ids derived rather than drawn: purchase ids from idempotency keys, ledger transaction groups."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from creditledger.domain.errors import ValidationFailedError
from creditledger.domain.identity import LedgerStep, purchase_id_for_key, transaction_group_id
from creditledger.domain.intent import normalize_intent

PURCHASE = UUID("3f0b1c52-9a4e-4d7b-8c21-5e6f7a8b9c0d")


def test_a_key_derives_the_same_purchase_id_every_time() -> None:
    assert purchase_id_for_key("acme", "order-1") == purchase_id_for_key("acme", "order-1")


def test_the_same_key_in_another_namespace_derives_another_purchase_id() -> None:
    assert purchase_id_for_key("acme", "order-1") != purchase_id_for_key("globex", "order-1")


def test_no_namespace_can_contain_the_separator_so_namespace_and_key_never_blur() -> None:
    # ("a", "b/c") and ("a/b", "c") would derive one id; "a/b" is therefore not a namespace.
    with pytest.raises(ValidationFailedError) as refused:
        normalize_intent(
            now=datetime(2026, 1, 1, tzinfo=UTC),
            namespace="a/b",
            customer_id="cust-1",
            currency="USD",
            credit_amount="1",
            settlement_type="promotional",
        )

    assert refused.value.codes == {"invalid_namespace"}


def test_different_keys_derive_different_purchase_ids() -> None:
    assert purchase_id_for_key("acme", "order-1") != purchase_id_for_key("acme", "order-2")


def test_the_derivation_is_stable_across_releases() -> None:
    # Stored purchases were found by this id: changing the derivation would orphan them.
    assert purchase_id_for_key("acme", "order-1") == UUID("fee2dfa5-b376-5f59-a94c-1a8a50907e06")


def test_each_ledger_step_of_a_purchase_has_its_own_stable_transaction_group() -> None:
    groups = {step: transaction_group_id(PURCHASE, step) for step in LedgerStep}

    assert len(set(groups.values())) == len(LedgerStep)
    assert groups == {step: transaction_group_id(PURCHASE, step) for step in LedgerStep}


def test_the_same_step_of_two_purchases_has_two_transaction_groups() -> None:
    other = UUID("3f0b1c52-9a4e-4d7b-8c21-5e6f7a8b9c0e")

    assert transaction_group_id(PURCHASE, LedgerStep.CREDIT_GRANT) != transaction_group_id(
        other, LedgerStep.CREDIT_GRANT
    )
