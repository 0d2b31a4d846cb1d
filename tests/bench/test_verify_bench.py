"""The audit benchmark runs its whole pipeline on a tiny log (no timing asserted)."""

from __future__ import annotations

from bench.projections import measure_projection_jobs
from bench.verify import load, measure_verify
from creditledger.domain.events import GrantAdded, Initiated
from creditledger.infrastructure.bootstrap import open_ledger


def test_the_audit_benchmark_loads_a_log_the_ledger_could_have_written() -> None:
    with open_ledger("memory://") as ledger:
        whole = load(ledger, 31)
        logged = [
            ledger.mapper.to_domain_event(notification)
            for notification in ledger.recorder.select_notifications(start=1, limit=100)
        ]
        # 5 whole lifecycles of 5 events (initiated with its grant, authorized, settled, the
        # grant consumed), then two purchases initiated, granted and authorized.
        assert len(logged) == 31
        assert len(whole) == 5
        for index, event in enumerate(logged):
            if isinstance(event, Initiated):
                grant = logged[index + 1]
                assert isinstance(grant, GrantAdded)
                assert grant.purchase_id == event.originator_id
        first = ledger.get_purchase("tenant-0", whole[0])
        assert first.consumed == first.credit_amount
        assert first.remaining == 0


def test_the_audit_benchmark_exports_verifies_and_checkpoints_exactly_the_loaded_events() -> None:
    figures = measure_verify(31, replay_sample=4)
    assert figures["events"] == 31
    assert figures["purchases"] == 5
    assert figures["library_replay_sample_purchases"] == 4
    for rate in ("export", "verify", "checkpoint", "library_replay"):
        assert figures[f"{rate}_events_per_second"] > 0


def test_the_projections_benchmark_rebuilds_in_one_pass_and_one_model_at_a_time() -> None:
    figures = measure_projection_jobs(31, runs=1, each=True)
    assert figures["events"] == 31
    # Both rebuild jobs count the log's events once (the one pass, or the longest of four).
    assert figures["rebuild_events"] == figures["rebuild_each_events"] == 31
    for job in ("verify", "rebuild", "rebuild_each", "library_replay"):
        assert figures[f"{job}_events_per_second"] > 0
        assert figures[f"{job}_peak_rss_mib"] > 0
        # A log this short is verified and rebuilt without a second process.
        assert figures[f"{job}_second_process_peak_rss_mib"] == 0
