"""Clocks: the one place rtagent's realtime logic gets the time from.

Every loop and timer takes a :class:`Clock` instead of calling ``time``
directly, so deadline logic can be tested in virtual time with
:class:`FakeClock` and measured on the real clock with :class:`MonotonicClock`.

A clock has two methods:

- ``now_ns()``: monotonic nanoseconds (arbitrary origin, never goes back);
- ``sleep_until_ns(t_ns)``: return at ``t_ns`` or as soon as possible after it
  (never before). Returns immediately when ``t_ns`` is already past.

The real clock waits for *absolute* times: ``clock_nanosleep(CLOCK_MONOTONIC,
TIMER_ABSTIME)`` through ctypes (the GIL is released while it waits), the same
call cyclictest uses. A wait for an absolute time cannot accumulate drift: time
lost before the call (being preempted, waiting for the GIL) shortens the sleep
instead of pushing the wake-up later. Where libc has no ``clock_nanosleep``
(not Linux), :class:`MonotonicClock` falls back to ``time.sleep`` of the delta
computed just before the call, which wakes late by whatever delay falls between
computing it and sleeping; :attr:`MonotonicClock.wait` says which is in use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from realtime.errors import ConfigError

__all__ = ["Clock", "FakeClock", "MonotonicClock", "absolute_sleeper"]

_NS_PER_S = 1_000_000_000
_CLOCK_MONOTONIC = 1  # <time.h> on Linux
_TIMER_ABSTIME = 1
_EINTR = 4


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def absolute_sleeper() -> Callable[[int], None] | None:
    """``sleep_abs(t_ns)``: block until CLOCK_MONOTONIC reaches ``t_ns`` (TIMER_ABSTIME),
    or ``None`` where libc has no ``clock_nanosleep`` or CLOCK_MONOTONIC differs from
    ``time.monotonic_ns``'s clock (not Linux)."""
    if not sys.platform.startswith("linux") or time.get_clock_info("monotonic").implementation \
            != "clock_gettime(CLOCK_MONOTONIC)":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        nanosleep = libc.clock_nanosleep
    except (OSError, AttributeError):
        return None
    nanosleep.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Timespec),
                          ctypes.POINTER(_Timespec)]
    nanosleep.restype = ctypes.c_int
    ts = _Timespec()
    ref = ctypes.byref(ts)

    def sleep_abs(t_ns: int) -> None:
        ts.tv_sec, ts.tv_nsec = divmod(t_ns, _NS_PER_S)
        # CDLL calls release the GIL for the wait. The target is absolute, so after a
        # signal (EINTR) the same call resumes with no error added.
        while (rc := nanosleep(_CLOCK_MONOTONIC, _TIMER_ABSTIME, ref, None)) == _EINTR:
            pass
        if rc != 0:
            raise OSError(rc, f"clock_nanosleep: {os.strerror(rc)}")

    return sleep_abs


@runtime_checkable
class Clock(Protocol):
    """Monotonic time in integer nanoseconds, and absolute sleep."""

    def now_ns(self) -> int:
        """Monotonic time in nanoseconds."""
        ...

    def sleep_until_ns(self, t_ns: int) -> None:
        """Block until ``now_ns() >= t_ns`` (returns at once if already past)."""
        ...


class MonotonicClock:
    """The real clock (``CLOCK_MONOTONIC``) with sleep-then-spin wake-ups.

    ``sleep_until_ns`` sleeps in the kernel until the absolute time ``spin_us``
    before the release (``clock_nanosleep`` with ``TIMER_ABSTIME``, see the
    module doc), then busy-waits on the clock for the rest. The spin absorbs the
    kernel's wake-up latency and timer slack (tens to hundreds of µs under
    load) at the cost of at most ``spin_us`` of CPU per wake-up; ``spin_us=0``
    is a plain absolute sleep, which is what cyclictest measures.

    Args:
        spin_us: spin margin before each release, in microseconds (0..100000).
        absolute: use the absolute ``clock_nanosleep`` where there is one (the
            default); ``False`` forces the relative ``time.sleep`` fallback.
    """

    def __init__(self, spin_us: float = 1000.0, *, absolute: bool = True) -> None:
        if not 0.0 <= spin_us <= 100_000.0:
            raise ConfigError(f"spin_us: expected 0..100000 µs, got {spin_us!r}")
        self.spin_ns = int(spin_us * 1000)
        self._now = time.monotonic_ns
        self._sleep = time.sleep
        self._sleep_abs = absolute_sleeper() if absolute else None
        self.wait = ("clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)"
                     if self._sleep_abs is not None else "time.sleep(delta) (relative)")

    def now_ns(self) -> int:
        return self._now()

    def sleep_until_ns(self, t_ns: int) -> None:
        now = self._now
        wake = t_ns - self.spin_ns
        if self._sleep_abs is not None:
            if wake > now():
                self._sleep_abs(wake)
        else:
            coarse = wake - now()
            if coarse > 0:
                # Relative: a delay between computing ``coarse`` and sleeping makes
                # this wake later (never earlier; time.sleep resumes after EINTR).
                self._sleep(coarse / _NS_PER_S)
        while now() < t_ns:
            pass

    def __repr__(self) -> str:
        return f"MonotonicClock(spin_us={self.spin_ns / 1000:g}, wait={self.wait!r})"


class FakeClock:
    """Virtual time for tests: nothing ever really sleeps.

    ``sleep_until_ns(t)`` jumps the clock to ``t`` plus an injected overshoot
    (a late wake-up); ``advance(ns)`` moves it forward, e.g. from inside a tick
    to simulate the tick's execution time.

    Args:
        start_ns: the initial time.
        overshoot_ns: extra nanoseconds added to every sleep's wake-up, either
            a constant or a callable called with the sleep's target time.
    """

    def __init__(
        self,
        start_ns: int = 0,
        overshoot_ns: int | Callable[[int], int] = 0,
    ) -> None:
        if start_ns < 0:
            raise ConfigError(f"start_ns: expected >= 0, got {start_ns!r}")
        self._t = int(start_ns)
        self._overshoot = overshoot_ns
        self._queued: deque[int] = deque()
        self.sleeps: list[int] = []  # target of every sleep_until_ns call, in order

    def now_ns(self) -> int:
        return self._t

    def advance(self, ns: int) -> None:
        """Move virtual time forward by ``ns`` (>= 0)."""
        if ns < 0:
            raise ConfigError(f"advance: expected ns >= 0, got {ns!r}")
        self._t += int(ns)

    def set_overshoot(self, overshoot_ns: int | Callable[[int], int]) -> None:
        """Change the overshoot applied to later sleeps."""
        self._overshoot = overshoot_ns

    def queue_overshoots(self, overshoots_ns: Iterable[int]) -> None:
        """Use these overshoots for the next sleeps, one each, before the default."""
        for ns in overshoots_ns:
            if ns < 0:
                raise ConfigError(f"overshoot: expected >= 0 ns, got {ns!r}")
            self._queued.append(int(ns))

    def sleep_until_ns(self, t_ns: int) -> None:
        self.sleeps.append(int(t_ns))
        if self._queued:
            extra = self._queued.popleft()
        elif callable(self._overshoot):
            extra = int(self._overshoot(t_ns))
        else:
            extra = int(self._overshoot)
        if t_ns > self._t:  # a target already past returns at once, on time
            self._t = int(t_ns) + max(0, extra)

    def __repr__(self) -> str:
        return f"FakeClock(now_ns={self._t})"
