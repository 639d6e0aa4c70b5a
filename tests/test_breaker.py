"""The circuit breaker (`ivr.breaker`): opens after failures in a row, for a while."""

from __future__ import annotations

from ivr.breaker import Breaker


class Time:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_it_opens_at_the_threshold_of_failures_in_a_row_for_the_cooldown() -> None:
    time = Time()
    breaker = Breaker(10.0, threshold=3, monotonic=time)
    breaker.failed()
    breaker.failed()
    assert not breaker.is_open and breaker.failures == 2
    breaker.failed()
    assert breaker.is_open and breaker.seconds_open() == 10.0
    time.now += 9.9
    assert breaker.is_open
    time.now += 0.2
    assert not breaker.is_open and breaker.seconds_open() == 0.0
    breaker.failed()  # the first try after the cooldown failed too: open again at once
    assert breaker.is_open


def test_a_success_closes_it_and_starts_the_count_afresh() -> None:
    time = Time()
    breaker = Breaker(10.0, threshold=2, monotonic=time)
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    assert not breaker.is_open  # not two in a row
    breaker.failed()
    assert breaker.is_open
    breaker.succeeded()
    assert not breaker.is_open and breaker.failures == 0
