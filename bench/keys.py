"""Stable names of the report's rows: the same from one run to the next, in the JSON.

The code that makes a row and the targets that read it both take its key from here, so
results can be compared over time and a renamed title breaks nothing.
"""

from __future__ import annotations

REPLAY = "replay"
CATCHUP = "projection-catchup"
GROWTH = "growth"
RELAY_PIPELINED = "relay-pipelined"
RELAY_ONE_AT_A_TIME = "relay-one-at-a-time"
RELAY_LAG = "relay-lag-32-callers"
CONSUMER_CATCHUP = "consumer-catchup"
AUDIT_VERIFY = "audit-verify"
AUDIT_EXPORT = "audit-export"
PROJECTIONS_VERIFY = "projections-verify"
PROJECTIONS_REBUILD = "projections-rebuild"
QUERY_PURCHASE_NOW = "query-purchase-now-hot-customer"
CONSUME_OPEN_GRANTS = "consume-many-open-grants"


def appends(per_save: int, threads: int) -> str:
    return f"appends-{per_save}-per-save-{threads}-threads"


def lifecycles(callers: int) -> str:
    return f"lifecycles-{callers}-callers"


def group_commit(callers: int) -> str:
    """creditledger with group commit on, against the same with it off."""
    return f"group-commit-on-vs-off-{callers}-callers"


def consumptions(customers: int) -> str:
    """Consumptions by 32 callers over this many customers (1: one hot customer)."""
    return f"consumptions-32-callers-{customers}-customers"


def http(clients: int) -> str:
    return f"http-{clients}-clients"
