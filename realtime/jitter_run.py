"""Jitter measurements: one deadline loop run, here or in a child process, and several
run concurrently with cyclictest (`rtagent jitter --compare-cyclictest`).

A run is described by a :class:`MeasureSpec` (rate, spin margin, hardening, GC
policy, which tick) and gives a :class:`Measurement`: the loop's
:class:`~realtime.jitter.JitterReport` plus the CPU time the process and the loop's
thread used, so the cost of spinning before each release is measured, not guessed.

The tick is built by a *tick factory* named ``"module:function"`` (resolved with
importlib, in the process that measures): ``factory(clock, args) -> TickWorkload``.
The workload's tick is what the loop calls at each release; its ``between`` hook
runs between ticks, as a demo's does; ``close`` ends what it started.

:func:`run_concurrent` measures several specs at once, each in its own process,
together with cyclictest, over the same releases: cyclictest runs with
``--secaligned`` (first release one interval after a whole second of
CLOCK_MONOTONIC) for a fixed number of loops, and each of our loops starts its own
releases at a fixed fraction of a period after cyclictest's (``phase``), so the
measuring threads never wake at the same instant, and all see the same load over
the same time window. Every wait, ours and cyclictest's, is an absolute
``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from realtime.clock import Clock, MonotonicClock
from realtime.cyclictest import Cyclictest
from realtime.errors import ConfigError, RtAgentError
from realtime.hardening import Hardening, HardeningOptions
from realtime.jitter import JitterReport, report_from_history
from realtime.loop import DeadlineLoop, LoopOptions, TickInfo

__all__ = [
    "MeasureProcess",
    "MeasureSpec",
    "Measurement",
    "TickWorkload",
    "build_tick",
    "measure_here",
    "run_concurrent",
]

_NS_PER_S = 1_000_000_000
_START_MARGIN_NS = 300_000_000  # children get their first release at least this far ahead


@dataclass
class TickWorkload:
    """What a measured loop runs: ``tick`` at each release, ``between`` after a tick
    when there is slack, ``close`` at the end. ``describe`` says what the tick does;
    ``stats`` what it did (e.g. messages read and sent, turns), kept in the report."""

    tick: Callable[[TickInfo], Any]
    between: Callable[[TickInfo], None] | None = None
    close: Callable[[], None] = lambda: None
    describe: str = ""
    stats: Callable[[], dict[str, Any]] = dict


@dataclass(frozen=True)
class MeasureSpec:
    """One measured loop.

    Attributes:
        source: the report's name (e.g. ``"rtagent loop, spin 1000 µs"``).
        hz: release rate.
        spin_us: the clock's spin margin before each release (0: sleep only).
        hardening: applied to the loop's thread just before the run.
        tick: the tick factory, ``"module:function"``.
        tick_args: keyword arguments for it (picklable).
        gc_between_ticks: keep GC out of ticks (the loop's policy).
        gil_thread: run a pure-Python busy thread in the measuring process (SCHED_OTHER,
            started after the hardening).
    """

    source: str
    hz: float
    spin_us: float
    hardening: HardeningOptions = field(default_factory=HardeningOptions)
    tick: str = "control.decision_ticks:poll_tick"
    tick_args: Mapping[str, Any] = field(default_factory=dict)
    gc_between_ticks: bool = True
    gil_thread: bool = False

    def __post_init__(self) -> None:
        if ":" not in self.tick:
            raise ConfigError(f"tick: expected 'module:function', got {self.tick!r}")
        self.loop_options(16)  # checks hz and spin_us

    def loop_options(self, ticks: int) -> LoopOptions:
        return LoopOptions(hz=self.hz, spin_us=self.spin_us, history_len=max(16, ticks + 16),
                           gc_between_ticks=self.gc_between_ticks)


@dataclass
class Measurement:
    """A measured run: the loop's report and what the run cost in CPU time."""

    report: JitterReport
    cpu_s: float  # CPU time of the whole measuring process during the run
    loop_thread_cpu_s: float  # CPU time of the loop's thread alone (spin included)
    run_s: float  # wall time of the run
    window_ns: tuple[int, int]  # first release, and one period after the last
    hardening: list[str] = field(default_factory=list)
    fifo: bool = False


def build_tick(spec: MeasureSpec, clock: Clock) -> TickWorkload:
    module, _, name = spec.tick.partition(":")
    factory = getattr(importlib.import_module(module), name)
    workload = factory(clock, dict(spec.tick_args))
    if not isinstance(workload, TickWorkload):
        raise RtAgentError(f"tick factory {spec.tick} returned {type(workload).__name__}, "
                           "expected a TickWorkload")
    return workload


def _gil_burn(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(1000))


def measure_here(spec: MeasureSpec, ticks: int, *, t0_ns: int | None = None,
                 workload: TickWorkload | None = None, clock: MonotonicClock | None = None,
                 between: Callable[[TickInfo], None] | None = None,
                 on_loop: Callable[[DeadlineLoop[Any]], None] | None = None,
                 hardening: Hardening | None = None,
                 meta: Mapping[str, Any] | None = None) -> Measurement:
    """Run ``ticks`` ticks of ``spec`` on this thread (hardened for the run only).

    ``workload``/``clock``: an already built tick and its clock (default: built
    here, closed at the end); ``between``: an extra hook after the workload's (e.g.
    a progress bar); ``on_loop``: sees the loop before it runs (e.g. to trace it);
    ``hardening``: already applied to this thread (its caller restores it), instead
    of ``spec.hardening`` applied here around the run.
    """
    clock = clock if clock is not None else MonotonicClock(spec.spin_us)
    own = workload is None
    work = build_tick(spec, clock) if workload is None else workload
    hooks = [h for h in (work.between, between) if h is not None]

    def between_ticks(info: TickInfo) -> None:
        for hook in hooks:
            hook(info)

    loop: DeadlineLoop[Any] = DeadlineLoop(clock, spec.loop_options(ticks), work.tick,
                                           between_ticks=between_ticks if hooks else None)
    if on_loop is not None:
        on_loop(loop)
    stop = threading.Event()
    own_hardening = hardening is None
    hardening = Hardening(spec.hardening) if hardening is None else hardening
    try:
        with hardening if own_hardening else contextlib.nullcontext():
            if spec.gil_thread:  # started by the hardened thread: an ordinary thread
                threading.Thread(target=_gil_burn, args=(stop,), daemon=True).start()
            cpu0, thread0, wall0 = time.process_time(), time.thread_time(), time.monotonic()
            summary = loop.run(ticks=ticks, t0_ns=t0_ns)
            cpu1, thread1, wall1 = time.process_time(), time.thread_time(), time.monotonic()
    finally:
        stop.set()
        if own:
            work.close()
    assert loop.t0_ns is not None
    window = (loop.t0_ns, loop.t0_ns + summary.ticks * loop.options.period_ns)
    run_s = max(1e-9, (window[1] - window[0]) / _NS_PER_S)
    steps = [str(s) for s in hardening.steps]
    info: dict[str, Any] = {"spin_us": spec.spin_us, "wait": clock.wait, "tick": work.describe or spec.tick,
            "hardening": steps, "fifo": hardening.applied("fifo"),
            "gc_between_ticks": spec.gc_between_ticks, "gc_runs": summary.gc_runs,
            "worst_gc_us": summary.worst_gc_ns / 1000, "window_ns": list(window),
            "cpu_ms_per_s": 1000 * (cpu1 - cpu0) / run_s,
            "loop_thread_cpu_ms_per_s": 1000 * (thread1 - thread0) / run_s,
            "pid": os.getpid(), "tick_stats": work.stats(), **dict(meta or {})}
    report = report_from_history(loop.history, summary, source=spec.source, meta=info)
    return Measurement(report, cpu1 - cpu0, thread1 - thread0, wall1 - wall0, window, steps,
                       hardening.applied("fifo"))


# -- in a child process -------------------------------------------------------------------
def _child(conn: Any, spec: MeasureSpec) -> None:
    """Build the tick, harden, say ready, wait for (t0_ns, ticks), measure, send the
    result. Hardened before ready: its slow steps (a full GC for ``gc_freeze``) must
    not eat into the time before the first release."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent ends the run
    try:
        clock = MonotonicClock(spec.spin_us)
        workload = build_tick(spec, clock)
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    hardening = Hardening(spec.hardening)
    try:
        hardening.apply()
        conn.send(("ready", workload.describe))
        got = conn.recv()
        if got is None:
            return
        t0_ns, ticks, meta = got
        conn.send(("done", measure_here(spec, ticks, t0_ns=t0_ns, workload=workload,
                                        clock=clock, hardening=hardening, meta=meta)))
    except (EOFError, BrokenPipeError):
        return
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        hardening.restore()
        workload.close()


class MeasureProcess:
    """A :class:`MeasureSpec` measured in a spawned child: ``wait_ready()``, then
    ``start(t0_ns, ticks)``, then ``result()``."""

    def __init__(self, spec: MeasureSpec) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.spec = spec
        self._conn, child = ctx.Pipe()
        # Not a daemon: the tick may start processes of its own (decoder, feeder). It ends
        # when the pipe closes (this process gone) or after its run.
        self._proc = ctx.Process(target=_child, args=(child, spec), daemon=False,
                                 name=f"measure {spec.source}")
        self._proc.start()
        child.close()
        self.describe = ""

    def _recv(self, timeout_s: float, what: str) -> Any:
        if not self._conn.poll(timeout_s):
            raise RtAgentError(f"{self.spec.source}: no {what} in {timeout_s:.0f} s")
        try:
            kind, value = self._conn.recv()
        except EOFError:
            raise RtAgentError(f"{self.spec.source}: the measuring process died "
                               f"(exit code {self._proc.exitcode})") from None
        if kind == "error":
            raise RtAgentError(f"{self.spec.source}: {value}")
        return value

    def wait_ready(self, timeout_s: float = 300.0) -> None:
        self.describe = str(self._recv(timeout_s, "tick ready"))

    def start(self, t0_ns: int, ticks: int, meta: Mapping[str, Any]) -> None:
        self._conn.send((t0_ns, ticks, dict(meta)))

    def result(self, timeout_s: float) -> Measurement:
        got: Measurement = self._recv(timeout_s, "result")
        return got

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._conn.send(None)
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=5)
        self._conn.close()


# -- several at once, with cyclictest ---------------------------------------------------
@dataclass
class ConcurrentRun:
    """What :func:`run_concurrent` measured: ours in spec order, then cyclictest's
    report (or ``cyclictest_note``: why there is none)."""

    measurements: list[Measurement]
    cyclictest: JitterReport | None
    cyclictest_note: str = ""
    cyclictest_window_ns: tuple[int, int] | None = None

    def reports(self) -> list[JitterReport]:
        out = [m.report for m in self.measurements]
        return out + ([self.cyclictest] if self.cyclictest is not None else [])


def _sleep_until_ns(t_ns: int) -> None:
    while (left := t_ns - time.monotonic_ns()) > 0:
        time.sleep(left / _NS_PER_S)


def run_concurrent(specs: Sequence[MeasureSpec], seconds: float, *,
                   cyclictest: Cyclictest | None,
                   on_progress: Callable[[float], None] | None = None,
                   on_ready: Callable[[], None] | None = None,
                   meta: Mapping[str, Any] | None = None) -> ConcurrentRun:
    """Measure ``specs`` (same rate) and cyclictest at once for ``seconds``.

    Spec ``i`` of ``n`` releases ``(i + 1) / (n + 1)`` of a period after cyclictest
    does. ``cyclictest=None`` (or one that cannot start): ours only, still at once.
    """
    if not specs or len({s.hz for s in specs}) != 1:
        raise ConfigError("run_concurrent: expected one or more specs at the same rate")
    hz = specs[0].hz
    period_ns = round(_NS_PER_S / hz)
    ticks = max(1, round(seconds * hz))
    children = [MeasureProcess(s) for s in specs]
    try:
        for c in children:
            c.wait_ready()
        if on_ready is not None:
            on_ready()
        note, base_ns = "", None
        if cyclictest is not None:
            note = cyclictest.unavailable() or ""
        if cyclictest is not None and not note:
            # Start just after a whole second, so cyclictest's --secaligned start is the
            # next whole second for sure (it skips one when started after .9).
            now = time.monotonic_ns()
            _sleep_until_ns((now // _NS_PER_S + 1) * _NS_PER_S + 20_000_000)
            started = time.monotonic_ns()
            cyclictest.start(loops=ticks)
            base_ns = (started // _NS_PER_S + 1) * _NS_PER_S + period_ns  # its first release
        if base_ns is None:
            base_ns = time.monotonic_ns() + _START_MARGIN_NS
        # Each child's first release: a whole number of periods after cyclictest's first
        # (none with cyclictest: it is about a second ahead), plus the child's phase.
        skip = max(0, -(-(time.monotonic_ns() + _START_MARGIN_NS - base_ns) // period_ns))
        n = len(children)
        starts = [base_ns + skip * period_ns + (i + 1) * period_ns // (n + 1) for i in range(n)]
        for c, t0 in zip(children, starts, strict=True):
            c.start(t0, ticks, {**dict(meta or {}), "phase_vs_cyclictest_ns": t0 - base_ns})
        end_ns = starts[-1] + ticks * period_ns
        while time.monotonic_ns() < end_ns:
            if on_progress is not None:
                on_progress(max(0.0, (time.monotonic_ns() - starts[0]) / _NS_PER_S))
            time.sleep(0.25)
        measurements = [c.result(timeout_s=60 + seconds) for c in children]
    except BaseException:
        if cyclictest is not None:
            cyclictest.stop()
        raise
    finally:
        for c in children:
            c.close()
    report, ct_window = None, None
    if cyclictest is not None and not note:
        got = cyclictest.result(hz, {"window_ns": [base_ns, base_ns + ticks * period_ns]},
                                timeout_s=30 + seconds)
        if isinstance(got, str):
            note = got
        else:
            report, ct_window = got, (base_ns, base_ns + ticks * period_ns)
    return ConcurrentRun(measurements, report, note, ct_window)
