from application.commands import AuthorizePayment, InitiatePurchase, SettlementInput, SettlePayment
from application.ledger import CreditLedger


def test_a_purchase_goes_from_pending_to_final(ledger: CreditLedger) -> None:
    view = ledger.initiate_purchase(
        InitiatePurchase(
            namespace="acme",
            customer_id="cust-1",
            currency="USD",
            credit_amount="30",
            cost_basis="0.5",
            settlement=SettlementInput(type="external"),
        )
    )
    assert view.status == "active.payment.pending"
    authorized = ledger.authorize_payment(AuthorizePayment(namespace="acme", purchase_id=view.id))
    assert authorized.status == "active.payment.authorized"
    settled = ledger.settle_payment(SettlePayment(namespace="acme", purchase_id=view.id))
    assert settled.status == "final"
    assert settled.meta_status == "final"
