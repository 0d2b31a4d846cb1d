"""The aggregate against the reference model, on the domain alone: no store, many examples.

Random initiations followed by random authorize, settle, invoice, failure and refund commands,
decided once by the ``CreditPurchase`` aggregate and once by the model reading the transition
table's JSON; after every command both must agree on the events recorded or the error raised,
and on the state. (No wallet here: what a failure or a refund needs to know of the grant is
handed to the aggregate from the model's own wallet, which nothing else changes.)
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditledger.application.commands import (
    AuthorizePayment,
    CreateInvoice,
    FailPayment,
    InitiatePurchase,
    RefundPayment,
    SettlePayment,
)
from creditledger.application.purchase_view import PurchaseView
from creditledger.application.testing.clock import DEFAULT_START
from creditledger.application.testing.machine import differences, state_of
from creditledger.application.testing.model import MINOR_UNITS, LedgerModel, ModelPurchase
from creditledger.application.testing.profiles import settings_for
from creditledger.application.testing.strategies import (
    clock_advances,
    external_references,
    valid_initiations,
)
from creditledger.domain.errors import LedgerError
from creditledger.domain.money import round_money
from creditledger.domain.purchase import CommandContext, CreditPurchase, GrantOutcome

PURCHASE_ID = UUID("00000000-0000-4000-8000-000000000001")
KINDS = ("authorize", "settle", "invoice_created", "fail", "refund")

payment_commands = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        external_references(),
        clock_advances(),
        st.none() | st.integers(1, 10**4),  # a refund's minor units (None: everything)
    ),
    max_size=8,
)


def _agree(purchase: CreditPurchase, known: ModelPurchase) -> None:
    diff = differences(state_of(PurchaseView.of(purchase)), known.state())
    assert not diff, diff


@settings_for("domain")
@given(request=valid_initiations(keys=st.none()), commands=payment_commands)
def test_the_aggregate_decides_every_command_as_the_reference_model_does(
    request: InitiatePurchase, commands: list[tuple[str, str | None, timedelta, int | None]]
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

    for kind, reference, pause, units in commands:
        now += pause
        command = _command(kind, request, reference, units)
        verdict = model.judge(command, now)
        context = CommandContext(at=now, external_reference=reference)
        if verdict.error is not None:
            with pytest.raises(LedgerError) as refused:
                _decide(purchase, model, command, context)
            assert refused.value.code == verdict.error
            assert purchase.collect_events() == [], "a refused command recorded events"
        else:
            _decide(purchase, model, command, context)
            recorded = [event.TYPE.value for event in purchase.collect_events()]
            assert recorded == list(verdict.events)
            model.record(command, verdict, now)
        _agree(purchase, known)


def _command(
    kind: str, request: InitiatePurchase, reference: str | None, units: int | None
) -> AuthorizePayment | SettlePayment | CreateInvoice | FailPayment | RefundPayment:
    common = {
        "namespace": request.namespace,
        "purchase_id": PURCHASE_ID,
        "external_reference": reference,
    }
    if kind == "invoice_created":
        return CreateInvoice.model_validate({**common, "invoice_id": "inv", "line_id": "line"})
    if kind == "fail":
        return FailPayment.model_validate({**common, "reason": "card_declined"})
    if kind == "refund":
        places = MINOR_UNITS[request.currency]
        amount = None if units is None else str(Decimal(units).scaleb(-places))
        return RefundPayment.model_validate({**common, "amount": amount})
    return (SettlePayment if kind == "settle" else AuthorizePayment).model_validate(common)


def _decide(
    purchase: CreditPurchase,
    model: LedgerModel,
    command: AuthorizePayment | SettlePayment | CreateInvoice | FailPayment | RefundPayment,
    context: CommandContext,
) -> None:
    # What the grant holds, as the model's wallet says (nothing consumes it here).
    wallet = model.wallets.get(model.purchases[PURCHASE_ID].wallet)
    grant = None if wallet is None else wallet.remaining_after_due_expiries(PURCHASE_ID, context.at)
    match command:
        case AuthorizePayment():
            purchase.authorize_payment(context)
        case SettlePayment():
            purchase.settle_payment(context)
        case CreateInvoice():
            purchase.create_invoice(command.invoice_id, command.line_id, context)
        case FailPayment():
            outcome = None
            if grant is not None:
                forfeited = grant.expired + grant.voided
                outcome = GrantOutcome(grant.consumed, forfeited, grant.remaining)
            purchase.fail_payment(outcome, command.reason, context)
        case RefundPayment():
            amount = None
            if command.amount is not None:
                amount = round_money(Decimal(str(command.amount)), purchase.intent.currency)
            remaining = grant.remaining if grant is not None else Decimal(0)
            purchase.refund(amount, remaining, context, command.reason)
