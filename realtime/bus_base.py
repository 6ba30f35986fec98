"""What every bus socket shares: options, counters, stamping, bounded receive, drops.

Users import these names from :mod:`realtime.bus`; this module keeps that one short.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import zmq

from realtime.codec import Buffer, Codec, CodecError, CodecLimits
from realtime.endpoints import Security, check_endpoint
from realtime.errors import ConfigError, RtAgentError
from realtime.messages import Message

__all__ = [
    "BusOptions",
    "BusSocket",
    "BusStats",
    "Latest",
    "Received",
    "RequestTimeoutError",
    "decode_or_drop",
]

log = logging.getLogger("rtagent.bus")

M = TypeVar("M", bound=Message)


class RequestTimeoutError(RtAgentError, TimeoutError):
    """No answer (ack or reply) came in time; the peer may be down or overloaded."""


@dataclass(frozen=True)
class BusOptions:
    """Socket settings, each chosen on purpose.

    ``sndhwm``/``rcvhwm``: messages queued per peer before ZeroMQ drops (PUB) or
    refuses (DEALER/ROUTER) — small for latest-value topics, since old values are
    worthless. ``max_message_bytes``: ZMQ_MAXMSGSIZE, the largest frame accepted
    (a peer sending more is disconnected). ``linger_ms``: how long ``close``
    waits for unsent messages (0: drop them; we never want a hang on exit).
    ``immediate``: queue only to completed connections. ``max_drain``: most
    messages read in one poll, so a flood cannot starve the caller.
    """

    sndhwm: int = 16
    rcvhwm: int = 16
    max_message_bytes: int = 64 << 20
    linger_ms: int = 0
    immediate: bool = False
    max_drain: int = 1024
    limits: CodecLimits = field(default_factory=CodecLimits)

    def __post_init__(self) -> None:
        for name in ("sndhwm", "rcvhwm", "max_message_bytes", "max_drain"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"BusOptions.{name}: expected an int >= 1, got {value!r}")
        if not isinstance(self.linger_ms, int) or self.linger_ms < 0:
            raise ConfigError(f"BusOptions.linger_ms: expected an int >= 0, got {self.linger_ms!r}")


@dataclass
class BusStats:
    """Counters of one socket. ``dropped`` is keyed by reason (codec reasons,
    ``unexpected_type``, ``full``, ``expired``, ``too_many_frames``, ...)."""

    sent: int = 0
    received: int = 0
    superseded: int = 0  # latest-value: replaced by a newer one before it was read
    stale: int = 0  # latest-value: too old when read
    timeouts: int = 0  # acks or replies that did not come in time
    late: int = 0  # acks or replies that came after their timeout
    dropped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "received": self.received,
            "superseded": self.superseded,
            "stale": self.stale,
            "timeouts": self.timeouts,
            "late": self.late,
            "dropped": dict(self.dropped),
        }


class Latest(NamedTuple, Generic[M]):
    """A latest-value read: the message, its age, its topic, when it arrived, and
    whether it is new since the previous read."""

    message: M
    age_ms: float
    topic: str
    received_ns: int
    new: bool


class Received(NamedTuple):
    """A message received by a ROUTER server, with the peer to answer."""

    message: Message
    peer: bytes
    received_ns: int


class BusSocket:
    """One ZeroMQ socket with its codec, options, counters and stamping."""

    socket_type: ClassVar[int] = zmq.PAIR

    def __init__(
        self,
        endpoint: str,
        *,
        source: str,
        bind: bool,
        options: BusOptions | None = None,
        security: Security | None = None,
        context: zmq.Context[Any] | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.options = options or BusOptions()
        self.security = security or Security()
        self.endpoint = check_endpoint(endpoint, self.security)
        self.source = source
        self.clock_ns = clock_ns
        self.codec = Codec(self.options.limits)
        self.stats = BusStats()
        self._seq = 0
        self._release_security: Callable[[], None] = lambda: None
        self._closed = False
        ctx = context or zmq.Context.instance()
        self.sock: zmq.Socket[Any] = self._new_socket(ctx)
        try:
            self._configure(bind)
        except BaseException:
            self._close_socket()
            self._release_security()
            raise

    def _configure(self, bind: bool) -> None:
        opts, sock = self.options, self.sock
        sock.setsockopt(zmq.SNDHWM, opts.sndhwm)
        sock.setsockopt(zmq.RCVHWM, opts.rcvhwm)
        sock.setsockopt(zmq.MAXMSGSIZE, opts.max_message_bytes)
        sock.setsockopt(zmq.LINGER, opts.linger_ms)
        if opts.immediate:
            sock.setsockopt(zmq.IMMEDIATE, 1)
        if self.socket_type in (zmq.DEALER, zmq.ROUTER, zmq.SUB):
            sock.setsockopt(zmq.RECONNECT_IVL, 50)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        self._release_security = self.security.apply(sock)
        try:
            if bind:
                sock.bind(self.endpoint)
            else:
                sock.connect(self.endpoint)
        except zmq.ZMQError as exc:
            verb = "bind" if bind else "connect"
            raise RtAgentError(
                f"cannot {verb} {self.endpoint}: {exc}; is another process using it, "
                "or is the directory missing?"
            ) from exc
        self.bound = bind

    @property
    def bound_endpoint(self) -> str:
        """The endpoint actually bound or connected (``tcp://127.0.0.1:*`` -> the real port)."""
        last = self.sock.getsockopt(zmq.LAST_ENDPOINT)
        return last.decode() if isinstance(last, bytes) else str(last)

    # ------------------------------------------------------------ stamping, sending

    def stamp(self, msg: Message, *, force_seq: bool = False) -> Message:
        """Fill ``source``, ``seq`` and ``t_ns`` where the producer left them empty."""
        if not msg.source:
            msg.source = self.source
        if force_seq or not msg.seq:
            self._seq += 1
            msg.seq = self._seq
        if not msg.t_ns:
            msg.t_ns = self.clock_ns()
        return msg

    def send_frames(self, frames: list[Buffer]) -> bool:
        """Send without blocking and without copying array frames; ``False`` if dropped."""
        try:
            self.sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self.drop("full", f"send to {self.endpoint} would block (no peer or HWM reached)")
            return False
        self.stats.sent += 1
        return True

    # ------------------------------------------------------------ receiving

    def recv_parts(self, flags: int = zmq.NOBLOCK) -> list[Buffer] | None:
        """All parts of the next message (``None``: nothing waiting).

        The first parts come as bytes; later ones (arrays) as zero-copy buffers.
        More than ``limits.max_frames + 1`` parts are drained and dropped.
        """
        try:
            first = self.sock.recv(flags)
        except zmq.Again:
            return None
        parts: list[Buffer] = [first]
        limit = self.options.limits.max_frames + 2
        small = 3  # identity/topic, header: copying these small parts is cheaper
        while self.sock.get(zmq.RCVMORE):
            if len(parts) < small:
                parts.append(self.sock.recv())
            else:
                frame = self.sock.recv(copy=False)
                if len(parts) < limit:
                    parts.append(frame.buffer)
                else:
                    parts.append(b"")  # counted below; keep draining this message
        if len(parts) > limit:
            self.drop("too_many_frames", f"{len(parts)} parts, limit {limit}")
            return None
        return parts

    def drop(self, reason: str, detail: str) -> None:
        """Count a dropped message and log it (the 1st, 2nd, 4th, 8th... time per reason)."""
        self.stats.dropped[reason] += 1
        n = self.stats.dropped[reason]
        if n & (n - 1) == 0:
            log.warning(
                "%s %s: dropped a message (%s, %d so far): %s",
                type(self).__name__, self.endpoint, reason, n, detail,
            )

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_socket()
        self._release_security()

    @property
    def closed(self) -> bool:
        return self._closed

    def _new_socket(self, ctx: zmq.Context[Any]) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = ctx.socket(self.socket_type)
        return sock

    def _close_socket(self) -> None:
        self.sock.close(linger=self.options.linger_ms)

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        how = "bound" if getattr(self, "bound", False) else "connected"
        return f"{type(self).__name__}({self.endpoint!r}, {how})"


def decode_or_drop(sock: BusSocket, frames: list[Buffer]) -> Message | None:
    """Decode ``frames``; on a codec error count and log the drop and return ``None``."""
    try:
        return sock.codec.decode(frames)
    except CodecError as exc:
        sock.drop(exc.reason, str(exc))
        return None
