"""An asyncio event loop on a virtual clock, for exact and fast replays.

``loop.time()`` is virtual; when nothing is ready the loop jumps the clock to the
next timer instead of sleeping. Real I/O still works: its readiness is polled
without waiting, and when no timer is pending the loop blocks for real (e.g.
for a worker thread). Everything else is the ordinary asyncio loop, so the code
it runs (the real speculative executor) is the code the demos run.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

__all__ = ["VirtualTimeLoop", "run_virtual"]

T = TypeVar("T")


class _VirtualSelector(selectors.BaseSelector):
    def __init__(self, loop_clock: list[float]) -> None:
        self._inner = selectors.DefaultSelector()
        self._clock = loop_clock

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None
               ) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready:
            return ready
        if timeout is None:
            return self._inner.select(None)  # nothing scheduled: wait for real I/O
        if timeout > 0:
            self._clock[0] += timeout
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose ``time()`` only advances when it would sleep."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._vclock = [start_s]
        super().__init__(_VirtualSelector(self._vclock))

    def time(self) -> float:
        return self._vclock[0]


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh :class:`VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(coro)
