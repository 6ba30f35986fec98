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


class _PreemptedTime:
    """Virtual time in which the thread is preempted for ``preempt_ns`` right after
    the first clock read of every wait (between computing the wait and sleeping)."""

    def __init__(self, preempt_ns: int) -> None:
        self.t = 10_000_000
        self.preempt_ns = preempt_ns
        self.armed = False  # set when a wait begins

    def now(self) -> int:
        t = self.t
        if self.armed:
            self.t += self.preempt_ns
            self.armed = False
        return t

    def sleep_abs(self, t_ns: int) -> None:
        self.t = max(self.t, t_ns)

    def sleep_rel(self, seconds: float) -> None:
        self.t += round(seconds * 1e9)


def _virtual_clock(absolute: bool, preempt_ns: int) -> tuple[MonotonicClock, _PreemptedTime]:
    vt = _PreemptedTime(preempt_ns)
    clock = MonotonicClock(spin_us=0, absolute=absolute)
    clock._now = vt.now
    clock._sleep = vt.sleep_rel
    clock._sleep_abs = vt.sleep_abs if absolute else None
    wait = clock.sleep_until_ns

    def preempted_wait(t_ns: int) -> None:
        vt.armed = True
        wait(t_ns)

    clock.sleep_until_ns = preempted_wait  # type: ignore[method-assign]
    return clock, vt


def test_the_absolute_wait_absorbs_a_preemption_before_the_sleep_over_many_ticks() -> None:
    from realtime.loop import DeadlineLoop, LoopOptions

    clock, _ = _virtual_clock(absolute=True, preempt_ns=300_000)
    loop = DeadlineLoop(clock, LoopOptions(hz=100, gc_between_ticks=False, history_len=4096),
                        lambda info: info.seq)
    summary = loop.run(ticks=2000)
    release, wake, _ = loop.history.arrays()
    assert loop.t0_ns is not None
    assert release == [loop.t0_ns + k * 10_000_000 for k in range(2000)]
    assert wake == release  # no lateness, so none to accumulate
    assert summary.worst_lateness_ns == 0


def test_the_relative_fallback_wakes_late_by_the_preemption() -> None:
    clock, _ = _virtual_clock(absolute=False, preempt_ns=300_000)
    assert clock.wait.startswith("time.sleep")
    target = clock.now_ns() + 5_000_000
    clock.sleep_until_ns(target)
    assert clock.now_ns() - target == 300_000


def test_the_real_clock_waits_for_absolute_times_on_linux() -> None:
    import sys

    clock = MonotonicClock(spin_us=0)
    if sys.platform.startswith("linux"):
        assert clock.wait == "clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)"
    target = clock.now_ns() - 1  # already past: returns at once
    clock.sleep_until_ns(target)
    assert clock.now_ns() >= target
