"""ZeroMQ sockets that speak :mod:`realtime.messages`: topics, commands, requests.

Patterns (sync side; :mod:`realtime.bus_async` has the asyncio side):

- :class:`Subscriber` (SUB): every message, in order, for streams that must not
  be conflated (audio chunks, final transcripts, logs).
- :class:`Publisher` (PUB) and :class:`LatestValueSubscriber` (SUB): latest-value
  topics. The reader drains its socket and keeps only the newest message per
  topic (ZMQ_CONFLATE cannot be used: it breaks multipart messages), then
  ``read_latest(max_age_ms)`` gives that message and its age, or ``None`` when
  there is none or it is too old (counted as ``stale``).
- :class:`CommandChannel` (DEALER) and :class:`CommandServer` (ROUTER): bounded
  commands with acknowledgements. ``send`` never blocks (a full queue or no
  peer is a counted drop), ``poll_acks`` collects acks and expires the ones
  that did not come within ``ack_timeout_ms``.
- :class:`RequestClient` (DEALER) and :class:`ReplyServer` (ROUTER): tool calls
  served by another process, matched by ``call_id``, with timeouts.

Every socket sets its high-water marks, ``ZMQ_MAXMSGSIZE`` (a peer sending a
bigger frame is disconnected by libzmq) and ``linger`` on purpose
(:class:`BusOptions`). Every receive path turns malformed, truncated, oversized,
wrong-version and unknown messages into a counted drop (``stats.dropped``) and
a rate-limited log line, never an exception. Sockets are not thread-safe: one
owner thread each, closed by ``close()`` or ``with``.
"""

from __future__ import annotations

from typing import Any

import zmq

from realtime.bus_base import (
    BusOptions,
    BusSocket,
    BusStats,
    Latest,
    Received,
    RequestTimeoutError,
    decode_or_drop,
)
from realtime.bus_rpc import CommandChannel, CommandServer, ReplyServer, RequestClient
from realtime.codec import Buffer
from realtime.errors import ConfigError
from realtime.messages import Message

__all__ = [
    "BusOptions",
    "BusStats",
    "CommandChannel",
    "CommandServer",
    "Latest",
    "LatestValueSubscriber",
    "Publisher",
    "Received",
    "ReplyServer",
    "RequestClient",
    "RequestTimeoutError",
    "Subscriber",
]

class Publisher(BusSocket):
    """PUB socket (binds by default). ``publish`` never blocks; at the high-water
    mark ZeroMQ drops the newest for slow subscribers, which latest-value readers
    do not mind."""

    socket_type = zmq.PUB

    def __init__(self, endpoint: str, *, source: str, bind: bool = True, **kw: Any) -> None:
        super().__init__(endpoint, source=source, bind=bind, **kw)
        self._topics: dict[str, bytes] = {}

    def publish(self, msg: Message, topic: str | None = None) -> None:
        """Stamp and send ``msg`` on ``topic`` (default: the message's type name)."""
        self.stamp(msg)
        name = topic or type(msg).__name__
        prefix = self._topics.get(name)
        if prefix is None:
            prefix = self._topics[name] = name.encode()
        frames = self.codec.encode(msg)
        frames.insert(0, prefix)
        self.send_frames(frames)


class Subscriber(BusSocket):
    """SUB socket delivering every message in order (connects by default): for
    streams that must not be conflated (audio, final transcripts, logs, traces).

    ``topics`` are prefixes (``""`` = everything). ``types`` limits what is
    accepted (anything else is dropped as ``unexpected_type``). Ages come from
    the message's source ``t_ns`` (same host) or, with ``age_from="receive"``,
    from the time it was received (use across hosts: monotonic clocks differ).
    A slow reader loses the oldest-queued messages at ``rcvhwm`` (counted by
    ZeroMQ, not here); gaps show in ``seq``.
    """

    socket_type = zmq.SUB

    def __init__(
        self,
        endpoint: str,
        topics: tuple[str, ...] | list[str] = ("",),
        *,
        types: tuple[type[Message], ...] | None = None,
        age_from: str = "source",
        bind: bool = False,
        **kw: Any,
    ) -> None:
        if age_from not in ("source", "receive"):
            raise ConfigError(f"age_from: expected 'source' or 'receive', got {age_from!r}")
        super().__init__(endpoint, source="", bind=bind, **kw)
        for topic in topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self.types = types
        self.age_from = age_from

    def _parse(self, parts: list[Buffer]) -> tuple[str, Message] | None:
        if len(parts) < 2:
            self.drop("truncated", "topic frame without a message")
            return None
        msg = decode_or_drop(self, parts[1:])
        if msg is None:
            return None
        if self.types is not None and not isinstance(msg, self.types):
            self.drop("unexpected_type", f"got {type(msg).__name__}")
            return None
        try:
            topic = bytes(parts[0]).decode()
        except UnicodeDecodeError:
            self.drop("malformed", "topic is not UTF-8")
            return None
        self.stats.received += 1
        return topic, msg

    def _age_ms(self, msg: Message, received_ns: int, now: int) -> float:
        since = msg.t_ns if self.age_from == "source" and msg.t_ns else received_ns
        return (now - since) / 1e6

    def recv(self, timeout_ms: float = 0.0) -> Latest[Message] | None:
        """The next valid message, waiting up to ``timeout_ms`` (``None``: nothing came)."""
        deadline = self.clock_ns() + int(timeout_ms * 1e6)
        wait_ms = max(0, int(timeout_ms))
        while True:
            parts = self.recv_parts(zmq.NOBLOCK) if self.sock.poll(wait_ms, zmq.POLLIN) else None
            if parts is not None:
                got = self._parse(parts)
                if got is not None:
                    now = self.clock_ns()
                    return Latest(got[1], self._age_ms(got[1], now, now), got[0], now, True)
            left_ns = deadline - self.clock_ns()
            if left_ns <= 0 and parts is None:
                return None
            wait_ms = max(0, left_ns // 1_000_000 + 1)


class LatestValueSubscriber(Subscriber):
    """A :class:`Subscriber` keeping only the newest message per topic.

    ``read_latest(max_age_ms)`` drains the socket (ZMQ_CONFLATE cannot be used:
    it breaks multipart messages), then returns the newest message with its age,
    or ``None`` when there is none or it is too old (counted as ``stale``; a
    stale value is forgotten). ``Latest.new`` says whether it was read before.
    """

    def __init__(self, endpoint: str, topics: tuple[str, ...] | list[str] = ("",), **kw: Any):
        super().__init__(endpoint, topics, **kw)
        self._latest: dict[str, tuple[Message, int]] = {}
        self._unread: set[str] = set()

    def poll(self) -> int:
        """Drain everything waiting (bounded by ``options.max_drain``); returns messages kept."""
        kept = 0
        for _ in range(self.options.max_drain):
            parts = self.recv_parts(zmq.NOBLOCK)
            if parts is None:
                break
            got = self._parse(parts)
            if got is not None:
                topic, msg = got
                if topic in self._latest:
                    self.stats.superseded += 1
                self._latest[topic] = (msg, self.clock_ns())
                self._unread.add(topic)
                kept += 1
        return kept

    def read_latest(self, max_age_ms: float, topic: str | None = None) -> Latest[Message] | None:
        """The newest message (on ``topic``, or on any topic) no older than ``max_age_ms``."""
        self.poll()
        if topic is None:
            if not self._latest:
                return None
            topic = max(self._latest, key=lambda t: self._latest[t][1])
        held = self._latest.get(topic)
        if held is None:
            return None
        msg, received_ns = held
        age_ms = self._age_ms(msg, received_ns, self.clock_ns())
        if age_ms > max_age_ms:
            del self._latest[topic]
            self._unread.discard(topic)
            self.stats.stale += 1
            return None
        new = topic in self._unread
        self._unread.discard(topic)
        return Latest(msg, age_ms, topic, received_ns, new)

    def wait_latest(
        self, max_age_ms: float, timeout_ms: float, topic: str | None = None
    ) -> Latest[Message] | None:
        """Block up to ``timeout_ms`` for a fresh, not yet read message."""
        deadline = self.clock_ns() + int(timeout_ms * 1e6)
        while True:
            got = self.read_latest(max_age_ms, topic)
            if got is not None and got.new:
                return got
            left_ms = (deadline - self.clock_ns()) / 1e6
            if left_ms <= 0:
                return None
            self.sock.poll(max(1, int(left_ms)), zmq.POLLIN)
