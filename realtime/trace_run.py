"""The front-end's side of ``--trace PATH``: one collector for a run's processes.

A demo or benchmark front-end makes one :class:`TraceRun`. With a path it binds
a :class:`~realtime.trace_bus.TraceCollector` in a private run directory and
drains it on a thread; :meth:`TraceRun.env` gives the environment entries that
switch tracing on in the child processes (each records through
:meth:`BusTracer.from_env <realtime.trace_bus.BusTracer.from_env>`), and
:attr:`TraceRun.tracer` records the front-end's own events. Every event goes to
the path as it comes (:class:`~realtime.trace_file.ChromeStream`: a kill -9 of
the front-end leaves all but the last moment of the run there, readable by
``rtagent report``); at the end the merged Chrome trace / Perfetto JSON
replaces it (also when the run failed: that trace is the one most worth reading)::

    with TraceRun(args.trace) as trace:       # args.trace None: off, opens nothing
        spec = ProcessSpec(..., env={**other_env, **trace.env()})
        ... run the processes ...
    # trace.written: the file, or None when tracing was off

With ``path=None`` nothing is opened, ``env()`` is empty and ``tracer`` is a
disabled :class:`~realtime.trace.Tracer` (every call returns at once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from realtime.endpoints import RunDirectory
from realtime.trace import Tracer
from realtime.trace_bus import TraceBusOptions, TraceCollector
from realtime.trace_file import ChromeStream

__all__ = ["TraceRun"]


class TraceRun:
    """Collects a run's trace into ``path`` (``None``: tracing off)."""

    def __init__(self, path: str | Path | None, *, process: str = "frontend",
                 options: TraceBusOptions | None = None, **metadata: Any) -> None:
        self.path = Path(path) if path else None
        self.metadata = metadata
        self.written: Path | None = None
        self._run_dir: RunDirectory | None = None
        self.collector: TraceCollector | None = None
        sink = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._run_dir = RunDirectory()
            try:
                stream = ChromeStream(self.path, **metadata)
                self.collector = TraceCollector(self._run_dir.endpoint("trace"),
                                                options=options, stream=stream).start()
            except BaseException:
                self._run_dir.close()
                raise
            sink = self.collector.add_event  # the front-end's events stream as they are made
        capacity = (options or TraceBusOptions()).local_capacity_events
        self.tracer = Tracer(process, enabled=self.collector is not None, capacity=capacity,
                             sink=sink)

    @property
    def enabled(self) -> bool:
        return self.collector is not None

    def env(self) -> dict[str, str]:
        """Environment entries for the child processes (empty when off)."""
        return self.collector.env() if self.collector is not None else {}

    def summary(self) -> dict[str, Any]:
        """The collector's counters (empty when off)."""
        return self.collector.summary() if self.collector is not None else {}

    def write(self, **metadata: Any) -> Path | None:
        """Write the merged trace (the processes' events and the front-end's) to the
        path; call it after the processes stopped. Returns the path (None when off)."""
        if self.collector is None or self.path is None:
            return None
        self.tracer.drain()  # the collector has these already (the tracer's sink)
        self.written = self.collector.write(self.path, **{**self.metadata, **metadata})
        return self.written

    def describe(self) -> str | None:
        """What :meth:`write` wrote, for the user (None: nothing was written)."""
        if self.written is None:
            return None
        return (f"wrote the trace {self.written} ({self.summary()['events_kept']:,} events); "
                f"`rtagent report {self.written}` makes a report of it")

    def close(self) -> None:
        if self.collector is not None:
            self.collector.close()
        if self._run_dir is not None:
            self._run_dir.close()

    def __enter__(self) -> TraceRun:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.written is None:
                self.write()
        finally:
            self.close()
