"""The audit benchmark runs its whole pipeline on a tiny log (no timing asserted)."""

from __future__ import annotations

from bench.verify import measure_verify


def test_the_audit_benchmark_exports_verifies_and_checkpoints_exactly_the_loaded_events() -> None:
    figures = measure_verify(31, replay_sample=4)
    assert figures["events"] == 31
    assert figures["purchases"] == 10
    assert figures["library_replay_sample_purchases"] == 4
    for rate in ("export", "verify", "checkpoint", "library_replay"):
        assert figures[f"{rate}_events_per_second"] > 0
