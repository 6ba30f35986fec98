"""Handing finished work to a deadline loop: a one-slot mailbox the tick polls without
blocking (:class:`LatestResult`), and the fallback command when nothing new is ready
(:class:`HoldOrStop`). :mod:`realtime.loop` re-exports both."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

from realtime.errors import ConfigError

__all__ = ["HoldOrStop", "LatestResult", "Posted"]

T = TypeVar("T")
C = TypeVar("C")


# -- polling for finished work ------------------------------------------------
@dataclass(frozen=True, slots=True)
class Posted(Generic[T]):
    """A value a worker posted, stamped with its sequence number and time."""

    value: T
    seq: int  # 1, 2, 3, ... per mailbox
    t_ns: int  # the poster's clock reading when it posted


class LatestResult(Generic[T]):
    """A one-slot mailbox: workers post, the tick polls without blocking.

    Latest value wins: a value posted over one that was never taken is
    dropped (counted in ``overwritten``). ``poll()`` returns each value at
    most once; ``latest()`` returns the newest whether taken or not.
    Thread-safe; the lock is held only for a few assignments.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: Posted[T] | None = None
        self._taken_seq = 0
        self.posted = 0
        self.overwritten = 0

    def post(self, value: T, t_ns: int) -> int:
        """Publish ``value`` (stamped ``t_ns``); returns its sequence number."""
        with self._lock:
            if self._item is not None and self._item.seq > self._taken_seq:
                self.overwritten += 1
            self.posted += 1
            self._item = Posted(value, self.posted, t_ns)
            return self.posted

    def poll(self) -> Posted[T] | None:
        """The newest value not yet polled, or ``None`` (never blocks)."""
        with self._lock:
            item = self._item
            if item is None or item.seq <= self._taken_seq:
                return None
            self._taken_seq = item.seq
            return item

    def latest(self) -> Posted[T] | None:
        with self._lock:
            return self._item


class HoldOrStop(Generic[C]):
    """The fallback a tick emits when no fresh command is ready.

    Call it every tick with the fresh command or ``None``: a fresh command is
    returned (and remembered); without one, the last command is held for up to
    ``max_hold_ticks`` ticks, then ``safe_stop`` is returned until a fresh
    command arrives. ``max_hold_ticks=0`` means stop at once.
    """

    def __init__(self, safe_stop: C, max_hold_ticks: int) -> None:
        if max_hold_ticks < 0:
            raise ConfigError(f"max_hold_ticks: expected >= 0, got {max_hold_ticks!r}")
        self.safe_stop = safe_stop
        self.max_hold_ticks = max_hold_ticks
        self._last: C | None = None
        self._held = 0
        self.holds = 0  # ticks that re-emitted the last command
        self.stops = 0  # ticks that emitted safe_stop for want of a fresh command

    def __call__(self, fresh: C | None) -> C:
        if fresh is not None:
            self._last = fresh
            self._held = 0
            return fresh
        self._held += 1
        if self._last is not None and self._held <= self.max_hold_ticks:
            self.holds += 1
            return self._last
        self.stops += 1
        return self.safe_stop
