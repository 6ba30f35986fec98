"""Real-time hardening of the calling process, each step optional and reported.

Steps (all off unless asked for in :class:`HardeningOptions`):

- ``fifo``: SCHED_FIFO at a priority for the calling thread (with
  SCHED_RESET_ON_FORK, so children and later-spawned workers start as
  ordinary SCHED_OTHER tasks);
- ``partners_fifo``: SCHED_FIFO at a lower priority for the process's *other*
  threads (and the threads they start): a Python thread holding the GIL that the
  loop's thread needs must not be kept off the CPU by ordinary processes (the GIL
  has no priority inheritance; this stands in for it). Only for processes whose
  other threads do short bursts of work (never a busy thread);
- ``nice``: a nice value for the calling thread (for SCHED_OTHER: a bigger
  share and earlier wake-up preemption; the fallback when SCHED_FIFO is refused);
- ``affinity``: pin the process to a set of CPUs;
- ``gc_freeze``: collect once, then ``gc.freeze()`` so the objects alive now
  are never scanned again (the loop keeps the remaining GC between ticks);
- ``mlock``: ``mlockall(MCL_CURRENT | MCL_FUTURE)``, no page faults to disk;
- ``switch_interval``: ``sys.setswitchinterval`` (how soon another Python
  thread hands the GIL back to the loop's thread);
- ``timer_slack``: ``prctl(PR_SET_TIMERSLACK)`` (SCHED_OTHER sleeps are
  rounded up by 50 µs by default);
- ``cpu_dma_latency``: hold ``/dev/cpu_dma_latency`` at a value (PM QoS: no
  deep C-states while it is open), as cyclictest does.

:class:`Hardening` applies them, records for each what it did or why not
(never raising for a missing permission), and undoes them on exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO

from realtime.errors import ConfigError

__all__ = [
    "LOOP_SWITCH_INTERVAL_S",
    "Hardening",
    "HardeningOptions",
    "Step",
    "cpu_steal_s",
    "kernel_preemption",
    "probe_fifo",
]

log = logging.getLogger(__name__)

# The switch interval the demos' decision processes use: how long the loop's thread,
# woken for its release, waits for the GIL while another thread of the process holds
# it, before CPython makes that thread hand it over (CPython's default: 5 ms, which
# was the decision loop's lateness p99 while the decoder ran in the same process).
LOOP_SWITCH_INTERVAL_S = 0.0005
_MCL_CURRENT, _MCL_FUTURE = 1, 2
_PR_SET_TIMERSLACK, _PR_GET_TIMERSLACK = 29, 30
_FIFO_HINT = (
    "needs root, CAP_SYS_NICE or an RLIMIT_RTPRIO at least the priority (`ulimit -r`); "
    "in a container also an RT runtime budget for its cgroup"
)


@dataclass(frozen=True)
class HardeningOptions:
    """Which hardening steps to try (``None``/``False`` = leave as is).

    Attributes:
        fifo_priority: SCHED_FIFO priority 1..99 for the calling thread.
        partners_fifo_priority: SCHED_FIFO priority 1..99 for the process's other
            threads, below ``fifo_priority``.
        nice: nice value -20..19 for the calling thread (negative needs CAP_SYS_NICE).
        cpus: CPUs to pin the process to (each must be currently allowed).
        gc_freeze: collect, then freeze the current heap out of future GC.
        mlock: lock all current and future memory (``mlockall``).
        switch_interval_s: Python thread switch interval, > 0 s.
        timer_slack_ns: timer slack of the calling thread, >= 1 ns.
        cpu_dma_latency_us: PM QoS CPU wake-up latency bound, >= 0 µs.
    """

    fifo_priority: int | None = None
    partners_fifo_priority: int | None = None
    nice: int | None = None
    cpus: tuple[int, ...] | None = None
    gc_freeze: bool = False
    mlock: bool = False
    switch_interval_s: float | None = None
    timer_slack_ns: int | None = None
    cpu_dma_latency_us: int | None = None

    def __post_init__(self) -> None:
        if self.fifo_priority is not None and not 1 <= self.fifo_priority <= 99:
            raise ConfigError(f"fifo_priority: expected 1..99, got {self.fifo_priority!r}")
        if self.partners_fifo_priority is not None and not (
                1 <= self.partners_fifo_priority < (self.fifo_priority or 100)):
            raise ConfigError("partners_fifo_priority: expected 1..99, below fifo_priority "
                              f"({self.fifo_priority}), got {self.partners_fifo_priority!r}")
        if self.nice is not None and not -20 <= self.nice <= 19:
            raise ConfigError(f"nice: expected -20..19, got {self.nice!r}")
        if self.cpus is not None:
            allowed = os.sched_getaffinity(0)
            if not self.cpus or not set(self.cpus) <= allowed:
                raise ConfigError(
                    f"cpus: expected a non-empty subset of {sorted(allowed)}, got {self.cpus!r}"
                )
        if self.switch_interval_s is not None and not self.switch_interval_s > 0:
            raise ConfigError(f"switch_interval_s: expected > 0, got {self.switch_interval_s!r}")
        if self.timer_slack_ns is not None and self.timer_slack_ns < 1:
            raise ConfigError(f"timer_slack_ns: expected >= 1, got {self.timer_slack_ns!r}")
        if self.cpu_dma_latency_us is not None and self.cpu_dma_latency_us < 0:
            raise ConfigError(
                f"cpu_dma_latency_us: expected >= 0, got {self.cpu_dma_latency_us!r}"
            )


@dataclass(frozen=True)
class Step:
    """One hardening step: what was asked, whether it took, and the details."""

    name: str
    applied: bool
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {'on' if self.applied else 'not applied'} ({self.detail})"


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def probe_fifo(priority: int = 80) -> tuple[bool, str]:
    """Whether this thread may use SCHED_FIFO at ``priority`` (tries and reverts)."""
    old_policy = os.sched_getscheduler(0)
    old_param = os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as exc:
        return False, f"SCHED_FIFO {priority} not permitted: {exc.strerror}; {_FIFO_HINT}"
    os.sched_setscheduler(0, old_policy, old_param)
    return True, f"SCHED_FIFO {priority} permitted"


class Hardening:
    """Applies :class:`HardeningOptions` on ``apply()``/enter; undoes on ``restore()``/exit."""

    def __init__(self, options: HardeningOptions) -> None:
        self.options = options
        self.steps: list[Step] = []
        self._undo: list[Callable[[], None]] = []  # newest last
        self._dma: BinaryIO | None = None

    def __enter__(self) -> Hardening:
        self.apply()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()

    def applied(self, name: str) -> bool:
        return any(s.name == name and s.applied for s in self.steps)

    def apply(self) -> list[Step]:
        o = self.options
        if o.cpus is not None:
            self._affinity(o.cpus)
        if o.gc_freeze:
            self._gc_freeze()
        if o.switch_interval_s is not None:
            old = sys.getswitchinterval()
            sys.setswitchinterval(o.switch_interval_s)
            self._undo.append(lambda: sys.setswitchinterval(old))
            self._add("switch_interval", True,
                      f"{old * 1e3:g} ms -> {sys.getswitchinterval() * 1e3:g} ms")
        if o.timer_slack_ns is not None:
            self._timer_slack(o.timer_slack_ns)
        if o.cpu_dma_latency_us is not None:
            self._cpu_dma_latency(o.cpu_dma_latency_us)
        if o.mlock:
            self._mlock()
        if o.nice is not None:
            self._nice(o.nice)
        if o.partners_fifo_priority is not None:
            self._partners_fifo(o.partners_fifo_priority)
        if o.fifo_priority is not None:  # last: the other steps run at normal priority
            self._fifo(o.fifo_priority)
        return self.steps

    def _add(self, name: str, applied: bool, detail: str) -> None:
        self.steps.append(Step(name, applied, detail))

    def _fifo(self, prio: int) -> None:
        old_policy, old_param = os.sched_getscheduler(0), os.sched_getparam(0)
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(prio))
        except OSError as exc:
            self._add("fifo", False, f"SCHED_FIFO {prio}: {exc.strerror}; {_FIFO_HINT}")
            return
        self._undo.append(lambda: os.sched_setscheduler(0, old_policy, old_param))
        self._add("fifo", True, f"SCHED_FIFO priority {prio} on the calling thread")

    def _partners_fifo(self, prio: int) -> None:
        me = threading.get_native_id()
        try:
            tids = [int(t) for t in os.listdir("/proc/self/task") if int(t) != me]
        except OSError as exc:
            self._add("partners_fifo", False, f"cannot list the process's threads: {exc.strerror}")
            return
        done: list[tuple[int, int, os.sched_param]] = []
        for tid in tids:
            try:
                old = (tid, os.sched_getscheduler(tid), os.sched_getparam(tid))
                os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(prio))
            except ProcessLookupError:  # the thread ended meanwhile
                continue
            except OSError as exc:
                _restore_policies(done)
                self._add("partners_fifo", False,
                          f"SCHED_FIFO {prio} for the other threads: {exc.strerror}; {_FIFO_HINT}")
                return
            done.append(old)
        self._undo.append(lambda: _restore_policies(done))
        self._add("partners_fifo", True, f"SCHED_FIFO priority {prio} on the {len(done)} other "
                                         "threads (and those they start)")

    def _nice(self, nice: int) -> None:
        old = os.getpriority(os.PRIO_PROCESS, 0)
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        except OSError as exc:
            self._add("nice", False, f"nice {nice}: {exc.strerror} (needs CAP_SYS_NICE "
                                     "or `ulimit -e`)")
            return
        self._undo.append(lambda: os.setpriority(os.PRIO_PROCESS, 0, old))
        self._add("nice", True, f"nice {old} -> {nice} (calling thread)")

    def _affinity(self, cpus: tuple[int, ...]) -> None:
        old = os.sched_getaffinity(0)
        try:
            os.sched_setaffinity(0, cpus)
        except OSError as exc:
            self._add("affinity", False, f"CPUs {list(cpus)}: {exc.strerror}")
            return
        self._undo.append(lambda: os.sched_setaffinity(0, old))
        self._add("affinity", True, f"pinned to CPUs {sorted(cpus)} (was {sorted(old)})")

    def _gc_freeze(self) -> None:
        collected = gc.collect()
        gc.freeze()
        self._undo.append(gc.unfreeze)
        self._add("gc_freeze", True,
                  f"collected {collected}, froze {gc.get_freeze_count()} objects")

    def _timer_slack(self, ns: int) -> None:
        libc = _libc()
        old = libc.prctl(_PR_GET_TIMERSLACK, 0, 0, 0, 0)
        if _set_timer_slack(libc, ns) != 0:
            err = ctypes.get_errno()
            self._add("timer_slack", False, f"prctl failed: {os.strerror(err)}")
            return
        self._undo.append(lambda: _restore_timer_slack(libc, old))
        self._add("timer_slack", True, f"{old} ns -> {ns} ns (calling thread)")

    def _cpu_dma_latency(self, us: int) -> None:
        try:
            f = open("/dev/cpu_dma_latency", "wb", buffering=0)  # noqa: SIM115 (held open)
        except OSError as exc:
            self._add("cpu_dma_latency", False,
                      f"/dev/cpu_dma_latency: {exc.strerror} (needs root and PM QoS)")
            return
        f.write(struct.pack("i", us))
        self._dma = f
        self._add("cpu_dma_latency", True, f"held at {us} µs while running")

    def _mlock(self) -> None:
        libc = _libc()
        if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) != 0:
            err = ctypes.get_errno()
            self._add("mlock", False,
                      f"mlockall: {os.strerror(err)} (needs CAP_IPC_LOCK or `ulimit -l unlimited`)")
            return
        self._undo.append(libc.munlockall)
        self._add("mlock", True, f"mlockall(current|future), {_vm_locked()} locked")

    def restore(self) -> None:
        """Undo every applied step, newest first (safe to call twice)."""
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except OSError as exc:  # e.g. an unprivileged user cannot lower nice again
                log.warning("hardening: could not undo a step: %s", exc)
        if self._dma is not None:
            self._dma.close()
            self._dma = None


def kernel_preemption() -> str:
    """The kernel's preemption model, as far as this process can tell.

    Under ``none``/``voluntary`` a woken SCHED_FIFO task can wait for another
    task's long kernel path (ms); ``full`` or PREEMPT_RT bound that.
    """
    try:
        with open("/sys/kernel/debug/sched/preempt") as f:  # PREEMPT_DYNAMIC, debugfs
            mode = next((w.strip("()") for w in f.read().split() if w.startswith("(")), "")
            if mode:
                return f"{mode} (dynamic)"
    except OSError:
        pass
    version = os.uname().version
    if "PREEMPT_RT" in version:
        return "rt"
    if "PREEMPT_DYNAMIC" in version:
        return f"{_dynamic_default()} (dynamic)"
    return "full" if "PREEMPT" in version else "none or voluntary"


def _dynamic_default() -> str:
    try:
        with open("/proc/cmdline") as f:
            for word in f.read().split():
                if word.startswith("preempt="):
                    return word.split("=", 1)[1]
        import gzip

        with gzip.open("/proc/config.gz", "rt") as f:
            config = f.read()
    except OSError:
        return "mode unknown"
    for mode, key in (("none", "NONE"), ("voluntary", "VOLUNTARY"), ("full", "")):
        if f"CONFIG_PREEMPT{'_' + key if key else ''}=y" in config:
            return mode
    return "mode unknown"


def cpu_steal_s() -> float | None:
    """Seconds of CPU time the hypervisor gave to others (all CPUs, since boot)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _set_policy(tid: int, policy: int, param: os.sched_param) -> None:
    with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
        os.sched_setscheduler(tid, policy, param)


def _restore_policies(saved: list[tuple[int, int, os.sched_param]]) -> None:
    for tid, policy, param in saved:
        _set_policy(tid, policy, param)


def _set_timer_slack(libc: ctypes.CDLL, ns: int) -> int:
    return int(libc.prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0))


def _restore_timer_slack(libc: ctypes.CDLL, ns: int) -> None:
    _set_timer_slack(libc, ns)


def _vm_locked() -> str:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmLck:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
