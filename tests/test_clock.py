"""Clocks: FakeClock in virtual time; MonotonicClock never wakes early."""

from __future__ import annotations

import pytest

from realtime.clock import Clock, FakeClock, MonotonicClock
from realtime.errors import ConfigError, RtAgentError


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(FakeClock(), Clock)
    assert isinstance(MonotonicClock(), Clock)


def test_fake_clock_sleep_jumps_to_target_and_advance_moves_time() -> None:
    clock = FakeClock(start_ns=100)
    clock.sleep_until_ns(1_000)
    assert clock.now_ns() == 1_000
    clock.advance(50)
    assert clock.now_ns() == 1_050
    clock.sleep_until_ns(500)  # already past: returns at once, time unchanged
    assert clock.now_ns() == 1_050
    assert clock.sleeps == [1_000, 500]


def test_fake_clock_overshoot_constant_callable_and_queued() -> None:
    clock = FakeClock(overshoot_ns=7)
    clock.sleep_until_ns(100)
    assert clock.now_ns() == 107
    clock.set_overshoot(lambda t: t // 100)
    clock.sleep_until_ns(1_000)
    assert clock.now_ns() == 1_010
    clock.queue_overshoots([500, 0])
    clock.sleep_until_ns(2_000)
    assert clock.now_ns() == 2_500
    clock.sleep_until_ns(3_000)
    assert clock.now_ns() == 3_000
    clock.sleep_until_ns(4_000)  # back to the callable
    assert clock.now_ns() == 4_040


def test_fake_clock_rejects_going_back() -> None:
    clock = FakeClock()
    with pytest.raises(ConfigError, match="expected ns >= 0"):
        clock.advance(-1)
    with pytest.raises(RtAgentError):
        FakeClock(start_ns=-5)


@pytest.mark.parametrize("spin_us", [0.0, 300.0])
def test_monotonic_clock_never_wakes_before_the_target(spin_us: float) -> None:
    clock = MonotonicClock(spin_us=spin_us)
    for _ in range(5):
        target = clock.now_ns() + 2_000_000
        clock.sleep_until_ns(target)
        assert clock.now_ns() >= target


def test_monotonic_clock_validates_spin() -> None:
    with pytest.raises(ConfigError, match="expected 0..100000"):
        MonotonicClock(spin_us=-1)
