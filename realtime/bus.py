"""ZeroMQ sockets that speak :mod:`realtime.messages`: topics, commands, requests.

Patterns (sync side; :mod:`realtime.bus_async` has the asyncio side):

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

from typing import Any, TypeVar

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
from realtime.codec import Buffer
from realtime.messages import Ack, Message, ToolReply, ToolRequest

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
]

M = TypeVar("M", bound=Message)


class Publisher(BusSocket):
    """PUB socket (binds by default). ``publish`` never blocks; at the high-water
    mark ZeroMQ drops the newest for slow subscribers, which latest-value readers
    do not mind."""

    socket_type = zmq.PUB

    def __init__(self, endpoint: str, *, source: str, bind: bool = True, **kw: Any) -> None:
        super().__init__(endpoint, source=source, bind=bind, **kw)

    def publish(self, msg: Message, topic: str | None = None) -> None:
        """Stamp and send ``msg`` on ``topic`` (default: the message's type name)."""
        self.stamp(msg)
        frames: list[Buffer] = [(topic or type(msg).__name__).encode()]
        frames += self.codec.encode(msg)
        self.send_frames(frames)


class LatestValueSubscriber(BusSocket):
    """SUB socket keeping the newest message per topic (connects by default).

    ``topics`` are prefixes (``""`` = everything). ``types`` limits what is
    accepted (anything else is dropped as ``unexpected_type``). Ages come from
    the message's source ``t_ns`` (same host) or, with ``age_from="receive"``,
    from the time it was received (use across hosts: monotonic clocks differ).
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
            raise ValueError(f"age_from: expected 'source' or 'receive', got {age_from!r}")
        super().__init__(endpoint, source="", bind=bind, **kw)
        for topic in topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self.types = types
        self.age_from = age_from
        self._latest: dict[str, tuple[Message, int]] = {}
        self._unread: set[str] = set()

    def poll(self) -> int:
        """Drain everything waiting (bounded by ``options.max_drain``); returns messages kept."""
        kept = 0
        for _ in range(self.options.max_drain):
            parts = self.recv_parts(zmq.NOBLOCK)
            if parts is None:
                break
            if self._take(parts):
                kept += 1
        return kept

    def _take(self, parts: list[Buffer]) -> bool:
        if len(parts) < 2:
            self.drop("truncated", "topic frame without a message")
            return False
        msg = decode_or_drop(self, parts[1:])
        if msg is None:
            return False
        if self.types is not None and not isinstance(msg, self.types):
            self.drop("unexpected_type", f"got {type(msg).__name__}")
            return False
        try:
            topic = bytes(parts[0]).decode()
        except UnicodeDecodeError:
            self.drop("malformed", "topic is not UTF-8")
            return False
        if topic in self._latest:
            self.stats.superseded += 1
        self._latest[topic] = (msg, self.clock_ns())
        self._unread.add(topic)
        self.stats.received += 1
        return True

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
        now = self.clock_ns()
        since = msg.t_ns if self.age_from == "source" and msg.t_ns else received_ns
        age_ms = (now - since) / 1e6
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


class _DealerClient(BusSocket):
    socket_type = zmq.DEALER

    def __init__(self, endpoint: str, *, source: str, bind: bool = False, **kw: Any) -> None:
        super().__init__(endpoint, source=source, bind=bind, **kw)

    def _try_send(self, msg: Message) -> bool:
        return self.send_frames(self.codec.encode(msg))

    def _drain(self) -> list[Message]:
        out: list[Message] = []
        for _ in range(self.options.max_drain):
            parts = self.recv_parts(zmq.NOBLOCK)
            if parts is None:
                break
            msg = decode_or_drop(self, parts)
            if msg is not None:
                out.append(msg)
        return out


class CommandChannel(_DealerClient):
    """Sends commands to a :class:`CommandServer` and tracks their acks.

    At most ``max_pending`` unacknowledged commands are tracked; the queue toward
    a slow or absent receiver is bounded by ``sndhwm`` and ``immediate`` is set,
    so nothing is queued for a peer that is not connected (no stale commands
    delivered on reconnect).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        source: str,
        ack_timeout_ms: float = 250.0,
        max_pending: int = 64,
        **kw: Any,
    ) -> None:
        kw.setdefault("options", BusOptions(sndhwm=8, rcvhwm=64, immediate=True))
        super().__init__(endpoint, source=source, **kw)
        self.ack_timeout_ms = ack_timeout_ms
        self.max_pending = max_pending
        self._pending: dict[int, int] = {}  # seq -> sent_ns

    @property
    def pending(self) -> int:
        return len(self._pending)

    def send(self, msg: Message) -> int | None:
        """Send without blocking; the command's ``seq``, or ``None`` if it was dropped."""
        self.stamp(msg, force_seq=True)
        if not self._try_send(msg):
            return None
        if len(self._pending) >= self.max_pending:
            self._pending.pop(next(iter(self._pending)))
            self.stats.timeouts += 1
        self._pending[msg.seq] = self.clock_ns()
        return msg.seq

    def poll_acks(self) -> list[Ack]:
        """Acks received since the last call; expires the overdue ones (``stats.timeouts``)."""
        acks: list[Ack] = []
        for msg in self._drain():
            if not isinstance(msg, Ack):
                self.drop("unexpected_type", f"got {type(msg).__name__}, expected Ack")
                continue
            if self._pending.pop(msg.ack_seq, None) is None:
                self.stats.late += 1
                continue
            self.stats.received += 1
            acks.append(msg)
        limit = self.clock_ns() - int(self.ack_timeout_ms * 1e6)
        for seq in [s for s, t in self._pending.items() if t < limit]:
            del self._pending[seq]
            self.stats.timeouts += 1
        return acks

    def send_and_wait(self, msg: Message, timeout_ms: float | None = None) -> Ack:
        """Send and block until its ack; :class:`RequestTimeoutError` after ``timeout_ms``."""
        timeout_ms = self.ack_timeout_ms if timeout_ms is None else timeout_ms
        seq = self.send(msg)
        if seq is None:
            raise RequestTimeoutError(f"command not sent to {self.endpoint}: no peer or queue full")
        deadline = self.clock_ns() + int(timeout_ms * 1e6)
        while (left := deadline - self.clock_ns()) > 0:
            if self.sock.poll(max(1, left // 1_000_000 + 1), zmq.POLLIN):
                self._pending.setdefault(seq, self.clock_ns())
                for ack in self.poll_acks():
                    if ack.ack_seq == seq:
                        return ack
        self._pending.pop(seq, None)
        self.stats.timeouts += 1
        raise RequestTimeoutError(f"no ack for command {seq} from {self.endpoint} in {timeout_ms} ms")


class RequestClient(_DealerClient):
    """Calls tools served by a :class:`ReplyServer`, matched by ``call_id``."""

    def __init__(self, endpoint: str, *, source: str, max_pending: int = 256, **kw: Any):
        kw.setdefault("options", BusOptions(sndhwm=256, rcvhwm=256))
        super().__init__(endpoint, source=source, **kw)
        self.max_pending = max_pending
        self._pending: dict[str, int] = {}  # call_id -> deadline_ns
        self._ids = 0

    def submit(self, request: ToolRequest, timeout_ms: float = 1000.0) -> str | None:
        """Send without blocking; its ``call_id`` (assigned if empty) or ``None`` if dropped."""
        if not request.call_id:
            self._ids += 1
            request.call_id = f"{self.source}-{self._ids}"
        if len(self._pending) >= self.max_pending:
            self.drop("too_many_pending", f"{len(self._pending)} calls in flight")
            return None
        self.stamp(request)
        if not self._try_send(request):
            return None
        self._pending[request.call_id] = self.clock_ns() + int(timeout_ms * 1e6)
        return request.call_id

    def poll(self) -> list[ToolReply]:
        """Replies received since the last call, plus an ``ok=False`` reply per timed-out call."""
        replies, expired = self._collect()
        for call_id in expired:
            replies.append(ToolReply(call_id=call_id, ok=False, error="timeout", source=self.source))
        return replies

    def _collect(self) -> tuple[list[ToolReply], list[str]]:
        replies: list[ToolReply] = []
        for msg in self._drain():
            if not isinstance(msg, ToolReply):
                self.drop("unexpected_type", f"got {type(msg).__name__}, expected ToolReply")
            elif self._pending.pop(msg.call_id, None) is None:
                self.stats.late += 1
            else:
                self.stats.received += 1
                replies.append(msg)
        now = self.clock_ns()
        expired = [c for c, d in self._pending.items() if d < now]
        for call_id in expired:
            del self._pending[call_id]
            self.stats.timeouts += 1
        return replies, expired

    def call(self, request: ToolRequest, timeout_ms: float = 1000.0) -> ToolReply:
        """Blocking call; raises :class:`RequestTimeoutError` when no reply comes in time.

        Replies to other calls in flight that arrive meanwhile are lost to ``poll``;
        do not mix ``call`` with ``submit``/``poll`` on one client.
        """
        call_id = self.submit(request, timeout_ms)
        if call_id is None:
            raise RequestTimeoutError(f"request not sent to {self.endpoint}: no peer or queue full")
        while True:
            left_ns = self._pending.get(call_id, 0) - self.clock_ns()
            if left_ns > 0:
                self.sock.poll(max(1, left_ns // 1_000_000 + 1), zmq.POLLIN)
            replies, expired = self._collect()
            for reply in replies:
                if reply.call_id == call_id:
                    return reply
            if call_id in expired:
                raise RequestTimeoutError(
                    f"no reply to {request.name!r} from {self.endpoint} in {timeout_ms} ms"
                )


class _RouterServer(BusSocket):
    socket_type = zmq.ROUTER

    def __init__(self, endpoint: str, *, source: str, bind: bool = True, **kw: Any) -> None:
        super().__init__(endpoint, source=source, bind=bind, **kw)

    def recv(self, timeout_ms: float = 0.0) -> Received | None:
        """The next valid message (waiting up to ``timeout_ms``), or ``None``."""
        deadline = self.clock_ns() + int(timeout_ms * 1e6)
        while True:
            parts = self.recv_parts(zmq.NOBLOCK)
            if parts is not None:
                got = self._parse(parts)
                if got is not None:
                    return got
                continue
            left_ns = deadline - self.clock_ns()
            if left_ns <= 0:
                return None
            self.sock.poll(max(1, left_ns // 1_000_000 + 1), zmq.POLLIN)

    def _parse(self, parts: list[Buffer]) -> Received | None:
        if len(parts) < 2:
            self.drop("truncated", "no message after the peer identity")
            return None
        msg = decode_or_drop(self, parts[1:])
        if msg is None:
            return None
        self.stats.received += 1
        return Received(msg, bytes(parts[0]), self.clock_ns())

    def respond(self, to: Received, msg: Message) -> bool:
        self.stamp(msg, force_seq=True)
        return self.send_frames([to.peer, *self.codec.encode(msg)])


class CommandServer(_RouterServer):
    """Receives commands (binds by default); ``ack`` answers one. Commands whose
    ``deadline_ns`` has passed are dropped as ``expired`` when
    ``drop_expired`` is set (same-host clocks only)."""

    def __init__(self, endpoint: str, *, source: str, drop_expired: bool = False, **kw: Any):
        kw.setdefault("options", BusOptions(sndhwm=64, rcvhwm=8))
        super().__init__(endpoint, source=source, **kw)
        self.drop_expired = drop_expired

    def _parse(self, parts: list[Buffer]) -> Received | None:
        got = super()._parse(parts)
        deadline = getattr(got.message, "deadline_ns", 0) if got else 0
        if got is not None and self.drop_expired and deadline and deadline < got.received_ns:
            self.drop("expired", f"command {got.message.seq} past its deadline")
            return None
        return got

    def ack(self, to: Received, ok: bool = True, detail: str = "") -> bool:
        return self.respond(
            to, Ack(ack_seq=to.message.seq, ack_source=to.message.source, ok=ok, detail=detail)
        )


class ReplyServer(_RouterServer):
    """Serves :class:`ToolRequest`s (binds by default): ``recv`` + ``reply``, or ``serve``."""

    def reply(self, to: Received, reply: ToolReply) -> bool:
        if isinstance(to.message, ToolRequest) and not reply.call_id:
            reply.call_id = to.message.call_id
        return self.respond(to, reply)

    def serve_once(self, handler: Any, timeout_ms: float = 100.0) -> bool:
        """Handle at most one request with ``handler(ToolRequest) -> ToolReply``."""
        got = self.recv(timeout_ms)
        if got is None:
            return False
        if not isinstance(got.message, ToolRequest):
            self.drop("unexpected_type", f"got {type(got.message).__name__}")
            return False
        start = self.clock_ns()
        try:
            reply = handler(got.message)
        except Exception as exc:  # a failing tool is a reply, not a crashed server
            reply = ToolReply(ok=False, error=f"{type(exc).__name__}: {exc}")
        reply.call_id = got.message.call_id
        reply.duration_ns = reply.duration_ns or self.clock_ns() - start
        self.reply(got, reply)
        return True

    def serve(self, handler: Any, should_stop: Any, poll_ms: float = 100.0) -> None:
        """Serve until ``should_stop()`` is true."""
        while not should_stop():
            self.serve_once(handler, poll_ms)
