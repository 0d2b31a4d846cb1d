"""The aggregate against the reference model, on the domain alone: no store, many examples.

Random initiations followed by random authorize and settle commands, decided once by the
``CreditPurchase`` aggregate and once by the model reading the transition table's JSON; after
every command both must agree on the events recorded or the error raised, and on the state.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditledger.application.commands import AuthorizePayment, InitiatePurchase, SettlePayment
from creditledger.application.purchase_view import PurchaseView
from creditledger.application.testing.clock import DEFAULT_START
from creditledger.application.testing.machine import differences, state_of
from creditledger.application.testing.model import LedgerModel, ModelPurchase
from creditledger.application.testing.profiles import settings_for
from creditledger.application.testing.strategies import (
    clock_advances,
    external_references,
    valid_initiations,
)
from creditledger.domain.errors import LedgerError
from creditledger.domain.purchase import CommandContext, CreditPurchase

PURCHASE_ID = UUID("00000000-0000-4000-8000-000000000001")

payment_commands = st.lists(
    st.tuples(st.booleans(), external_references(), clock_advances()), max_size=6
)


def _agree(purchase: CreditPurchase, known: ModelPurchase) -> None:
    diff = differences(state_of(PurchaseView.of(purchase)), known.state())
    assert not diff, diff


@settings_for("domain")
@given(request=valid_initiations(keys=st.none()), commands=payment_commands)
def test_the_aggregate_decides_every_command_as_the_reference_model_does(
    request: InitiatePurchase, commands: list[tuple[bool, str | None, timedelta]]
) -> None:
    model = LedgerModel()
    now = DEFAULT_START
    verdict = model.judge_initiate(request)
    purchase = CreditPurchase.initiate(PURCHASE_ID, request.intent(now), CommandContext(at=now))
    recorded = [event.TYPE.value for event in purchase.collect_events()]
    assert verdict.accepted
    assert recorded == list(verdict.events)
    known = model.record_initiate(request, verdict, PURCHASE_ID, now)
    _agree(purchase, known)

    for settle, reference, pause in commands:
        now += pause
        kind = SettlePayment if settle else AuthorizePayment
        command = kind(
            namespace=request.namespace, purchase_id=PURCHASE_ID, external_reference=reference
        )
        verdict = model.judge_payment(command)
        context = CommandContext(at=now, external_reference=reference)
        decide = purchase.settle_payment if settle else purchase.authorize_payment
        if verdict.error is not None:
            with pytest.raises(LedgerError) as refused:
                decide(context)
            assert refused.value.code == verdict.error
            assert purchase.collect_events() == [], "a refused command recorded events"
        else:
            decide(context)
            recorded = [event.TYPE.value for event in purchase.collect_events()]
            assert recorded == list(verdict.events)
            model.record_payment(command, verdict, now)
        _agree(purchase, known)
