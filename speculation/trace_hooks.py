"""Trace events for speculative execution, without changing the executor.

Two thin adapters record what :class:`~speculation.executor.SpeculativeExecutor`
does on a :class:`~realtime.trace.Tracer`:

- :class:`TracedRegistry`: the registry the executor invokes tools through. Each
  invocation becomes a span: on track ``tools`` when it is the agent's own call
  run directly (``kind="direct"``), on track ``speculation`` when it runs ahead
  (``kind="speculative"`` or ``"dry-run"``). ``status`` is ``ok``, ``failed`` or
  ``cancelled`` (a speculative run dropped before it finished).
- :class:`TracedSpeculation`: wraps ``executor.call``. Each call the agent makes is
  a span on track ``calls`` with ``served`` = ``speculation`` (a finished
  speculative result), ``joined`` (a speculative run still in flight) or
  ``direct``; after it, a ``speculation`` counter event carries the executor's
  cumulative metrics (launches, hits, joins, cancellations, invalidations,
  blocked writes, waste, latency saved).

- :class:`TracedInvoke`: the same ``calls`` spans (``served="direct"``) for an agent
  that runs without speculation, so a run with it and one without read alike.

Wiring (the demos)::

    traced_reg = TracedRegistry(registry, tracer)
    spec = TracedSpeculation(SpeculativeExecutor(traced_reg, predictor, opts), tracer)
    agent = Agent(decoder, registry, context_fn, invoke=spec.call, tracer=tracer)
    # without speculation: invoke=TracedInvoke(traced_reg, tracer).call

How a run is told apart: :meth:`TracedSpeculation.call` marks its task's context
with the call's key; the executor invokes the agent's own call in that context,
while speculative runs are tasks of *other* calls (the executor never speculates
a call that is being made for real), so a key mismatch means "ran ahead".
With a disabled tracer both adapters only pass calls through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from control.tools import ToolCall, ToolRegistry, ToolResult, running_ahead
from realtime.trace import Tracer
from speculation.executor import SpeculativeExecutor

__all__ = ["TracedInvoke", "TracedRegistry", "TracedSpeculation"]

_AGENT_CALL: ContextVar[str | None] = ContextVar("rtagent_agent_call", default=None)

#: Metrics copied into the ``speculation`` counter event.
_COUNTERS = ("calls", "hits", "joins", "direct", "launched", "dry_runs", "cancelled",
             "invalidated", "unused", "writes_blocked", "writes_executed", "skipped_budget",
             "top1", "topk")


class TracedRegistry(ToolRegistry):
    """The tools of ``registry`` (as registered now), each invocation traced."""

    def __init__(self, registry: ToolRegistry, tracer: Tracer, *,
                 now_ns: Callable[[], int] = time.monotonic_ns) -> None:
        super().__init__(registry.get(s.name) for s in registry.specs())
        self.tracer = tracer
        self._now = now_ns

    async def invoke(self, call: ToolCall, *, dry_run: bool = False) -> ToolResult:
        tracer = self.tracer
        if not tracer.enabled:
            return await super().invoke(call, dry_run=dry_run)
        key = call.key()
        # (A run ahead may start inside an agent call's context: ask the executor's mark.)
        ahead = running_ahead() or _AGENT_CALL.get() != key
        kind = "dry-run" if dry_run else "speculative" if ahead else "direct"
        track = "tools" if kind == "direct" else "speculation"
        start = self._now()
        try:
            result = await super().invoke(call, dry_run=dry_run)
        except asyncio.CancelledError:
            tracer.complete(call.name, track, start, self._now(), "tool", kind=kind,
                            status="cancelled", call=key[:120])
            raise
        tracer.complete(call.name, track, start, self._now(), "tool", kind=kind,
                        status="ok" if result.ok else "failed", call=key[:120])
        return result


class TracedSpeculation:
    """``executor.call`` with each agent call and the executor's counters traced."""

    def __init__(self, executor: SpeculativeExecutor, tracer: Tracer, *,
                 now_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.executor = executor
        self.tracer = tracer
        self._now = now_ns
        self._last: dict[str, int | float] | None = None

    async def call(self, call: ToolCall, *, observation: Mapping[str, Any] | None = None
                   ) -> ToolResult:
        """Same as :meth:`SpeculativeExecutor.call`."""
        tracer = self.tracer
        if not tracer.enabled:
            return await self.executor.call(call, observation=observation)
        key = call.key()
        token = _AGENT_CALL.set(key)
        start = self._now()
        try:
            result = await self.executor.call(call, observation=observation)
        finally:
            _AGENT_CALL.reset(token)
        end = self._now()
        if not result.speculative:
            served = "direct"
        elif result.ended_ns and result.ended_ns > start:
            served = "joined"
        else:
            served = "speculation"
        tracer.complete(f"{call.id} {call.name}".strip(), "calls", start, end, "call",
                        served=served, ok=result.ok, call=key[:120])
        self.record_metrics()
        return result

    def observe(self, observation: Mapping[str, Any], *, changed: tuple[str, ...] = ()) -> None:
        """Same as :meth:`SpeculativeExecutor.observe`, then the counters."""
        self.executor.observe(observation, changed=changed)
        self.record_metrics()

    def invalidate(self, resources: Iterable[str]) -> None:
        """Same as :meth:`SpeculativeExecutor.invalidate`, then the counters."""
        self.executor.invalidate(resources)
        self.record_metrics()

    def record_metrics(self) -> None:
        """A ``speculation`` counter event with the executor's cumulative metrics
        (only when they changed since the last one)."""
        if self.tracer.enabled:
            m = self.executor.metrics
            values: dict[str, int | float] = {k: getattr(m, k) for k in _COUNTERS}
            values.update(latency_saved_ms=m.latency_saved_s * 1e3, wasted_ms=m.wasted_s * 1e3)
            if values != self._last:
                self._last = values
                self.tracer.counter("speculation", "speculation", **values)


class TracedInvoke:
    """An agent's ``invoke`` without speculation: each call runs on ``registry``
    (a :class:`TracedRegistry`: its run is a ``direct`` span on ``tools``) and is a
    span on ``calls`` with ``served="direct"``."""

    def __init__(self, registry: ToolRegistry, tracer: Tracer, *,
                 now_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.registry = registry
        self.tracer = tracer
        self._now = now_ns

    async def call(self, call: ToolCall) -> ToolResult:
        if not self.tracer.enabled:
            return await self.registry.invoke(call)
        key = call.key()
        token = _AGENT_CALL.set(key)
        start = self._now()
        try:
            result = await self.registry.invoke(call)
        finally:
            _AGENT_CALL.reset(token)
        self.tracer.complete(f"{call.id} {call.name}".strip(), "calls", start, self._now(),
                             "call", served="direct", ok=result.ok, call=key[:120])
        return result
