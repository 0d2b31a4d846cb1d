"""The ledger's write health: a failure counts until a write succeeds, or until it is old."""

from __future__ import annotations

from creditledger.application.write_health import WriteHealth


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_failure_counts_until_a_write_succeeds() -> None:
    health = WriteHealth(Clock())
    assert health.failing() is None

    health.failed("disk full")
    failing = health.failing()
    health.succeeded()

    assert failing is not None
    assert failing.detail == "disk full"
    assert health.failing() is None


def test_a_failure_older_than_the_window_no_longer_counts() -> None:
    clock = Clock()
    health = WriteHealth(clock, recent=60)
    health.failed("disk full")

    clock.now += 60
    still = health.failing()
    clock.now += 1

    assert still is not None
    assert health.failing() is None
