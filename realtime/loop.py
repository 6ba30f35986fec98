"""The hard-deadline loop: one command per tick, by the deadline, whatever else runs.

Releases are absolute: release ``k`` is ``t0 + k * period`` (no drift, however
long the ticks take), and the wait for it is absolute too (on the real clock
``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, see :mod:`realtime.clock`).
Each tick the loop sleeps (then spins, see
:class:`~realtime.clock.MonotonicClock`) to the release, calls
``tick_fn(info) -> command``, hands the command to ``emit`` and records the
release, wake-up and end times. A tick must not block: work that takes longer
than a tick (model decoding, tool calls) runs in a worker that posts into a
:class:`LatestResult`; the tick polls it and, when nothing new is ready, emits
the fallback (see :class:`HoldOrStop`). A result that arrives late is simply
picked up by the next tick.

Overrun policy: when a tick ends after the next release, the loop skips to the
first release still in the future (never bursts to catch up) and counts the
skipped releases. A tick that ends after ``release + budget`` is a deadline miss.

Garbage collection is kept out of ticks: during :meth:`DeadlineLoop.run`
automatic GC is disabled and generations are collected between ticks, only
when enough slack is left before the next release.

Use ``step()`` to drive the loop one tick at a time (tests, in virtual time
with :class:`~realtime.clock.FakeClock`) and ``run()`` for the real thing.
"""

from __future__ import annotations

import gc
import logging
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from realtime.clock import Clock, MonotonicClock
from realtime.errors import ConfigError
from realtime.handoff import HoldOrStop, LatestResult, Posted

__all__ = [
    "DeadlineLoop",
    "HoldOrStop",
    "LatestResult",
    "LoopOptions",
    "LoopSummary",
    "Posted",
    "StopFlag",
    "TickHistory",
    "TickInfo",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
C = TypeVar("C")


@dataclass(frozen=True)
class LoopOptions:
    """Options of a :class:`DeadlineLoop`.

    Attributes:
        hz: release rate in ticks per second (1..1000; the demos use 10..16).
        budget_ms: deadline after each release, in ms (0 < budget <= one
            period); ``None`` means one full period.
        spin_us: spin margin of the :class:`MonotonicClock` the loop builds
            when it is given no clock (0 = plain sleep). Ignored otherwise.
        history_len: how many recent ticks the ring buffer keeps (>= 16).
        gc_between_ticks: during ``run()``, disable automatic GC and collect
            between ticks instead (only when ``gc_min_slack_ms`` is left).
        gc_min_slack_ms: slack before the next release needed to run GC or
            the ``between_ticks`` hook, in ms (>= 0).
    """

    hz: float = 16.0
    budget_ms: float | None = None
    spin_us: float = 1000.0
    history_len: int = 65536
    gc_between_ticks: bool = True
    gc_min_slack_ms: float = 10.0

    def __post_init__(self) -> None:
        if not 1.0 <= self.hz <= 1000.0:
            raise ConfigError(f"hz: expected 1..1000, got {self.hz!r}")
        if self.budget_ms is not None and not 0.0 < self.budget_ms <= self.period_ms:
            raise ConfigError(
                f"budget_ms: expected 0 < budget <= period ({self.period_ms:g} ms), "
                f"got {self.budget_ms!r}"
            )
        if not 0.0 <= self.spin_us <= self.period_ms * 1000.0:
            raise ConfigError(
                f"spin_us: expected 0..{self.period_ms * 1000:g} (one period), got {self.spin_us!r}"
            )
        if self.history_len < 16:
            raise ConfigError(f"history_len: expected >= 16, got {self.history_len!r}")
        if self.gc_min_slack_ms < 0:
            raise ConfigError(f"gc_min_slack_ms: expected >= 0, got {self.gc_min_slack_ms!r}")

    @property
    def period_ms(self) -> float:
        return 1000.0 / self.hz

    @property
    def period_ns(self) -> int:
        return round(1_000_000_000 / self.hz)

    @property
    def budget_ns(self) -> int:
        if self.budget_ms is None:
            return self.period_ns
        return round(self.budget_ms * 1_000_000)


@dataclass(frozen=True, slots=True)
class TickInfo:
    """What a tick knows about itself when ``tick_fn`` is called."""

    seq: int  # ticks run before this one (0, 1, 2, ...)
    index: int  # release index k: release_ns == t0 + k * period_ns
    release_ns: int  # scheduled release time
    deadline_ns: int  # the command must be emitted by this time
    wake_ns: int  # when the loop actually woke up
    skipped: int  # releases skipped just before this one (overrun policy)
    period_ns: int

    @property
    def lateness_ns(self) -> int:
        return self.wake_ns - self.release_ns

    @property
    def time_left_ns(self) -> int:
        """Budget left at wake-up (negative if the wake-up itself was too late)."""
        return self.deadline_ns - self.wake_ns


@dataclass(frozen=True)
class LoopSummary:
    """Counters of a loop (over its whole life, not only the ring buffer)."""

    hz: float
    ticks: int
    overruns: int  # ticks that ended after the next release
    skipped_releases: int  # releases skipped by the overrun policy
    deadline_misses: int  # ticks that ended after release + budget
    worst_lateness_ns: int  # max(wake - release)
    worst_exec_ns: int  # max(end - wake)
    gc_runs: int = 0  # collections the loop ran between ticks
    worst_gc_ns: int = 0  # the longest of them

    def __str__(self) -> str:
        return (
            f"{self.ticks} ticks at {self.hz:g} Hz: {self.deadline_misses} deadline misses, "
            f"{self.overruns} overruns ({self.skipped_releases} releases skipped), "
            f"worst lateness {self.worst_lateness_ns / 1000:.1f} µs, "
            f"worst tick {self.worst_exec_ns / 1000:.1f} µs, "
            f"{self.gc_runs} GC runs between ticks (worst {self.worst_gc_ns / 1000:.1f} µs)"
        )


class TickHistory:
    """A bounded ring buffer of per-tick times (release, wake-up, end), in ns."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._release = array("q", bytes(8 * capacity))
        self._wake = array("q", bytes(8 * capacity))
        self._end = array("q", bytes(8 * capacity))
        self._count = 0  # total ever recorded

    def record(self, release_ns: int, wake_ns: int, end_ns: int) -> None:
        i = self._count % self.capacity
        self._release[i] = release_ns
        self._wake[i] = wake_ns
        self._end[i] = end_ns
        self._count += 1

    def __len__(self) -> int:
        return min(self._count, self.capacity)

    @property
    def total(self) -> int:
        """Ticks ever recorded (may exceed ``len(self)``)."""
        return self._count

    def arrays(self) -> tuple[list[int], list[int], list[int]]:
        """(release_ns, wake_ns, end_ns) of the kept ticks, oldest first."""
        n = len(self)
        start = self._count % self.capacity if self._count > self.capacity else 0
        order = [(start + j) % self.capacity for j in range(n)]
        return (
            [self._release[i] for i in order],
            [self._wake[i] for i in order],
            [self._end[i] for i in order],
        )


class StopFlag(Protocol):
    """Anything with ``is_set()``: threading.Event, multiprocessing.Event."""

    def is_set(self) -> bool: ...


class DeadlineLoop(Generic[C]):
    """Runs ``tick_fn`` at absolute releases and emits its command each tick.

    Args:
        clock: the time source; ``None`` builds ``MonotonicClock(options.spin_us)``.
        options: rate, budget, history, GC policy.
        tick_fn: called once per tick with a :class:`TickInfo`; returns the
            command. It must not block (poll workers, emit a fallback).
        emit: called with (command, info) right after ``tick_fn`` returns.
        between_ticks: optional housekeeping (progress display, logging) run
            after a tick only when ``gc_min_slack_ms`` is left before the next
            release; its time never counts as tick time.
    """

    def __init__(
        self,
        clock: Clock | None,
        options: LoopOptions,
        tick_fn: Callable[[TickInfo], C],
        *,
        emit: Callable[[C, TickInfo], None] | None = None,
        between_ticks: Callable[[TickInfo], None] | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else MonotonicClock(options.spin_us)
        self.options = options
        self.tick_fn = tick_fn
        self.emit = emit
        self.between_ticks = between_ticks
        self.history = TickHistory(options.history_len)
        self.last_command: C | None = None
        self.summary: LoopSummary | None = None
        self._period = options.period_ns
        self._budget = options.budget_ns
        self._slack_ns = round(options.gc_min_slack_ms * 1_000_000)
        self._t0: int | None = None
        self._k = 0
        self._pending_skip = 0
        self._ticks = 0
        self._overruns = 0
        self._skipped = 0
        self._misses = 0
        self._worst_late = 0
        self._worst_exec = 0
        self._gc_runs = 0
        self._worst_gc = 0

    # -- schedule ---------------------------------------------------------
    def start(self, t0_ns: int | None = None) -> None:
        """Begin a fresh schedule: release k at ``t0_ns + k * period``.

        ``t0_ns`` defaults to one period from now. Counters are kept.
        """
        self._t0 = self.clock.now_ns() + self._period if t0_ns is None else int(t0_ns)
        self._k = 0
        self._pending_skip = 0

    @property
    def t0_ns(self) -> int | None:
        return self._t0

    @property
    def next_release_ns(self) -> int | None:
        return None if self._t0 is None else self._t0 + self._k * self._period

    # -- one tick ---------------------------------------------------------
    def step(self) -> TickInfo:
        """Sleep to the next release, run one tick, emit, record; return its info."""
        if self._t0 is None:
            self.start()
        assert self._t0 is not None
        clock = self.clock
        k = self._k
        release = self._t0 + k * self._period
        clock.sleep_until_ns(release)
        wake = clock.now_ns()
        info = TickInfo(
            seq=self._ticks,
            index=k,
            release_ns=release,
            deadline_ns=release + self._budget,
            wake_ns=wake,
            skipped=self._pending_skip,
            period_ns=self._period,
        )
        command = self.tick_fn(info)
        if self.emit is not None:
            self.emit(command, info)
        end = clock.now_ns()
        self.last_command = command
        self.history.record(release, wake, end)
        self._account(info, end)
        self._housekeeping(info)
        return info

    def _account(self, info: TickInfo, end: int) -> None:
        assert self._t0 is not None
        self._ticks += 1
        late = info.wake_ns - info.release_ns
        if late > self._worst_late:
            self._worst_late = late
        exec_ns = end - info.wake_ns
        if exec_ns > self._worst_exec:
            self._worst_exec = exec_ns
        if end > info.deadline_ns:
            self._misses += 1
        k_next = info.index + 1
        if end > self._t0 + k_next * self._period:
            # Overrun: skip to the first release still in the future.
            self._overruns += 1
            k_next = (end - self._t0) // self._period + 1
        self._pending_skip = k_next - info.index - 1
        self._skipped += self._pending_skip
        self._k = k_next

    def _housekeeping(self, info: TickInfo) -> None:
        if not (self.options.gc_between_ticks or self.between_ticks):
            return
        assert self._t0 is not None
        next_release = self._t0 + self._k * self._period
        slack_ok = next_release - self.clock.now_ns() >= self._slack_ns
        if self.options.gc_between_ticks and not gc.isenabled():
            self._maybe_collect(slack_ok)
        if self.between_ticks is not None and (
            next_release - self.clock.now_ns() >= self._slack_ns
        ):
            self.between_ticks(info)

    def _maybe_collect(self, slack_ok: bool) -> None:
        """CPython's own trigger rule, run here instead of inside a tick."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        th0 = thresholds[0] if thresholds[0] > 0 else 700
        # Without slack (ticks keep overrunning) still collect once garbage
        # piles up: memory must stay bounded.
        if counts[0] <= th0 or not (slack_ok or counts[0] > 20 * th0):
            return
        gen = 0
        if counts[1] + 1 > thresholds[1]:
            gen = 2 if counts[2] + 1 > thresholds[2] else 1
        t = self.clock.now_ns()
        gc.collect(gen)
        self._gc_runs += 1
        self._worst_gc = max(self._worst_gc, self.clock.now_ns() - t)

    # -- many ticks -------------------------------------------------------
    def run(
        self,
        ticks: int | None = None,
        seconds: float | None = None,
        stop_event: StopFlag | None = None,
        t0_ns: int | None = None,
    ) -> LoopSummary:
        """Run a fresh schedule until ``ticks`` ticks ran, the releases within
        ``seconds`` are done, or ``stop_event`` is set (whichever comes first;
        with none of them, until interrupted). Returns the summary, also kept
        in ``self.summary`` and logged, however the loop ends.

        ``t0_ns``: the first release (default: one period from now), e.g. to
        line the releases up with another measurement's.
        """
        if ticks is not None and ticks < 0:
            raise ConfigError(f"ticks: expected >= 0, got {ticks!r}")
        if seconds is not None and seconds < 0:
            raise ConfigError(f"seconds: expected >= 0, got {seconds!r}")
        gc_was_enabled = gc.isenabled()
        if self.options.gc_between_ticks:
            gc.disable()
        try:
            self.start(t0_ns)
            assert self._t0 is not None
            end_ns = None if seconds is None else self._t0 + round(seconds * 1e9)
            done = 0
            while ticks is None or done < ticks:
                if stop_event is not None and stop_event.is_set():
                    break
                if end_ns is not None and self._t0 + self._k * self._period >= end_ns:
                    break
                self.step()
                done += 1
        finally:
            if gc_was_enabled:
                gc.enable()
            self.summary = self.summarize()
            log.info("deadline loop: %s", self.summary)
        return self.summary

    def summarize(self) -> LoopSummary:
        return LoopSummary(
            hz=self.options.hz,
            ticks=self._ticks,
            overruns=self._overruns,
            skipped_releases=self._skipped,
            deadline_misses=self._misses,
            worst_lateness_ns=self._worst_late,
            worst_exec_ns=self._worst_exec,
            gc_runs=self._gc_runs,
            worst_gc_ns=self._worst_gc,
        )
