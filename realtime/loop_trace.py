"""Tick spans of a :class:`~realtime.loop.DeadlineLoop`, from its history.

The loop already records release, wake-up and end of every tick in its ring
buffer (:class:`~realtime.loop.TickHistory`); nothing is added to the tick
itself. :class:`TickTracer` turns those records into trace spans, either
between ticks (installed as the loop's ``between_ticks`` hook, which the loop
only calls when enough slack is left, so a live collector sees ticks as they
happen) or all at once after the run (:meth:`TickTracer.flush`)::

    ticks = TickTracer(loop, tracer).attach()   # no-op when the tracer is off
    loop.run(seconds=60)
    ticks.finish()                              # the rest, plus a summary instant

Each span runs from wake-up to end (track ``loop``, name ``tick``) with args
``lateness_us`` (wake-up - release), ``exec_us``, ``miss`` (ended after
release + budget) and ``skipped`` (releases skipped before it). Ticks that
were overwritten in the ring before they were read are counted in ``lost``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from realtime.loop import DeadlineLoop, TickHistory, TickInfo
from realtime.trace import Tracer

__all__ = ["TickTracer"]


def _ring(history: TickHistory) -> tuple[Any, Any, Any]:
    # Read the ring in place: ``TickHistory.arrays()`` copies the whole buffer,
    # which is too slow to do between ticks.
    return history._release, history._wake, history._end


class TickTracer:
    """Emits one span per tick of ``loop`` on ``tracer`` (see the module doc)."""

    def __init__(self, loop: DeadlineLoop[Any], tracer: Tracer, *, track: str = "loop",
                 max_per_hook: int = 64) -> None:
        self.loop = loop
        self.tracer = tracer
        self.track = track
        self.max_per_hook = max_per_hook
        self.emitted = 0
        self.lost = 0
        self._next = loop.history.total  # first tick not yet emitted
        self._chained: Callable[[TickInfo], None] | None = None
        self._prev_release: int | None = None

    def attach(self) -> TickTracer:
        """Install as the loop's ``between_ticks`` hook (keeping the one it had).
        Does nothing when the tracer is disabled."""
        if self.tracer.enabled and self.loop.between_ticks != self.between_ticks:
            self._chained = self.loop.between_ticks
            self.loop.between_ticks = self.between_ticks
        return self

    def between_ticks(self, info: TickInfo) -> None:
        self.flush(self.max_per_hook)
        if self._chained is not None:
            self._chained(info)

    def flush(self, limit: int | None = None) -> int:
        """Emit spans for ticks recorded since the last flush (at most ``limit``)."""
        if not self.tracer.enabled:
            return 0
        history = self.loop.history
        total, cap = history.total, history.capacity
        oldest = total - len(history)
        if self._next < oldest:
            self.lost += oldest - self._next
            self._next = oldest
            self._prev_release = None
        stop = total if limit is None else min(total, self._next + limit)
        release, wake, end = _ring(history)
        period = self.loop.options.period_ns
        budget = self.loop.options.budget_ns
        complete, track = self.tracer.complete, self.track
        for n in range(self._next, stop):
            i = n % cap
            r, w, e = release[i], wake[i], end[i]
            prev = self._prev_release
            skipped = 0 if prev is None else max(0, round((r - prev) / period) - 1)
            complete("tick", track, w, e, "loop", lateness_us=(w - r) / 1e3,
                     exec_us=(e - w) / 1e3, miss=e > r + budget, skipped=skipped)
            self._prev_release = r
        count = max(0, stop - self._next)
        self._next = stop
        self.emitted += count
        return count

    def finish(self) -> int:
        """Emit every remaining tick, then one ``loop summary`` instant with the
        loop's counters (over its whole life) and its rate and budget."""
        n = self.flush()
        if self.tracer.enabled:
            s = self.loop.summarize()
            self.tracer.instant("loop summary", self.track, "loop", hz=s.hz,
                                budget_ms=self.loop.options.budget_ns / 1e6, ticks=s.ticks,
                                deadline_misses=s.deadline_misses, overruns=s.overruns,
                                skipped_releases=s.skipped_releases,
                                worst_lateness_us=s.worst_lateness_ns / 1e3,
                                traced=self.emitted, lost=self.lost)
        return n
