"""Trace events from every process, exported as Chrome trace / Perfetto JSON.

A :class:`Tracer` records :class:`~realtime.messages.TraceEvent` s into a bounded
buffer (oldest dropped first, with a count). When disabled, every call returns
at once and allocates nothing, so tracing can stay in the code paths of the
deadline loop. Events from several processes are merged by :func:`to_chrome`
into one file: one row group per process (``source``), one row per ``track``
(a concern: ``loop``, ``decoder``, ``tools``, ``speculation``, ``bus``), so any
run opens in chrome://tracing or ui.perfetto.dev. :mod:`realtime.trace_file`
writes the same events to disk as they come (a killed run keeps its trace).
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from realtime.messages import Scalar, TraceEvent
from realtime.trace_file import chrome_item, load_chrome

__all__ = ["Tracer", "named_events", "read_chrome", "to_chrome", "write_chrome"]

_OFF: AbstractContextManager[None] = nullcontext()


class Tracer:
    """Records trace events of one process. ``sink`` (e.g. a bus publisher) also
    receives each event as it is recorded."""

    def __init__(
        self,
        process: str,
        *,
        enabled: bool = True,
        capacity: int = 200_000,
        now_ns: Callable[[], int] = time.monotonic_ns,
        sink: Callable[[TraceEvent], None] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: expected >= 1, got {capacity}")
        self.process = process
        self.enabled = enabled
        self.dropped = 0
        self._now_ns = now_ns
        self._sink = sink
        self._events: deque[TraceEvent] = deque(maxlen=capacity)
        self._seq = 0

    def _record(self, event: TraceEvent) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._seq += 1
        event.seq = self._seq
        self._events.append(event)
        if self._sink is not None:
            self._sink(event)

    def complete(self, name: str, track: str, start_ns: int, end_ns: int,
                 cat: str = "", **args: Scalar) -> None:
        """A finished span (Chrome phase ``X``)."""
        if self.enabled:
            self._record(TraceEvent(source=self.process, t_ns=end_ns, name=name, ph="X",
                                    ts_ns=start_ns, dur_ns=max(0, end_ns - start_ns),
                                    track=track, cat=cat, args=args))

    def span(self, name: str, track: str, cat: str = "", **args: Scalar) -> AbstractContextManager[None]:
        """Time the ``with`` block as one span."""
        if not self.enabled:
            return _OFF
        return self._span(name, track, cat, args)

    @contextmanager
    def _span(self, name: str, track: str, cat: str, args: dict[str, Scalar]) -> Iterator[None]:
        start = self._now_ns()
        try:
            yield
        finally:
            self.complete(name, track, start, self._now_ns(), cat, **args)

    def instant(self, name: str, track: str, cat: str = "", **args: Scalar) -> None:
        if self.enabled:
            t = self._now_ns()
            self._record(TraceEvent(source=self.process, t_ns=t, name=name, ph="i", ts_ns=t,
                                    track=track, cat=cat, args=args))

    def counter(self, name: str, track: str, **values: Scalar) -> None:
        if self.enabled:
            t = self._now_ns()
            self._record(TraceEvent(source=self.process, t_ns=t, name=name, ph="C", ts_ns=t,
                                    track=track, args=values))

    def add(self, event: TraceEvent) -> None:
        """Add an event recorded elsewhere (e.g. received from another process); the
        sink gets it too."""
        if self.enabled:
            if len(self._events) == self._events.maxlen:
                self.dropped += 1
            self._events.append(event)
            if self._sink is not None:
                self._sink(event)

    def events(self) -> list[TraceEvent]:
        return list(self._events)

    def drain(self) -> list[TraceEvent]:
        out = list(self._events)
        self._events.clear()
        return out


def to_chrome(events: Iterable[TraceEvent], *, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Chrome trace JSON (``traceEvents``; times in µs from the earliest event)."""
    evs = sorted(events, key=lambda e: e.ts_ns)
    t0 = evs[0].ts_ns if evs else 0
    pids: dict[str, int] = {}
    tids: dict[tuple[str, str], int] = {}
    out: list[dict[str, Any]] = []
    for e in evs:
        proc = e.source or "process"
        if proc not in pids:
            pids[proc] = len(pids) + 1
            out.append({"ph": "M", "name": "process_name", "pid": pids[proc], "tid": 0,
                        "args": {"name": proc}})
        key = (proc, e.track or "main")
        if key not in tids:
            tids[key] = len([k for k in tids if k[0] == proc]) + 1
            out.append({"ph": "M", "name": "thread_name", "pid": pids[proc], "tid": tids[key],
                        "args": {"name": key[1]}})
        out.append(chrome_item(e, pids[proc], tids[key], t0))
    return {"traceEvents": out, "displayTimeUnit": "ms",
            "otherData": {"t0_monotonic_ns": t0, **(metadata or {})}}


def write_chrome(path: str | Path, events: Iterable[TraceEvent], **metadata: Any) -> Path:
    """Write the trace atomically (a crash never leaves half a file)."""
    path = Path(path)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(to_chrome(events, metadata=metadata)))
    tmp.replace(path)
    return path


def read_chrome(path: str | Path) -> list[dict[str, Any]]:
    """The non-metadata events of a Chrome trace file, with ``process``/``track`` names
    added: the final file, or one still being streamed or cut short by a kill
    (:func:`realtime.trace_file.load_chrome`)."""
    return named_events(load_chrome(path)[0])


def named_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The non-metadata ones of Chrome trace ``events``, with ``process``/``track`` names."""
    procs = {e["pid"]: e["args"]["name"] for e in events
             if e.get("ph") == "M" and e["name"] == "process_name"}
    tracks = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
              if e.get("ph") == "M" and e["name"] == "thread_name"}
    return [{**e, "process": procs.get(e["pid"], str(e["pid"])),
             "track": tracks.get((e["pid"], e["tid"]), str(e["tid"]))}
            for e in events if e.get("ph") != "M"]
