"""The deadline loop's logic, in virtual time (FakeClock), plus its mailbox and fallback."""

from __future__ import annotations

import gc
import threading

import pytest

from realtime.clock import FakeClock, MonotonicClock
from realtime.errors import ConfigError
from realtime.loop import DeadlineLoop, HoldOrStop, LatestResult, LoopOptions, TickInfo

PERIOD_16HZ = 62_500_000


def _loop(clock: FakeClock, hz: float = 16.0, **kw: object) -> DeadlineLoop[int]:
    opts = LoopOptions(hz=hz, gc_between_ticks=False, history_len=64)
    return DeadlineLoop(clock, opts, lambda info: info.seq, **kw)  # type: ignore[arg-type]


def test_releases_are_absolute_and_never_drift() -> None:
    # Every wake-up is late by a varying amount and every tick takes time,
    # yet release k stays exactly t0 + k * period over many ticks.
    clock = FakeClock(start_ns=1_000, overshoot_ns=lambda t: (t // 7) % 900_000)
    infos: list[TickInfo] = []

    def tick(info: TickInfo) -> int:
        clock.advance(3_000_000)  # 3 ms of work
        infos.append(info)
        return info.seq

    loop = DeadlineLoop(clock, LoopOptions(hz=16, gc_between_ticks=False), tick)
    loop.run(ticks=10_000)
    t0 = loop.t0_ns
    assert t0 == 1_000 + PERIOD_16HZ
    assert [i.release_ns for i in infos] == [t0 + k * PERIOD_16HZ for k in range(10_000)]
    assert all(i.lateness_ns == (i.release_ns // 7) % 900_000 for i in infos)
    summary = loop.summary
    assert summary is not None
    assert (summary.ticks, summary.overruns, summary.deadline_misses) == (10_000, 0, 0)
    assert summary.worst_exec_ns == 3_000_000


def test_run_for_seconds_runs_the_releases_inside_the_window() -> None:
    clock = FakeClock()
    loop = _loop(clock, hz=10)
    summary = loop.run(seconds=2.0)
    assert summary.ticks == 20
    assert clock.sleeps[0] == loop.t0_ns


def test_overrun_skips_to_the_next_future_release_and_counts() -> None:
    clock = FakeClock()
    work = {3: 2.5 * PERIOD_16HZ, 6: 1.0 * PERIOD_16HZ}  # tick seq -> exec ns

    def tick(info: TickInfo) -> int:
        clock.advance(int(work.get(info.seq, 1_000_000)))
        return info.seq

    loop = DeadlineLoop(clock, LoopOptions(hz=16, gc_between_ticks=False), tick)
    infos = [loop.step() for _ in range(10)]
    assert [i.index for i in infos] == [0, 1, 2, 3, 6, 7, 8, 9, 10, 11]
    assert [i.skipped for i in infos] == [0, 0, 0, 0, 2, 0, 0, 0, 0, 0]
    # Never bursts: every tick after the overrun wakes exactly at its release.
    assert all(i.lateness_ns == 0 for i in infos)
    s = loop.summarize()
    # Tick 6 ends exactly at its deadline (= next release): on time, no overrun.
    assert (s.overruns, s.skipped_releases, s.deadline_misses) == (1, 2, 1)


def test_budget_defines_the_deadline() -> None:
    clock = FakeClock()

    def tick(info: TickInfo) -> int:
        clock.advance(30_000_000 if info.seq == 1 else 10_000_000)
        return 0

    loop = DeadlineLoop(clock, LoopOptions(hz=16, budget_ms=20, gc_between_ticks=False), tick)
    infos = [loop.step() for _ in range(3)]
    assert all(i.deadline_ns == i.release_ns + 20_000_000 for i in infos)
    s = loop.summarize()
    assert (s.deadline_misses, s.overruns) == (1, 0)


def test_late_wake_counts_as_miss_and_worst_lateness() -> None:
    clock = FakeClock()
    clock.queue_overshoots([0, 70_000_000, 0])  # second wake-up is > 1 period late
    loop = _loop(clock)
    infos = [loop.step() for _ in range(3)]
    s = loop.summarize()
    assert s.worst_lateness_ns == 70_000_000
    assert s.deadline_misses == 1 and s.overruns == 1
    assert infos[2].index == 3 and infos[2].skipped == 1


def test_emit_gets_every_command_and_history_is_bounded() -> None:
    clock = FakeClock()
    emitted: list[tuple[int, int]] = []
    loop = _loop(clock, emit=lambda cmd, info: emitted.append((cmd, info.index)))
    loop.run(ticks=100)
    assert emitted == [(i, i) for i in range(100)]
    assert loop.last_command == 99
    release, wake, end = loop.history.arrays()
    assert len(loop.history) == 64 and loop.history.total == 100
    assert release == [loop.t0_ns + k * PERIOD_16HZ for k in range(36, 100)]  # type: ignore[operator]
    assert wake == release and end == release


def test_fallback_when_work_is_late_and_late_result_used_next_tick() -> None:
    clock = FakeClock()
    mailbox: LatestResult[str] = LatestResult()
    fallback = HoldOrStop(safe_stop="stop", max_hold_ticks=2)
    # The "worker" finishes its results at these ticks (in virtual time it
    # posts during the tick, after the tick already polled: i.e. late).
    finishes = {2: "a", 7: "b"}

    def tick(info: TickInfo) -> str:
        fresh = mailbox.poll()
        command = fallback(fresh.value if fresh else None)
        if info.seq in finishes:
            mailbox.post(finishes[info.seq], clock.now_ns())
        return command

    out: list[str] = []
    loop = DeadlineLoop(clock, LoopOptions(gc_between_ticks=False), tick,
                        emit=lambda cmd, _info: out.append(cmd))
    loop.run(ticks=10)
    assert out == ["stop", "stop", "stop", "a", "a", "a", "stop", "stop", "b", "b"]
    assert (fallback.holds, fallback.stops) == (3, 5)


def test_latest_result_latest_wins_and_counts_overwrites() -> None:
    box: LatestResult[int] = LatestResult()
    assert box.poll() is None
    box.post(1, t_ns=10)
    box.post(2, t_ns=20)
    item = box.poll()
    assert item is not None and (item.value, item.seq, item.t_ns) == (2, 2, 20)
    assert box.poll() is None and box.overwritten == 1
    assert box.latest() == item


def test_latest_result_from_a_real_worker_thread() -> None:
    box: LatestResult[int] = LatestResult()
    clock = MonotonicClock()
    done = threading.Event()

    def worker() -> None:
        for i in range(1, 1001):
            box.post(i, clock.now_ns())
        done.set()

    thread = threading.Thread(target=worker)
    thread.start()
    seen: list[int] = []
    while True:
        finished = done.is_set()  # read before polling: nothing is posted after it
        item = box.poll()
        if item is not None:
            seen.append(item.seq)
        elif finished:
            break
    thread.join()
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[-1] == 1000 and box.overwritten == 1000 - len(seen)


def test_run_keeps_gc_out_of_ticks_and_restores_it() -> None:
    clock = FakeClock()
    seen_enabled: list[bool] = []
    opts = LoopOptions(hz=16, gc_between_ticks=True, gc_min_slack_ms=1.0)
    loop = DeadlineLoop(clock, opts, lambda info: seen_enabled.append(gc.isenabled()))
    assert gc.isenabled()
    loop.run(ticks=20)
    assert seen_enabled == [False] * 20
    assert gc.isenabled()


def test_stop_event_ends_the_run_and_summary_is_kept_on_error() -> None:
    clock = FakeClock()
    stop = threading.Event()

    def tick(info: TickInfo) -> int:
        if info.seq == 4:
            stop.set()
        if info.seq == 100:
            raise RuntimeError("boom")
        return 0

    loop = DeadlineLoop(clock, LoopOptions(gc_between_ticks=False), tick)
    assert loop.run(stop_event=stop).ticks == 5
    with pytest.raises(RuntimeError, match="boom"):
        loop.run()
    assert loop.summary is not None and loop.summary.ticks == 100  # seq 100 raised


def test_between_ticks_hook_runs_only_with_slack() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def tick(info: TickInfo) -> int:
        clock.advance(60_000_000 if info.seq % 2 else 1_000_000)
        return 0

    opts = LoopOptions(hz=16, gc_between_ticks=False, gc_min_slack_ms=5.0)
    loop = DeadlineLoop(clock, opts, tick, between_ticks=lambda i: calls.append(i.seq))
    loop.run(ticks=6)
    assert calls == [0, 2, 4]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hz": 0.5}, "hz: expected 1..1000"),
        ({"hz": 5000}, "hz: expected 1..1000"),
        ({"budget_ms": 0}, "budget_ms: expected 0 < budget"),
        ({"hz": 10, "budget_ms": 150}, "budget_ms: expected 0 < budget"),
        ({"spin_us": -1}, "spin_us: expected"),
        ({"history_len": 3}, "history_len: expected >= 16"),
    ],
)
def test_options_are_validated(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        LoopOptions(**kwargs)  # type: ignore[arg-type]


def test_loop_on_the_real_clock_runs_ticks_in_order() -> None:
    loop = DeadlineLoop(None, LoopOptions(hz=200, spin_us=200), lambda info: info.index)
    summary = loop.run(ticks=20)
    release, wake, end = loop.history.arrays()
    assert summary.ticks == 20
    assert all(w >= r for r, w in zip(release, wake, strict=True))
    assert all(e >= w for w, e in zip(wake, end, strict=True))


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic GC frees it


@pytest.mark.parametrize(("exec_ns", "per_tick"), [(1_000_000, 400), (130_000_000, 4000)])
def test_cyclic_garbage_is_collected_between_ticks(exec_ns: int, per_tick: int) -> None:
    # With slack: collected like CPython would, but between ticks. Without slack
    # (every tick overruns): still collected once garbage piles up.
    import weakref

    clock = FakeClock()
    first: list[weakref.ref[_Node]] = []
    alive_at_end: list[bool] = []

    def tick(info: TickInfo) -> int:
        nodes = [_Node() for _ in range(per_tick)]
        if info.seq == 0:
            first.append(weakref.ref(nodes[0]))
        clock.advance(exec_ns)
        if info.seq == 39:
            alive_at_end.append(first[0]() is not None)
        return 0

    opts = LoopOptions(hz=16, gc_between_ticks=True, gc_min_slack_ms=5.0)
    summary = DeadlineLoop(clock, opts, tick).run(ticks=40)
    assert summary.gc_runs > 0
    assert alive_at_end == [False]
    if exec_ns > PERIOD_16HZ:
        assert summary.overruns == 40
