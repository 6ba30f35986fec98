"""The decision's side of actuation's ``home`` RPC: the home tools as async calls, and
a watch on which incarnation of the home answers.

A speculative read of the home (a light's state, the timers) holds only for the home
it came from. When the home process restarts (a crash, a kill -9, the supervisor's
restart) or stops answering, what was read before may be wrong: an in-memory home
starts over, a file may have been replaced, a write may have landed without its reply.
The home answers ``epoch`` with a token new at each start (:class:`~sim_envs.home.
nodes.HomeServer`); :class:`HomeRpc` asks for it every ``poll_s`` and, when it
changes or the home stops answering, hands the home's resources to ``on_stale``
(the speculative executor's :meth:`~speculation.executor.SpeculativeExecutor.invalidate`),
which drops every speculative result that read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from control.tools import ToolSpec
from realtime import messages as m
from realtime.bus_async import AsyncRequestClient
from realtime.errors import RtAgentError
from sim_envs.home.errors import HomeError
from sim_envs.home.tools import HOME_TOOLS

__all__ = ["HomeRpc", "home_resources"]


def home_resources(specs: Iterable[ToolSpec]) -> frozenset[str]:
    """Every resource a home tool reads or writes (``light:*``, ``timers``, ...)."""
    out: set[str] = set()
    for spec in specs:
        if spec.name in HOME_TOOLS:
            reads, writes = spec.resources({})
            out |= reads | writes
    return frozenset(out)


class HomeRpc:
    """The home tools over actuation's ``home`` RPC (the client is made on the agent's
    loop, :meth:`watch` started there too). ``restarts`` counts the new epochs seen,
    ``outages`` the times the home stopped answering."""

    def __init__(self, resources: Iterable[str] = (), *, poll_s: float = 0.25,
                 call_timeout_ms: float = 3000.0, poll_timeout_ms: float = 500.0) -> None:
        self.client: AsyncRequestClient | None = None
        self.resources = tuple(sorted(resources))
        self.on_stale: Callable[[Iterable[str]], None] | None = None
        self.poll_s, self.call_timeout_ms, self.poll_timeout_ms = (
            poll_s, call_timeout_ms, poll_timeout_ms)
        self.epoch: str | None = None
        self.restarts = 0
        self.outages = 0
        self._answering = True
        self._task: asyncio.Task[None] | None = None

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        assert self.client is not None, "HomeRpc.client is set before any turn runs"
        try:
            got = await self.client.acall(
                m.ToolRequest(name=name, arguments_json=json.dumps(arguments)),
                timeout_ms=self.call_timeout_ms)
        except RtAgentError:
            self._not_answering()
            raise
        if not got.ok:
            raise HomeError(got.error)
        return json.loads(got.value_json)

    def watch(self) -> None:
        """Start asking for the epoch every ``poll_s`` (call it on the agent's loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await self.check_epoch()
            await asyncio.sleep(self.poll_s)

    async def check_epoch(self) -> str | None:
        """Ask the home which incarnation it is; None while it does not answer."""
        assert self.client is not None, "HomeRpc.client is set before the watch starts"
        try:
            got = await self.client.acall(m.ToolRequest(name="epoch"),
                                          timeout_ms=self.poll_timeout_ms)
        except RtAgentError:
            self._not_answering()
            return None
        if not got.ok:  # a home that knows no epochs: nothing to compare
            return None
        epoch = str(json.loads(got.value_json).get("epoch", ""))
        self._answering = True
        if self.epoch is not None and epoch != self.epoch:
            self.restarts += 1
            self._stale()
        self.epoch = epoch
        return epoch

    def _not_answering(self) -> None:
        if self._answering:  # once per outage
            self._answering = False
            self.outages += 1
            self._stale()

    def _stale(self) -> None:
        if self.on_stale is not None and self.resources:
            # soon, not now: this may run inside a speculative call the drop cancels
            asyncio.get_running_loop().call_soon(self.on_stale, self.resources)

    def stats(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "restarts": self.restarts, "outages": self.outages}

    def close(self) -> None:
        if self._task is not None:
            with contextlib.suppress(RuntimeError):  # its loop already closed
                self._task.get_loop().call_soon_threadsafe(self._task.cancel)
