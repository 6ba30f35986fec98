"""The asyncio side of the bus (zmq.asyncio; runs on uvloop as on the default loop).

Each class is its sync twin from :mod:`realtime.bus` plus awaitable methods:
the socket is the same, the waiting is done by awaiting readiness on an
asyncio shadow of it, and the receiving, decoding, counting and dropping are
the sync code paths (non-blocking), so both sides behave the same.

- :class:`AsyncSubscriber` — ``await sub.arecv(timeout_ms)``.
- :class:`AsyncLatestValueSubscriber` — ``await sub.await_latest(max_age_ms, timeout_ms)``.
- :class:`AsyncRequestClient` — ``await cli.acall(request, timeout_ms)``; many calls
  may be in flight at once (replies are matched by ``call_id``).
- :class:`AsyncReplyServer` — ``await srv.aserve(handler, max_concurrency=8)``;
  requests are handled concurrently, each answered when its handler finishes.

Publishers and command channels never block, so the sync classes are used
as they are from coroutines. Create and use each socket on one event loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import zmq
import zmq.asyncio

from realtime.bus import LatestValueSubscriber, ReplyServer, RequestClient, Subscriber
from realtime.bus_base import BusSocket, Latest, RequestTimeoutError
from realtime.messages import Message, ToolReply, ToolRequest

__all__ = [
    "AsyncLatestValueSubscriber",
    "AsyncReplyServer",
    "AsyncRequestClient",
    "AsyncSubscriber",
]

Handler = Callable[[ToolRequest], Awaitable[ToolReply] | ToolReply]


class _AsyncMixin(BusSocket):
    # The asyncio socket owns the zmq handle and the sync one is its shadow, so
    # closing the owner closes both. (The other way round, the sync object never
    # learns its handle is gone and may warn "unclosed socket" when collected.)
    _asock: zmq.asyncio.Socket

    def _new_socket(self, ctx: zmq.Context[Any]) -> zmq.Socket[Any]:
        self._asock = zmq.asyncio.Socket(ctx, self.socket_type)
        return zmq.Socket.shadow(self._asock.underlying)

    @property
    def asock(self) -> zmq.asyncio.Socket:
        return self._asock

    async def _readable(self, timeout_ms: float | None) -> bool:
        """Wait until a message is waiting (``None``: forever)."""
        if int(self.sock.get(zmq.EVENTS)) & zmq.POLLIN:
            return True
        timeout = None if timeout_ms is None else max(0, int(timeout_ms))
        asock: Any = self.asock  # pyzmq's stubs type the async poll as the Poller's
        events = await asock.poll(timeout, zmq.POLLIN)
        return bool(events & zmq.POLLIN)

    def _close_socket(self) -> None:
        self._asock.close(linger=self.options.linger_ms)


def _left_ms(sock: BusSocket, deadline_ns: int | None) -> float | None:
    return None if deadline_ns is None else max(0.0, (deadline_ns - sock.clock_ns()) / 1e6)


class AsyncSubscriber(_AsyncMixin, Subscriber):
    async def arecv(self, timeout_ms: float | None = None) -> Latest[Message] | None:
        """The next valid message; ``None`` after ``timeout_ms`` (``None``: wait forever)."""
        deadline = None if timeout_ms is None else self.clock_ns() + int(timeout_ms * 1e6)
        while True:
            got = self.recv(0)
            if got is not None:
                return got
            left = _left_ms(self, deadline)
            if left == 0.0:
                return None
            await self._readable(left)


class AsyncLatestValueSubscriber(_AsyncMixin, LatestValueSubscriber):
    async def await_latest(
        self, max_age_ms: float, timeout_ms: float | None = None, topic: str | None = None
    ) -> Latest[Message] | None:
        """A fresh message not read before, waiting up to ``timeout_ms``."""
        deadline = None if timeout_ms is None else self.clock_ns() + int(timeout_ms * 1e6)
        while True:
            got = self.read_latest(max_age_ms, topic)
            if got is not None and got.new:
                return got
            left = _left_ms(self, deadline)
            if left == 0.0:
                return None
            await self._readable(left)


class AsyncRequestClient(_AsyncMixin, RequestClient):
    """Concurrent tool calls: ``await acall(...)`` from as many tasks as you like."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._futures: dict[str, asyncio.Future[ToolReply]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def acall(self, request: ToolRequest, timeout_ms: float = 1000.0) -> ToolReply:
        """Send ``request`` and await its reply; :class:`RequestTimeoutError` on timeout."""
        call_id = self.submit(request, timeout_ms)
        if call_id is None:
            raise RequestTimeoutError(f"request not sent to {self.endpoint}: no peer or queue full")
        future: asyncio.Future[ToolReply] = asyncio.get_running_loop().create_future()
        self._futures[call_id] = future
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_replies())
        try:
            return await asyncio.wait_for(future, timeout_ms / 1e3 + 0.05)
        except TimeoutError:
            raise RequestTimeoutError(
                f"no reply to {request.name!r} from {self.endpoint} in {timeout_ms} ms"
            ) from None
        finally:
            self._futures.pop(call_id, None)

    async def _read_replies(self) -> None:
        while self._futures:
            await self._readable(20.0)
            replies, expired = self._collect()
            for reply in replies:
                future = self._futures.get(reply.call_id)
                if future is not None and not future.done():
                    future.set_result(reply)
            for call_id in expired:
                future = self._futures.get(call_id)
                if future is not None and not future.done():
                    future.set_exception(RequestTimeoutError(f"no reply to call {call_id}"))

    def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        super().close()


class AsyncReplyServer(_AsyncMixin, ReplyServer):
    """Serves requests concurrently with an async (or plain) handler."""

    async def aserve(self, handler: Handler, *, max_concurrency: int = 8) -> None:
        """Serve until cancelled; at most ``max_concurrency`` handlers run at once."""
        slots = asyncio.Semaphore(max_concurrency)
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                await self._readable(None)
                while (got := self.recv(0)) is not None:
                    if not isinstance(got.message, ToolRequest):
                        self.drop("unexpected_type", f"got {type(got.message).__name__}")
                        continue
                    await slots.acquire()
                    task = asyncio.create_task(self._handle(handler, got, slots))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()

    async def _handle(self, handler: Handler, got: Any, slots: asyncio.Semaphore) -> None:
        request: ToolRequest = got.message
        start = self.clock_ns()
        try:
            result = handler(request)
            reply = await result if inspect.isawaitable(result) else result
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing tool is a reply, not a crashed server
            reply = ToolReply(ok=False, error=f"{type(exc).__name__}: {exc}")
        finally:
            slots.release()
        reply.call_id = request.call_id
        reply.duration_ns = reply.duration_ns or self.clock_ns() - start
        if not self.closed:
            self.reply(got, reply)
