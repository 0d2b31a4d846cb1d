"""The transition rules, as one table of data.

For each (settlement type, status, command) the table says which events the command produces, in
order, or which typed error it raises. The aggregate and the command handlers both consult it, the
JSON export and the Mermaid diagram in the README are generated from it, and the property-test kit
reads it as the reference model. A combination with no row is an ``invalid_transition``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from creditledger.domain.status import (
    Command,
    EventType,
    InitialPaymentStatus,
    PurchaseStatus,
    SettlementType,
)

EXTERNAL = SettlementType.EXTERNAL
PROMOTIONAL = SettlementType.PROMOTIONAL
INVOICE = SettlementType.INVOICE
CREATED = PurchaseStatus.CREATED
PENDING = PurchaseStatus.PAYMENT_PENDING
AUTHORIZED = PurchaseStatus.PAYMENT_AUTHORIZED
FINAL = PurchaseStatus.FINAL
FAILED = PurchaseStatus.PAYMENT_FAILED


@dataclass(frozen=True)
class Rule:
    """One row: what ``command`` does to a purchase of ``settlement`` type in ``status``.

    ``status`` is None for a purchase that does not exist yet. Exactly one of ``events`` and
    ``error`` is set. ``steps`` lists OpenMeter's transient ordering statuses that the events pass
    through, for readers who know OpenMeter: they are never at rest here.
    """

    settlement: SettlementType
    status: PurchaseStatus | None
    command: Command
    events: tuple[EventType, ...] = ()
    error: str | None = None
    steps: tuple[PurchaseStatus, ...] = ()

    @property
    def target(self) -> PurchaseStatus | None:
        """The status the purchase rests in after the command, or None for an error row."""
        status = self.status
        for event in self.events:
            status = status_after(self.settlement, event, status)
        return status if self.events else None


STATUS_AFTER: dict[tuple[SettlementType, EventType], PurchaseStatus] = {
    (EXTERNAL, EventType.INITIATED): PENDING,
    (EXTERNAL, EventType.PAYMENT_AUTHORIZED): AUTHORIZED,
    (EXTERNAL, EventType.PAYMENT_SETTLED): FINAL,
    (EXTERNAL, EventType.PAYMENT_FAILED): FAILED,
    # Promotional credit is granted, authorized and settled at once: the ledger books all three.
    (PROMOTIONAL, EventType.INITIATED): FINAL,
    # An invoice purchase waits, nothing granted, until its invoice exists (OpenMeter HEAD).
    (INVOICE, EventType.INITIATED): CREATED,
    (INVOICE, EventType.INVOICE_CREATED): PENDING,
    (INVOICE, EventType.PAYMENT_AUTHORIZED): AUTHORIZED,
    (INVOICE, EventType.PAYMENT_SETTLED): FINAL,
    (INVOICE, EventType.PAYMENT_FAILED): FAILED,
}
"""The status an event leaves a purchase in. Status is only ever derived through this map."""

STATUS_KEEPING_EVENTS = frozenset({EventType.PURCHASE_VOIDED, EventType.PAYMENT_REFUNDED})
"""Events that leave the status as it was: a void forfeits credit and leaves the payment alone;
a refund gives part of a settled payment back, and the purchase stays ``final``."""


def status_after(
    settlement: SettlementType, event: EventType, status: PurchaseStatus | None
) -> PurchaseStatus | None:
    """The status ``event`` leaves a purchase of ``settlement`` type in, coming from ``status``."""
    if event in STATUS_KEEPING_EVENTS:
        return status
    return STATUS_AFTER[(settlement, event)]


INITIATED = (EventType.INITIATED,)
AUTHORIZE = (EventType.PAYMENT_AUTHORIZED,)
SETTLE = (EventType.PAYMENT_SETTLED,)
VOID = (EventType.PURCHASE_VOIDED,)
INVOICE_CREATED = (EventType.INVOICE_CREATED,)
FAIL = (EventType.PAYMENT_FAILED,)
REFUND = (EventType.PAYMENT_REFUNDED,)

RULES: tuple[Rule, ...] = (
    Rule(
        EXTERNAL,
        None,
        Command.INITIATE,
        events=INITIATED,
        steps=(PurchaseStatus.CREATED, PurchaseStatus.INITIAL_CREDIT_GRANT),
    ),
    Rule(PROMOTIONAL, None, Command.INITIATE, events=INITIATED, steps=(PurchaseStatus.CREATED,)),
    Rule(EXTERNAL, PENDING, Command.AUTHORIZE, events=AUTHORIZE),
    # A direct settle of an un-authorized external payment authorizes first, then settles:
    # OpenMeter's "paid" trigger from pending, as two events in that order.
    Rule(
        EXTERNAL,
        PENDING,
        Command.SETTLE,
        events=AUTHORIZE + SETTLE,
        steps=(PurchaseStatus.PAYMENT_PAID_AND_AUTHORIZED, PurchaseStatus.PAYMENT_SETTLED),
    ),
    Rule(EXTERNAL, AUTHORIZED, Command.AUTHORIZE, error="payment_already_authorized"),
    Rule(
        EXTERNAL,
        AUTHORIZED,
        Command.SETTLE,
        events=SETTLE,
        steps=(PurchaseStatus.PAYMENT_SETTLED,),
    ),
    # One error per case: any second authorization is payment_already_authorized, whatever
    # happened since (OpenMeter answers "unsupported operation" or the typed error by accident).
    Rule(EXTERNAL, FINAL, Command.AUTHORIZE, error="payment_already_authorized"),
    Rule(EXTERNAL, FINAL, Command.SETTLE, error="payment_already_settled"),
    Rule(PROMOTIONAL, FINAL, Command.AUTHORIZE, error="invalid_transition"),
    Rule(PROMOTIONAL, FINAL, Command.SETTLE, error="invalid_transition"),
    # A void forfeits what remains of the grant in any resting status and leaves the payment as
    # it was (OpenMeter's VoidPaymentAdjustment is only "none"). Whether anything remains, and
    # whether the grant expired first, is the wallet's to say (nothing_to_void,
    # credit_grant_expired): the status alone cannot tell.
    Rule(EXTERNAL, PENDING, Command.VOID, events=VOID),
    Rule(EXTERNAL, AUTHORIZED, Command.VOID, events=VOID),
    Rule(EXTERNAL, FINAL, Command.VOID, events=VOID),
    Rule(PROMOTIONAL, FINAL, Command.VOID, events=VOID),
    # A payment fails from any status before settlement: the unconsumed credit is revoked, what
    # was consumed stays owed. After settlement money comes back by refund instead.
    Rule(EXTERNAL, PENDING, Command.FAIL, events=FAIL),
    Rule(EXTERNAL, AUTHORIZED, Command.FAIL, events=FAIL),
    Rule(EXTERNAL, FINAL, Command.FAIL, error="payment_already_settled"),
    Rule(PROMOTIONAL, FINAL, Command.FAIL, error="invalid_transition"),
    # Refunds give back part or all of a settled payment, several times, status kept.
    Rule(EXTERNAL, PENDING, Command.REFUND, error="payment_not_settled"),
    Rule(EXTERNAL, AUTHORIZED, Command.REFUND, error="payment_not_settled"),
    Rule(EXTERNAL, FINAL, Command.REFUND, events=REFUND),
    Rule(PROMOTIONAL, FINAL, Command.REFUND, error="invalid_transition"),
    # Invoice settlement, OpenMeter HEAD: created (nothing granted) --invoice_created--> pending
    # (granted) --authorize (invoice approved)--> authorized --settle (paid)--> final. No
    # direct-paid shortcut: settle needs the authorization first.
    Rule(
        INVOICE,
        None,
        Command.INITIATE,
        events=INITIATED,
    ),
    Rule(
        INVOICE,
        CREATED,
        Command.INVOICE_CREATED,
        events=INVOICE_CREATED,
        steps=(PurchaseStatus.INITIAL_CREDIT_GRANT,),
    ),
    Rule(INVOICE, CREATED, Command.AUTHORIZE, error="invoice_not_created"),
    Rule(INVOICE, CREATED, Command.SETTLE, error="invoice_not_created"),
    Rule(INVOICE, CREATED, Command.VOID, error="credits_not_granted"),
    Rule(INVOICE, CREATED, Command.FAIL, events=FAIL),
    Rule(INVOICE, CREATED, Command.REFUND, error="payment_not_settled"),
    Rule(INVOICE, PENDING, Command.INVOICE_CREATED, error="invoice_already_created"),
    Rule(INVOICE, PENDING, Command.AUTHORIZE, events=AUTHORIZE),
    Rule(INVOICE, PENDING, Command.SETTLE, error="cannot_settle_not_authorized_payment"),
    Rule(INVOICE, PENDING, Command.VOID, events=VOID),
    Rule(INVOICE, PENDING, Command.FAIL, events=FAIL),
    Rule(INVOICE, PENDING, Command.REFUND, error="payment_not_settled"),
    Rule(INVOICE, AUTHORIZED, Command.INVOICE_CREATED, error="invoice_already_created"),
    Rule(INVOICE, AUTHORIZED, Command.AUTHORIZE, error="payment_already_authorized"),
    Rule(
        INVOICE, AUTHORIZED, Command.SETTLE, events=SETTLE, steps=(PurchaseStatus.PAYMENT_SETTLED,)
    ),
    Rule(INVOICE, AUTHORIZED, Command.VOID, events=VOID),
    Rule(INVOICE, AUTHORIZED, Command.FAIL, events=FAIL),
    Rule(INVOICE, AUTHORIZED, Command.REFUND, error="payment_not_settled"),
    Rule(INVOICE, FINAL, Command.INVOICE_CREATED, error="invoice_already_created"),
    Rule(INVOICE, FINAL, Command.AUTHORIZE, error="payment_already_authorized"),
    Rule(INVOICE, FINAL, Command.SETTLE, error="payment_already_settled"),
    Rule(INVOICE, FINAL, Command.VOID, events=VOID),
    Rule(INVOICE, FINAL, Command.FAIL, error="payment_already_settled"),
    Rule(INVOICE, FINAL, Command.REFUND, events=REFUND),
    # After a failure every late command gets the one typed error (a settle that raced the
    # failure and lost, say): nothing is accepted, nothing remains to void or refund.
    *(
        Rule(settlement, FAILED, command, error="payment_already_failed")
        for settlement in (EXTERNAL, INVOICE)
        for command in (
            Command.INVOICE_CREATED,
            Command.AUTHORIZE,
            Command.SETTLE,
            Command.VOID,
            Command.FAIL,
            Command.REFUND,
        )
    ),
)

INITIAL_STATUS_ROUTE: dict[InitialPaymentStatus, Command | None] = {
    InitialPaymentStatus.CREATED: None,
    InitialPaymentStatus.AUTHORIZED: Command.AUTHORIZE,
    InitialPaymentStatus.SETTLED: Command.SETTLE,
}
"""After the grant, an external purchase's initial payment status fires this command (§3.5)."""

SUPPORTED_SETTLEMENTS = frozenset(rule.settlement for rule in RULES)

_INDEX: dict[tuple[SettlementType, PurchaseStatus | None, Command], Rule] = {
    (rule.settlement, rule.status, rule.command): rule for rule in RULES
}


def rule_for(settlement: SettlementType, status: PurchaseStatus | None, command: Command) -> Rule:
    """The row for this situation; a missing row is an ``invalid_transition`` row."""
    found = _INDEX.get((settlement, status, command))
    if found is not None:
        return found
    return Rule(settlement, status, command, error="invalid_transition")


def initiation_plan(
    settlement: SettlementType, initial: InitialPaymentStatus | None
) -> tuple[Rule, ...]:
    """The rows an initiate command runs through: the grant, then the initial status's command."""
    grant = rule_for(settlement, None, Command.INITIATE)
    follow = INITIAL_STATUS_ROUTE[initial] if initial is not None else None
    if follow is None or grant.target is None:
        return (grant,)
    return (grant, rule_for(settlement, grant.target, follow))


def table_as_data() -> dict[str, object]:
    """The table as plain JSON-ready data, for users and tools outside Python."""
    return {
        "rules": [
            {
                "settlement": rule.settlement.value,
                "status": rule.status.value if rule.status else None,
                "command": rule.command.value,
                "events": [event.value for event in rule.events],
                "error": rule.error,
                "target": rule.target.value if rule.target else None,
                "steps": [step.value for step in rule.steps],
            }
            for rule in RULES
        ],
        "status_after": [
            {"settlement": settlement.value, "event": event.value, "status": status.value}
            for (settlement, event), status in STATUS_AFTER.items()
        ],
        "initial_status_route": {
            initial.value: command.value if command else None
            for initial, command in INITIAL_STATUS_ROUTE.items()
        },
    }


def table_as_json() -> str:
    return json.dumps(table_as_data(), indent=2) + "\n"


_STATE_IDS = {
    CREATED: "created",
    PENDING: "pending",
    AUTHORIZED: "authorized",
    FINAL: "final",
    FAILED: "failed",
}


def mermaid_diagram() -> str:
    """A Mermaid state diagram of the resting statuses and the commands that move between them."""
    lines = ["stateDiagram-v2"]
    lines += [f'    state "{status.value}" as {ident}' for status, ident in _STATE_IDS.items()]
    # One edge per (from, to, command, events), naming every settlement type that takes it.
    edges: dict[tuple[str, str, str, str], list[str]] = {}
    for rule in RULES:
        target = rule.target
        if target is None:
            continue
        if target == rule.status:
            continue  # drawn once below, as a note: a void or a refund keeps the status
        source = "[*]" if rule.status is None else _STATE_IDS[rule.status]
        events = " + ".join(event.value for event in rule.events)
        edge = (source, _STATE_IDS[target], rule.command.value, events)
        edges.setdefault(edge, []).append(rule.settlement.value)
    for (source, target_id, command, events), settlements in edges.items():
        label = f"{command} ({', '.join(settlements)}) / {events}"
        lines.append(f"    {source} --> {target_id}: {label}")
    voids = sorted({r.settlement.value for r in RULES if r.command is Command.VOID})
    refunds = sorted(
        {r.settlement.value for r in RULES if r.command is Command.REFUND and r.events}
    )
    lines.append("    final --> [*]")
    lines.append("    failed --> [*]")
    lines.append(
        "    note right of final : void ("
        + ", ".join(voids)
        + ") forfeits the remaining credit once credit is granted and keeps the status;"
        + " refund ("
        + ", ".join(refunds)
        + ") gives back part of a settled payment and keeps final"
    )
    return "\n".join(lines) + "\n"
