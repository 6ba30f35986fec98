"""Commands with acks and tool-call request/reply (DEALER/ROUTER); import them from
:mod:`realtime.bus`.

Both clients never block on send (a full queue or no peer is a counted drop)
and track what is in flight with a bound and a timeout; both servers bind a
ROUTER and answer each message to the peer it came from, out of order if they
like.
"""

from __future__ import annotations

import json
from typing import Any

import zmq

from realtime.bus_base import (
    BusOptions,
    BusSocket,
    Received,
    RequestTimeoutError,
    decode_or_drop,
)
from realtime.codec import Buffer, CodecLimits
from realtime.messages import Ack, Message, ToolReply, ToolRequest

__all__ = [
    "COMMAND_OPTIONS",
    "COMMAND_SERVER_OPTIONS",
    "REQUEST_OPTIONS",
    "CommandChannel",
    "CommandServer",
    "ReplyServer",
    "RequestClient",
    "error_reply",
    "ok_reply",
]

_SMALL = CodecLimits(max_header_bytes=1 << 20, max_total_bytes=1 << 20)

#: Commands are small and only the newest few matter: a short queue toward the
#: receiver, nothing queued for an absent peer (``immediate``), 1 MiB at most.
COMMAND_OPTIONS = BusOptions(sndhwm=8, rcvhwm=64, immediate=True,
                             max_message_bytes=1 << 20, limits=_SMALL)
#: The receiving side: few queued commands (an old command is worse than none).
COMMAND_SERVER_OPTIONS = BusOptions(sndhwm=64, rcvhwm=8, max_message_bytes=1 << 20,
                                    limits=_SMALL)
#: Tool calls: many may be in flight; results can be larger (16 MiB).
REQUEST_OPTIONS = BusOptions(sndhwm=256, rcvhwm=256, max_message_bytes=16 << 20,
                             limits=CodecLimits(max_total_bytes=16 << 20))


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
        kw.setdefault("options", COMMAND_OPTIONS)
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
        kw.setdefault("options", REQUEST_OPTIONS)
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
        kw.setdefault("options", COMMAND_SERVER_OPTIONS)
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

    def __init__(self, endpoint: str, *, source: str, **kw: Any) -> None:
        kw.setdefault("options", REQUEST_OPTIONS)
        super().__init__(endpoint, source=source, **kw)

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


def ok_reply(value: Any) -> ToolReply:
    """A successful reply carrying ``value`` as JSON (a control request's answer)."""
    return ToolReply(ok=True, value_json=json.dumps(value))


def error_reply(error: str) -> ToolReply:
    """A failed reply: ``error`` says what went wrong and what to do."""
    return ToolReply(ok=False, error=error)
