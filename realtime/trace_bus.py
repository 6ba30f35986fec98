"""Trace events from every process, collected over the bus into one Chrome trace.

Each process records with its own :class:`~realtime.trace.Tracer`; a
:class:`BusTracer` gives that tracer a :class:`TraceSink` that publishes every
event as a :class:`~realtime.messages.TraceEvent` on a PUB-style socket. The
front-end runs one :class:`TraceCollector` (SUB, bound), which drains the events
into a bounded buffer, streams them to disk as they come when given a
:class:`~realtime.trace_file.ChromeStream` (so a killed front-end leaves its
trace behind), and writes the merged Chrome trace / Perfetto JSON at the end
(one row group per process, one row per track)::

    # front-end (owns the file)
    with TraceCollector(run_dir.endpoint("trace")) as collector:
        collector.start()                       # drains on its own thread
        env = {**os.environ, **collector.env()}  # children learn where to send
        ... spawn the nodes with env, run, stop them ...
        collector.write("run.trace.json")       # after the nodes closed their tracers

    # any node (tracing is off, and free, unless the front-end set the variable)
    bus = BusTracer.from_env("decision")
    agent = Agent(..., tracer=bus.tracer)
    ...
    bus.close()                                 # delivers what is queued, then its counters

Costs and bounds: with tracing off the tracer is disabled and no socket exists.
With it on, recording an event only appends it to the sink's bounded queue
(``queue_events``; beyond it the event is dropped and counted); a sender thread
publishes the queue every ``flush_ms``. Sending each event where it is recorded
would put a ZeroMQ send, and often a wake-up of ZeroMQ's I/O thread, inside the
deadline loop's tick (measured with `rtagent bench trace`: about 0.2 ms per
event on a busy 2-core VM); ``flush_ms=0`` does that anyway (synchronous
sends). The sink uses XPUB with ``ZMQ_XPUB_NODROP``, so a full send queue is
seen, counted (``TraceSink.dropped``) and the event dropped, never waited for.
The sink is thread-safe (events may come from the agent's loop thread and from
the decoder thread). On close each sink sends what is queued, then publishes
its counters, so the collector reports what every sender dropped
(``otherData.trace_senders``).

Times are the processes' ``time.monotonic_ns`` (CLOCK_MONOTONIC: one time base on
one host). Across hosts clocks differ; traces from another host are offset.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from realtime.bus import BusOptions, Publisher, Subscriber
from realtime.errors import ConfigError
from realtime.messages import TraceEvent
from realtime.trace import Tracer, write_chrome
from realtime.trace_file import ChromeStream

__all__ = [
    "SINK_STATS",
    "TRACE_ENV",
    "TRACE_TOPIC",
    "BusTracer",
    "TraceBusOptions",
    "TraceCollector",
    "TraceSink",
]

#: Environment variable naming the collector's endpoint for child processes.
TRACE_ENV = "RTAGENT_TRACE_ENDPOINT"
#: Topic of trace events on the bus.
TRACE_TOPIC = "TraceEvent"
#: Name of the counter event a sink publishes when it closes.
SINK_STATS = "trace.sink"


@dataclass(frozen=True)
class TraceBusOptions:
    """Bounds of trace collection.

    Attributes:
        queue_events: events queued per socket (PUB send / SUB receive high-water
            mark) before the sender drops and counts (>= 16).
        capacity_events: events the collector keeps; beyond it the oldest are
            dropped and counted (>= 1).
        local_capacity_events: events each process's own tracer keeps as well (>= 1).
        linger_ms: on close, how long a sink may take to deliver queued events (>= 0).
        connect_timeout_ms: how long a sink waits for the collector's subscription
            before tracing anyway (events sent before it arrives are lost) (>= 0).
        flush_ms: how often a sink's sender thread publishes the queued events
            (>= 0; 0: no thread, each event is sent where it is recorded).
    """

    queue_events: int = 8192
    capacity_events: int = 500_000
    local_capacity_events: int = 4096
    linger_ms: int = 1000
    connect_timeout_ms: float = 2000.0
    flush_ms: float = 20.0

    def __post_init__(self) -> None:
        for name, low in (("queue_events", 16), ("capacity_events", 1),
                          ("local_capacity_events", 1), ("linger_ms", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ConfigError(f"TraceBusOptions.{name}: expected an int >= {low}, got {value!r}")
        if not self.connect_timeout_ms >= 0:
            raise ConfigError("TraceBusOptions.connect_timeout_ms: expected >= 0, "
                              f"got {self.connect_timeout_ms!r}")
        if not self.flush_ms >= 0:
            raise ConfigError(f"TraceBusOptions.flush_ms: expected >= 0, got {self.flush_ms!r}")

    def bus(self) -> BusOptions:
        return BusOptions(sndhwm=self.queue_events, rcvhwm=self.queue_events,
                          linger_ms=self.linger_ms, max_drain=4096)


class _XPublisher(Publisher):
    """A :class:`Publisher` on XPUB with ``XPUB_NODROP``: a full queue is an error
    we count (``stats.dropped["full"]``) instead of a silent loss, and the
    collector's subscription can be waited for."""

    socket_type = zmq.XPUB

    def __init__(self, endpoint: str, **kw: Any) -> None:
        super().__init__(endpoint, **kw)
        self.sock.setsockopt(zmq.XPUB_NODROP, 1)


class TraceSink:
    """A tracer's sink that publishes each event on the trace bus (connects).

    Call it with a :class:`TraceEvent`; it never blocks: the event is queued and
    a sender thread publishes it within ``flush_ms`` (or, with ``flush_ms=0``,
    it is published at once). ``sent``/``dropped`` count what happened (queued
    events are in neither yet); thread-safe.
    """

    def __init__(self, endpoint: str, *, process: str, options: TraceBusOptions | None = None,
                 context: zmq.Context[Any] | None = None) -> None:
        self.options = options or TraceBusOptions()
        self.process = process
        self._pub = _XPublisher(endpoint, source=process, bind=False,
                                options=self.options.bus(), context=context)
        self._lock = threading.Lock()
        self._subscribed = False
        self._queue: deque[TraceEvent] = deque()
        self._queue_dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.options.flush_ms > 0:
            self._thread = threading.Thread(target=self._run, name="trace-sink", daemon=True)
            self._thread.start()

    @property
    def sent(self) -> int:
        return self._pub.stats.sent

    @property
    def dropped(self) -> int:
        return sum(self._pub.stats.dropped.values()) + self._queue_dropped

    def __call__(self, event: TraceEvent) -> None:
        if self._thread is not None:
            if len(self._queue) < self.options.queue_events:
                self._queue.append(event)  # atomic; the sender thread takes it
            else:
                self._queue_dropped += 1
            return
        with self._lock:
            if not self._pub.sock.closed:
                self._pub.publish(event, TRACE_TOPIC)

    def _run(self) -> None:
        while not self._stop.wait(self.options.flush_ms / 1e3):
            self._send_queued()
        self._send_queued()

    def _send_queued(self) -> None:
        queue = self._queue
        with self._lock:
            while queue:
                event = queue.popleft()
                if self._pub.sock.closed:
                    self._queue_dropped += 1
                else:
                    self._pub.publish(event, TRACE_TOPIC)

    def wait_connected(self, timeout_ms: float) -> bool:
        """Wait until the collector has subscribed (``False``: it did not within the time)."""
        deadline = time.monotonic() + timeout_ms / 1e3
        with self._lock:
            while not self._subscribed:
                left_ms = (deadline - time.monotonic()) * 1e3
                if left_ms <= 0 or not self._pub.sock.poll(max(1, int(left_ms)), zmq.POLLIN):
                    break
                msg = self._pub.sock.recv()  # b"\x01" + topic: a subscription
                self._subscribed = msg[:1] == b"\x01"
            return self._subscribed

    def close(self) -> None:
        """Send what is queued, publish this sender's counters, then close (what
        ZeroMQ still holds gets ``linger_ms``)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._pub.sock.closed:
                return
            stats = TraceEvent(name=SINK_STATS, ph="C", track="trace", source=self.process,
                               args={"sent": self.sent, "dropped": self.dropped})
            stats.ts_ns = stats.t_ns = time.monotonic_ns()
            deadline = time.monotonic() + self.options.linger_ms / 1e3
            frames = [TRACE_TOPIC.encode(), *self._pub.codec.encode(self._pub.stamp(stats))]
            while True:  # sent directly: ``sent``/``dropped`` count trace events only
                try:
                    self._pub.sock.send_multipart(frames, zmq.NOBLOCK)
                    break
                except zmq.Again:
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(0.002)
            self._pub.close()


class BusTracer:
    """A process's :class:`Tracer`, publishing to the collector at ``endpoint``.

    With ``endpoint=None`` the tracer is disabled and nothing is opened: code can
    trace unconditionally at no cost. ``tracer`` is what components take.
    """

    def __init__(self, process: str, endpoint: str | None, *,
                 options: TraceBusOptions | None = None,
                 context: zmq.Context[Any] | None = None) -> None:
        self.options = options or TraceBusOptions()
        self.sink: TraceSink | None = None
        self.connected = False  # the collector's subscription arrived in time
        if endpoint:
            self.sink = TraceSink(endpoint, process=process, options=self.options,
                                  context=context)
            self.connected = self.sink.wait_connected(self.options.connect_timeout_ms)
        self.tracer = Tracer(process, enabled=self.sink is not None,
                             capacity=self.options.local_capacity_events, sink=self.sink)

    @classmethod
    def from_env(cls, process: str, env: Mapping[str, str] | None = None,
                 **kw: Any) -> BusTracer:
        """Enabled when the front-end set :data:`TRACE_ENV` (see :meth:`TraceCollector.env`)."""
        return cls(process, (env if env is not None else os.environ).get(TRACE_ENV) or None, **kw)

    @property
    def enabled(self) -> bool:
        return self.sink is not None

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()

    def __enter__(self) -> BusTracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TraceCollector:
    """Binds the trace bus and keeps every event it receives (bounded).

    Drain it with :meth:`poll` from the owner thread, or :meth:`start` a
    background thread that does (then the socket belongs to that thread until
    :meth:`stop`). Start it (or keep polling) before nodes connect: libzmq only
    takes a new peer's connection, and sends it the subscription, while the
    socket is being used. Events recorded in this process go in with :meth:`add`.
    """

    def __init__(self, endpoint: str, *, options: TraceBusOptions | None = None,
                 context: zmq.Context[Any] | None = None,
                 stream: ChromeStream | None = None) -> None:
        self.options = options or TraceBusOptions()
        self._stream = stream  # written as events come, flushed at every poll
        self.stream_dropped = 0  # events past capacity_events not streamed
        self._sub = Subscriber(endpoint, [TRACE_TOPIC], types=(TraceEvent,), bind=True,
                               options=self.options.bus(), context=context)
        self.endpoint = self._sub.bound_endpoint
        self._lock = threading.Lock()
        self._events: deque[TraceEvent] = deque(maxlen=self.options.capacity_events)
        self.dropped = 0  # events pushed out of the full buffer
        self.senders: dict[str, dict[str, Any]] = {}  # process -> its sink's counters
        self._received: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def env(self) -> dict[str, str]:
        """Environment entries that switch tracing on in child processes."""
        return {TRACE_ENV: self.endpoint}

    # ------------------------------------------------------------ receiving
    def _keep(self, event: TraceEvent) -> None:
        if event.name == SINK_STATS and event.track == "trace":
            self.senders[event.source] = dict(event.args)
            return
        self._received[event.source] = self._received.get(event.source, 0) + 1
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        if self._stream is not None:  # bounded on disk as in memory
            if self._stream.written < self.options.capacity_events:
                self._stream.add(event)
            else:
                self.stream_dropped += 1

    def poll(self, timeout_ms: float = 0.0) -> int:
        """Take what is waiting (waiting up to ``timeout_ms`` for the first); returns how many."""
        n = 0
        got = self._sub.recv(timeout_ms)
        while got is not None:
            with self._lock:
                self._keep(got.message)  # type: ignore[arg-type]  # types= filters
            n += 1
            if n >= self.options.bus().max_drain:
                break
            got = self._sub.recv(0.0)
        if self._stream is not None:
            with self._lock:
                self._stream.flush()
        return n

    def start(self) -> TraceCollector:
        """Drain on a background thread until :meth:`stop`."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="trace-collector",
                                            daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll(50.0)

    def stop(self, drain_ms: float = 200.0) -> None:
        """Stop the thread, after taking what arrives within ``drain_ms``."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        deadline = time.monotonic() + drain_ms / 1e3
        while self.poll(max(0.0, (deadline - time.monotonic()) * 1e3)):
            pass

    def add(self, events: Iterable[TraceEvent]) -> None:
        """Add events recorded in this process (e.g. ``tracer.events()``)."""
        with self._lock:
            for e in events:
                self._keep(e)

    def add_event(self, event: TraceEvent) -> None:
        """Add one event recorded in this process (a :class:`Tracer`'s ``sink``)."""
        with self._lock:
            self._keep(event)

    def events(self) -> list[TraceEvent]:
        with self._lock:
            return list(self._events)

    # ------------------------------------------------------------ output
    def summary(self) -> dict[str, Any]:
        """Counters: events kept, dropped here, per-process received and sender counters."""
        return {"events_kept": len(self._events), "collector_dropped": self.dropped,
                "received": dict(self._received), "trace_senders": dict(self.senders),
                "bus": self._sub.stats.as_dict(), "stream_dropped": self.stream_dropped}

    def write(self, path: str | Path, **metadata: Any) -> Path:
        """Stop draining (if started), end the stream, then write the merged Chrome
        trace atomically (over the streamed file, if it is the same path)."""
        self.stop()
        self._close_stream()
        return write_chrome(path, self.events(), **self.summary(), **metadata)

    def _close_stream(self) -> None:
        with self._lock:
            if self._stream is not None:
                self._stream.close()

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self._close_stream()
        self._sub.close()

    def __enter__(self) -> TraceCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
