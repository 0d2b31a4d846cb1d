"""``verify --against-live`` folds each credit wallet once (``wallet_replays``) and refuses a
purchase exactly when ``CreditLedger.get_purchase``, which folds the wallet per purchase, does: at
every version of every purchase, on every backend, with the wallet's history intact or changed so
that it no longer replays."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import LedgerError
from creditledger.domain.identity import wallet_id_for
from creditledger.infrastructure.audit import wallet_replays
from creditledger.infrastructure.audit.jobs import compare_with_live
from creditledger.infrastructure.audit.live import StoreLiveLedger
from creditledger.infrastructure.audit.wallet_replays import replay_wallet
from tests.application.audit_support import (
    WALLET_CUSTOMER,
    export_lines,
    populate_wallet,
    tamper_stored_event,
    verify_lines,
)
from tests.application.builders import NAMESPACE
from tests.clock import FixedClock


def _live(ledger: CreditLedger, purchase_id: UUID, version: int | None) -> str | None:
    """None, or the refusal of ``get_purchase`` (its code and detail, as the audit reports it),
    at ``version`` or (None) as of now: the fold of the history, as a process that holds nothing
    yet reads it (this ledger holds the wallet it wrote, from before the store was changed)."""
    try:
        if version is None:
            ledger.get_purchase(NAMESPACE, purchase_id, as_of=ledger.clock.now())
        else:
            ledger.get_purchase(NAMESPACE, purchase_id, version=version)
    except LedgerError as error:
        return f"{error.code}: {error.detail}"
    return None


def _once(refusal: LedgerError | None) -> str | None:
    return None if refusal is None else f"{refusal.code}: {refusal.detail}"


@pytest.fixture(params=[wallet_replays.PAGE, 2], ids=["one page", "pages of 2"])
def page(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(wallet_replays, "PAGE", request.param)
    return int(request.param)


@pytest.mark.usefixtures("page")
@pytest.mark.parametrize("change", ["intact", "changed"])
def test_each_purchase_at_each_version_is_refused_exactly_when_get_purchase_refuses_it(
    ledger: CreditLedger, clock: FixedClock, store_url: str, change: str
) -> None:
    wallet = populate_wallet(ledger, clock)
    if change == "changed":
        # The consumption at 6 drew 50 from P; changed to 40, the expiry at 7 no longer adds up.
        allocation = {"purchase_id": str(wallet.p.id), "amount": "40.00"}
        tamper_stored_event(ledger, store_url, 6, {"amount": "40.00", "allocations": [allocation]})
    replay = replay_wallet(ledger, wallet_id_for(NAMESPACE, WALLET_CUSTOMER, "USD"))
    assert replay.in_time_order

    answers = []
    for purchase in (wallet.p, wallet.q):
        events = ledger.purchase_events(NAMESPACE, purchase.id)
        for version, event in enumerate(events, start=1):
            live = _live(ledger, purchase.id, version)
            assert _once(replay.refusal_at(event.timestamp)) == live
            answers.append(live)
        now = _live(ledger, purchase.id, None)
        assert _once(replay.refusal_at(clock.now())) == now
        answers.append(now)

    refused = [answer is not None for answer in answers]
    # P: v1, now; Q: v1, v2 (its void, after the expiry), now.
    assert (
        refused
        == {
            "intact": [False] * 5,
            "changed": [False, True, False, True, True],
        }[change]
    )


def test_a_wallet_whose_events_go_back_in_time_is_read_through_get_purchase(
    ledger: CreditLedger, clock: FixedClock, store_url: str, tmp_path: Path
) -> None:
    wallet = populate_wallet(ledger, clock)
    report = verify_lines(export_lines(ledger, tmp_path / "export.jsonl"))
    assert report.ok, report.failure
    # The ledger writes a wallet's events in time order; someone with write access moved the
    # expiry at 7 back a day, where it is not at its time any more.
    moved_back = (clock.now() - timedelta(days=1)).isoformat()
    tamper_stored_event(ledger, store_url, 7, {"timestamp": moved_back})
    replay = replay_wallet(ledger, wallet_id_for(NAMESPACE, WALLET_CUSTOMER, "USD"))
    assert not replay.in_time_order

    live = StoreLiveLedger(ledger)
    comparison = compare_with_live(report, live)
    for purchase in (wallet.p, wallet.q):
        assert live.unreadable.get(purchase.id) == _live(ledger, purchase.id, None)
    assert set(live.unreadable) == {wallet.p.id, wallet.q.id}
    missing = {d.key for d in comparison.differences if d.detail == "missing from the live state"}
    assert missing == {str(wallet.p.id), str(wallet.q.id)}
