"""Run a plan of tool calls as a DAG: each call starts as soon as it may.

LLMCompiler's task fetching unit and executor on asyncio. Every call is
launched the moment the last call it waits for finishes (a completion
callback, never a polling loop), with its ``$k`` references replaced by
results. Concurrency is bounded, each call has a timeout, and a call that
fails cancels exactly the calls downstream of it (data or resource order);
everything else still runs. Failures come back as data for a replan
(:meth:`DagRun.failure_report`, :meth:`DagExecutor.run_with_replans`).

Calls may arrive while the decoder is still producing later ones: use
:meth:`DagExecutor.session` (``add(call)`` then ``close()``) or hand
:meth:`DagExecutor.run` an async iterator, or a sync iterator (consumed in a
worker thread, so a blocking decoder never stalls the loop).

The executor never calls tools itself: ``invoke`` does (by default
:meth:`ToolRegistry.invoke`; with speculation, the speculative executor's
``call``, which joins a predicted call already running). Use uvloop with
:func:`run_sync` or ``asyncio.Runner(loop_factory=loop_factory())``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TypeVar

from control.dag_run import DONE, CallStatus, DagOptions, DagRun, ReplanOutcome, TimelineEntry
from control.plan import Plan, PlanError, PlannedCall, substitute
from control.tools import ToolCall, ToolRegistry, ToolResult
from realtime.clock import Clock, MonotonicClock
from realtime.errors import ConfigError

__all__ = [
    "CallStatus",
    "DagExecutor",
    "DagOptions",
    "DagRun",
    "DagSession",
    "Invoke",
    "ReplanOutcome",
    "TimelineEntry",
    "loop_factory",
    "run_sync",
]

Invoke = Callable[[ToolCall], Awaitable[ToolResult]]
T = TypeVar("T")


class DagSession:
    """One plan being executed while its calls are still arriving."""

    def __init__(self, executor: DagExecutor, plan: Plan) -> None:
        self._ex = executor
        self.plan = plan
        self.run = DagRun(plan)
        self._now = executor.clock.now_ns
        self._remaining: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._active = 0
        self._done = asyncio.Event()
        self._closed = False
        self._sem = asyncio.Semaphore(executor.options.max_concurrency)
        for planned in plan:  # a plan built beforehand: all its calls at once
            self._ingest(planned)
        if plan.closed:
            self._closed = True
            self._check_done()

    # Feeding calls --------------------------------------------------------------------

    def add(self, call: ToolCall) -> PlannedCall:
        """Add the decoder's next call; it starts at once if nothing holds it back.

        Raises :class:`PlanError` for a malformed call (the call is not added).
        """
        planned = self.plan.add(call)
        self._ingest(planned)
        return planned

    def _ingest(self, planned: PlannedCall) -> None:
        now = self._now()
        self.run.timeline[planned.id] = TimelineEntry(
            planned.id, planned.call.name, tuple(sorted(planned.deps)), added_ns=now)
        self._active += 1
        self._done.clear()
        failed = None
        waiting = 0
        for dep in planned.deps:
            entry = self.run.timeline.get(dep)
            if entry is None or entry.status not in DONE:
                waiting += 1
            elif entry.status is not CallStatus.OK:
                failed = dep
        if failed is not None:
            self._cancel(planned.id, failed)
        elif waiting == 0:
            self._launch(planned)
        else:
            self._remaining[planned.id] = waiting

    def close(self) -> None:
        """No more calls will come. Raises :class:`MissingReferenceError` for dangling refs.

        The calls waiting for a call that never came fail, so the session still ends.
        """
        if self._closed:
            return
        try:
            self.plan.close()
        except PlanError as exc:
            self.abandon(exc)
            raise
        self._closed = True
        self._check_done()

    def abandon(self, error: PlanError) -> None:
        """The plan is broken: take no more calls; calls waiting for absent ones fail.

        Calls already running (and those waiting only for them) still finish.
        """
        self.run.plan_error = error
        self._closed = True
        self.plan.closed = True
        for ids in self.plan.unresolved().values():
            for call_id in ids:
                if call_id in self._remaining:
                    self._finish_failed(call_id, CallStatus.FAILED, error,
                                        f"not run: {error}")
        self._check_done()

    async def wait(self) -> DagRun:
        """Wait until the session is closed and every call has ended."""
        await self._done.wait()
        return self.run

    async def cancel(self) -> None:
        """Stop: cancel running calls, never start the waiting ones."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for call_id, entry in self.run.timeline.items():
            if entry.status not in DONE:
                self._finish_failed(call_id, CallStatus.CANCELLED, None, "the plan was cancelled")
        self._check_done()

    async def __aenter__(self) -> DagSession:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            await self.cancel()

    # Scheduling -----------------------------------------------------------------------

    def _launch(self, planned: PlannedCall) -> None:
        entry = self.run.timeline[planned.id]
        entry.status = CallStatus.RUNNING
        entry.ready_ns = self._now()
        task = asyncio.get_running_loop().create_task(self._execute(planned))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, planned: PlannedCall) -> None:
        ex = self._ex
        entry = self.run.timeline[planned.id]
        async with self._sem:
            entry.started_ns = self._now()
            try:
                registry = ex.registry if ex.options.validate_substituted else None
                results = self.run.results
                values = {r: results[r].value for r in planned.refs if r in results}
                call = substitute(planned, values, registry)
            except PlanError as exc:
                self._finish_failed(planned.id, CallStatus.FAILED, exc)
                return
            timeout = ex.options.timeout_s(call.name)
            try:
                async with asyncio.timeout(timeout):
                    result = await ex.invoke(call)
            except TimeoutError as exc:
                self._finish_failed(planned.id, CallStatus.TIMED_OUT, exc,
                                    f"timed out after {timeout:g} s", call)
                return
            except Exception as exc:  # an injected invoke may raise; it is data here
                self._finish_failed(planned.id, CallStatus.FAILED, exc, call=call)
                return
        self.run.results[planned.id] = result
        self._finish(planned.id, CallStatus.OK if result.ok else CallStatus.FAILED,
                     None if result.ok else result.error)

    def _finish_failed(self, call_id: str, status: CallStatus, exc: BaseException | None,
                       error: str | None = None, call: ToolCall | None = None) -> None:
        if self.run.timeline[call_id].status in DONE:
            return
        if exc is not None:
            self.run.errors[call_id] = exc
        message = error or f"{type(exc).__name__}: {exc}"
        now = self._now()
        self.run.results[call_id] = ToolResult(
            call or self.plan[call_id].call, False, error=message,
            started_ns=self.run.timeline[call_id].started_ns or now, ended_ns=now)
        self._finish(call_id, status, message)

    def _finish(self, call_id: str, status: CallStatus, error: str | None) -> None:
        entry = self.run.timeline[call_id]
        if entry.status in DONE:
            return
        entry.status = status
        entry.error = error
        entry.ended_ns = self._now()
        self._active -= 1
        self._remaining.pop(call_id, None)
        for dependant in self.plan.dependants(call_id):
            if dependant not in self._remaining:
                continue  # not added yet, or already cancelled
            if status is not CallStatus.OK:
                self._cancel(dependant, call_id)
                continue
            self._remaining[dependant] -= 1
            if self._remaining[dependant] == 0:
                del self._remaining[dependant]
                self._launch(self.plan[dependant])
        self._check_done()

    def _cancel(self, call_id: str, because: str) -> None:
        self._finish_failed(call_id, CallStatus.CANCELLED, None,
                            f"not run: it depends on call {because}, which did not succeed")

    def _check_done(self) -> None:
        if self._closed and self._active == 0:
            self._done.set()


PlanSource = Iterable[ToolCall] | AsyncIterable[ToolCall] | Plan
PlanFn = Callable[[DagRun | None], PlanSource | Awaitable[PlanSource]]


class DagExecutor:
    """Executes plans of tool calls concurrently, respecting their dependencies.

    Args:
        registry: the tools' specs (for resources and validation); its ``invoke``
            is the default way to run a call.
        invoke: runs one call, e.g. ``SpeculativeExecutor.call``.
        options: concurrency and timeouts.
        clock: where the timeline's times come from.
    """

    def __init__(self, registry: ToolRegistry, invoke: Invoke | None = None,
                 options: DagOptions | None = None, clock: Clock | None = None) -> None:
        self.registry = registry
        self.invoke: Invoke = invoke or registry.invoke
        self.options = options or DagOptions()
        self.clock: Clock = clock or MonotonicClock(spin_us=0)

    def session(self, plan: Plan | None = None) -> DagSession:
        """A streaming run: ``add(call)`` as calls arrive, ``close()``, then ``await wait()``.

        Must be called with the event loop running. Given a built ``plan``, its calls
        start at once.
        """
        return DagSession(self, plan or Plan(self.registry))

    async def run(self, source: PlanSource) -> DagRun:
        """Run a plan (a list, a built :class:`Plan`, or a sync/async stream of calls).

        Raises :class:`PlanError` for a malformed plan: a list or Plan before anything
        runs; a stream once the calls already started have ended (``exc.partial``
        holds that run). A sync iterator that is not a list is read in a worker thread.
        """
        if isinstance(source, list | tuple):
            source = Plan.from_calls(source, self.registry)
        if isinstance(source, Plan):
            if not source.closed:
                source.close()
            async with self.session(source) as session:
                return await session.wait()
        calls = source if isinstance(source, AsyncIterable) else _threaded(iter(source))
        async with self.session() as session:
            try:
                async for call in calls:
                    session.add(call)
                session.close()
            except PlanError as exc:
                session.abandon(exc)
                exc.partial = await session.wait()
                raise
            finally:
                aclose = getattr(calls, "aclose", None)
                if aclose is not None:  # stop the producer if we stopped early
                    await aclose()
            return await session.wait()

    async def run_with_replans(self, plan_fn: PlanFn, max_replans: int = 2) -> ReplanOutcome:
        """Plan, run, and on failure replan with the failed run as feedback.

        ``plan_fn(previous)`` gets None first, then the last failed :class:`DagRun`
        (``failure_report()`` says what went wrong, ``values()`` what succeeded).
        Stops at the first run that succeeds or after ``max_replans`` replans.
        """
        if max_replans < 0:
            raise ConfigError(f"max_replans: expected >= 0, got {max_replans!r}")
        runs: list[DagRun] = []
        previous: DagRun | None = None
        for _ in range(max_replans + 1):
            source = plan_fn(previous)
            if isinstance(source, Awaitable):
                source = await source
            try:
                previous = await self.run(source)
            except PlanError as exc:
                previous = exc.partial or DagRun(Plan(self.registry))
                previous.plan_error = exc
            runs.append(previous)
            if previous.ok:
                break
        return ReplanOutcome(runs)


async def _threaded(it: Iterator[ToolCall]) -> AsyncIterator[ToolCall]:
    # A blocking producer (a decoder's generator) runs in a worker thread.
    end = object()
    try:
        while True:
            item = await asyncio.to_thread(next, it, end)
            if item is end:
                return
            yield item  # type: ignore[misc]
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            with contextlib.suppress(ValueError):  # still running in its thread
                close()


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's event loop where installed, else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run_sync(coro: Awaitable[T]) -> T:
    """Run ``coro`` to completion on a fresh (uvloop, where available) event loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coro)  # type: ignore[arg-type]
