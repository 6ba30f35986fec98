"""The agent: decoder -> parallel DAG executor -> (speculative) tools, off the loop.

The deadline loop must never wait, so the agent runs on its own thread with an
asyncio (uvloop) event loop. The loop talks to it through two non-blocking
calls: :meth:`Agent.submit` hands over a request (an instruction, a final
transcript) and :meth:`Agent.poll` returns the turns finished since the last
poll. A turn:

1. builds the decode context from the *latest* observation (``context_fn``) and
   the tools (``tools_fn``; narrow arguments through the context's enums, not the
   specs, so the prompt and its KV cache stay the same);
2. streams the decoder's calls straight into the DAG executor, so the first call
   starts while later ones are still being decoded (LLMCompiler's streaming);
3. runs every call through ``invoke`` (the speculative executor's ``call`` in the
   demos, which serves or joins predicted calls) — independent calls at once;
4. on failure, replans with the failure report as feedback (bounded), except where
   every failed call failed on a value the tool does not know (``ToolResult.unknown_value``:
   "no data for city 'Atlantis'"): another decode would only guess another value, so
   the turn ends with the tool's message for the reply.

A turn whose decode chose no call (``none()``: "never mind", "thanks") is ``ok`` with
``no_call`` set, so a front-end answers it briefly instead of apologising.

With a :class:`Foresight`, the next queued request is decoded *while* the
current turn's calls still run (a motion takes seconds; a decode ~1 s), on the
world the foresight predicts those calls leave behind; when its turn starts, the
calls decoded ahead are used only if the world it really finds matches that
prediction (``Foresight.matches``), else it is decoded afresh, with those calls as
the decoder's draft (``DecodeContext.draft``: the same answer, in fewer passes
where the new world does not change it).

Turns run one at a time, in order (one body, one plan at a time); the decoder
runs on one worker thread because a llama.cpp context is not thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from control.dag_executor import DagExecutor, DagRun, Invoke, loop_factory
from control.dag_run import DagOptions
from control.tools import ToolCall, ToolRegistry, ToolSpec
from control.turn_report import (
    decode_costs,
    forward_passes,
    only_unknown_values,
    result_json,
    short,
    timed_list,
)
from realtime.errors import ConfigError, RtAgentError
from realtime.trace import Tracer

__all__ = ["Agent", "AgentOptions", "DecodeTimeoutError", "Foresight", "Turn", "drain"]

T = TypeVar("T")


def drain(q: queue.Queue[T] | queue.SimpleQueue[T]) -> list[T]:
    """Everything in ``q`` now, without blocking (finished turns handed to a loop)."""
    out: list[T] = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out


class DecodeTimeoutError(RtAgentError):
    """A turn's decode ran past ``AgentOptions.decode_timeout_s``; the turn ended with it."""

ContextFn = Callable[[str, Sequence[Mapping[str, str]]], Any]  # -> models.decoder.DecodeContext


class Foresight(Protocol):
    """How to decode the next request before the current turn's calls have run."""

    def predict(self, calls: Sequence[ToolCall]) -> Any | None:
        """The observation ``calls`` should leave behind if they succeed (None: can't say)."""

    def context(self, text: str, observation: Any) -> Any:
        """The decode context for ``text`` on ``observation``."""

    def matches(self, predicted: Any) -> bool:
        """Whether the world now is what ``predicted`` said (then the early decode stands)."""


@dataclass(frozen=True)
class AgentOptions:
    """How the agent plans and runs a turn. ``decode_timeout_s``: the longest one decode
    may take (waiting for the decoder thread included); past it the turn ends with a
    :class:`DecodeTimeoutError` and the agent takes the next request (None: no limit)."""

    max_replans: int = 1  # extra decode+run rounds after a failed call
    dag: DagOptions = field(default_factory=DagOptions)
    decode_timeout_s: float | None = 60.0

    def __post_init__(self) -> None:
        if self.max_replans < 0:
            raise ConfigError(f"max_replans: expected >= 0, got {self.max_replans!r}")
        if self.decode_timeout_s is not None and not self.decode_timeout_s > 0:
            raise ConfigError(
                f"decode_timeout_s: expected > 0 or None, got {self.decode_timeout_s!r}")


@dataclass
class Turn:
    """One request and what the agent did about it (times: monotonic ns)."""

    id: int
    text: str
    submitted_ns: int
    calls: list[ToolCall] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    ok: bool = False
    error: str | None = None
    replans: int = 0
    decode_ms: list[float] = field(default_factory=list)  # one per decode (replans add more)
    first_call_ns: int = 0  # when the decoder produced the first call
    first_result_ns: int = 0  # when the first call finished
    done_ns: int = 0
    speculative_hits: int = 0
    foreseen: bool | None = None  # decoded ahead: True used, False discarded; None: not tried
    no_call: bool = False  # the decoder chose no call (``none()``): nothing to do, not a failure
    unknown_value: bool = False  # failed only on values the tools do not know (not replanned)

    @property
    def latency_ms(self) -> float:
        return (self.done_ns - self.submitted_ns) / 1e6 if self.done_ns else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "text": self.text, "ok": self.ok, "error": self.error,
            "calls": [c.to_json() for c in self.calls], "results": self.results,
            "replans": self.replans, "decode_ms": [round(d, 2) for d in self.decode_ms],
            "latency_ms": round(self.latency_ms, 2),
            "first_call_ms": round((self.first_call_ns - self.submitted_ns) / 1e6, 2)
            if self.first_call_ns else None,
            "speculative_hits": self.speculative_hits, "foreseen": self.foreseen,
            "no_call": self.no_call, "unknown_value": self.unknown_value,
        }


class Agent:
    """Runs turns on a background event loop; ``submit``/``poll`` never block.

    Args:
        decoder: a :class:`models.decoder.Decoder` (``decode_stream``).
        registry: the tools (specs for the DAG, and the default ``invoke``).
        context_fn: ``(request, history) -> DecodeContext`` from the latest observation.
        tools_fn: the tool specs allowed now (None: all of the registry's).
        invoke: how one call runs (default ``registry.invoke``; the demos pass
            ``SpeculativeExecutor.call``).
    """

    def __init__(self, decoder: Any, registry: ToolRegistry, context_fn: ContextFn, *,
                 tools_fn: Callable[[], Sequence[ToolSpec]] | None = None,
                 invoke: Invoke | None = None, options: AgentOptions | None = None,
                 foresight: Foresight | None = None,
                 tracer: Tracer | None = None, now_ns: Callable[[], int] = time.monotonic_ns):
        self.decoder = decoder
        self.registry = registry
        self.context_fn = context_fn
        self.tools_fn = tools_fn or registry.specs
        self.options = options or AgentOptions()
        self.tracer = tracer or Tracer("agent", enabled=False)
        self._now = now_ns
        self._invoke = invoke or registry.invoke
        self.foresight = foresight
        self._waiting: list[Turn] = []  # submitted, not started (agent loop only)
        self._running_calls: list[ToolCall] = []  # the running turn's, once decoded
        self._ahead: dict[int, tuple[Any, asyncio.Future[tuple[list[ToolCall], float]]]] = {}
        self._done: queue.SimpleQueue[Turn] = queue.SimpleQueue()
        self._next_id = 0
        self._pending = 0
        self._lock = threading.Lock()
        self._decode_thread = ThreadPoolExecutor(1, thread_name_prefix="decoder")
        self._loop = loop_factory()()
        self._thread = threading.Thread(target=self._loop.run_forever, name="agent", daemon=True)
        self._thread.start()
        self._turn_lock = asyncio.Lock()
        self._closed = False
        self._turn_started_ns = 0  # the running turn's start (0: none); read by progress()
        self._turns_ended = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The agent's event loop (e.g. to build a SpeculativeExecutor on it)."""
        return self._loop

    def run_on_loop(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the agent's loop thread and return its result (set-up only)."""
        async def wrap() -> Any:
            return fn()
        return asyncio.run_coroutine_threadsafe(wrap(), self._loop).result()

    def progress(self) -> tuple[int, int]:
        """``(turn_started_ns, turns_ended)``: when the running turn started (0: none
        runs) and how many turns ended; any thread (``Node.report_turns`` takes it)."""
        return self._turn_started_ns, self._turns_ended

    @property
    def busy(self) -> bool:
        """True while a submitted turn has not been returned by ``poll``."""
        with self._lock:
            return self._pending > 0

    def submit(self, text: str) -> int:
        """Queue a request; returns its turn id at once."""
        if self._closed:
            raise ConfigError("agent is closed")
        with self._lock:
            self._next_id += 1
            self._pending += 1
            turn = Turn(self._next_id, text, self._now())
        fut: Future[None] = asyncio.run_coroutine_threadsafe(self._queue_turn(turn), self._loop)
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # surfaced via the turn
        return turn.id

    def poll(self) -> list[Turn]:
        """Turns finished since the last poll (never blocks)."""
        out = drain(self._done)
        if out:
            with self._lock:
                self._pending -= len(out)
        return out

    def wait(self, timeout_s: float) -> list[Turn]:
        """Block until every submitted turn is done or ``timeout_s`` (tests, CLI tools)."""
        deadline = time.monotonic() + timeout_s
        out: list[Turn] = []
        while self.busy and time.monotonic() < deadline:
            out += self.poll()
            time.sleep(0.005)
        return out + self.poll()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def stop() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._decode_thread.shutdown(wait=True, cancel_futures=True)
        self._loop.close()

    # -- the turn, on the agent's loop ----------------------------------------------------
    async def _queue_turn(self, turn: Turn) -> None:
        self._waiting.append(turn)
        if self._running_calls:  # queued while a decoded turn's calls run
            self._decode_ahead()
        await self._run_turn(turn)

    async def _run_turn(self, turn: Turn) -> None:
        async with self._turn_lock:
            self._waiting.remove(turn)
            self._turn_started_ns = self._now()
            try:
                await self._plan_and_run(turn)
            except Exception as exc:  # a turn's failure is reported, never lost
                turn.ok, turn.error = False, f"{type(exc).__name__}: {exc}"
            finally:
                self._running_calls = []
                turn.done_ns = self._now()
                self._turn_started_ns, self._turns_ended = 0, self._turns_ended + 1
                self.tracer.complete(f"turn {turn.id}", "agent", turn.submitted_ns, turn.done_ns,
                                     ok=turn.ok, text=turn.text[:60])
                self._done.put(turn)

    async def _plan_and_run(self, turn: Turn) -> None:
        history: list[dict[str, str]] = []
        dag = DagExecutor(self.registry, self._on_call(turn), self.options.dag)
        ahead, draft = await self._decoded_ahead(turn)
        for attempt in range(self.options.max_replans + 1):
            context = self.context_fn(turn.text, history)
            if draft is not None and not attempt and hasattr(context, "draft"):
                context = replace(context, draft=tuple(draft))
            tools = list(self.tools_fn())
            calls: list[ToolCall] = []
            stream = (self._stream(turn, context, tools, calls) if ahead is None or attempt
                      else self._replay(turn, ahead, calls))
            run: DagRun = await dag.run(stream)
            turn.calls = calls
            turn.results = [result_json(run, c) for c in calls]
            turn.replans = attempt
            if run.ok:
                turn.ok, turn.error, turn.no_call = True, None, not calls
                return
            turn.ok, turn.error = False, run.failure_report() or "a call failed"
            turn.unknown_value = only_unknown_values(run)
            if turn.unknown_value:  # a replan would guess another value: tell the user
                return
            history = [{"role": "user", "content": turn.text},
                       {"role": "assistant", "content": "\n".join(short(c) for c in calls)},
                       {"role": "user", "content": f"That failed: {turn.error}. Try again."}]

    def _stream(self, turn: Turn, context: Any, tools: list[ToolSpec],
                sink: list[ToolCall]) -> Any:
        """The decoder's calls as an async stream, decoded on the decoder thread."""
        loop = asyncio.get_running_loop()
        it: Iterator[ToolCall] = iter(self.decoder.decode_stream(context, tools))
        start = self._now()
        tracer = self.tracer
        passes0 = forward_passes(self.decoder) if tracer.enabled else None
        limit_s = self.options.decode_timeout_s
        deadline = None if limit_s is None else time.monotonic() + limit_s

        def next_call() -> ToolCall | None:
            return next(it, None)

        async def gen() -> Any:
            timed_out = False
            try:
                while True:
                    pending = loop.run_in_executor(self._decode_thread, next_call)
                    try:
                        call = await (pending if deadline is None else asyncio.wait_for(
                            pending, max(0.0, deadline - time.monotonic())))
                    except TimeoutError:
                        timed_out = True
                        raise DecodeTimeoutError(
                            f"the decode took longer than decode_timeout_s={limit_s:g} s "
                            f"({len(sink)} call(s) decoded), so the turn was abandoned: the "
                            "decoder is overloaded or hung (slow here? raise it)") from None
                    if call is None:
                        break
                    yield self._take(turn, call, sink)
            finally:
                end = self._now()
                turn.decode_ms.append((end - start) / 1e6)
                if tracer.enabled:
                    tracer.complete("decode", "decoder", start, end, "decode", calls=len(sink),
                                    **decode_costs(self.decoder, passes0),
                                    **({"timed_out": True} if timed_out else {}))
                close = getattr(it, "close", None)
                if timed_out:  # the decoder thread is still in that decode: queue the close
                    with contextlib.suppress(RuntimeError):  # shut down: closing anyway
                        if close is not None:
                            self._decode_thread.submit(close)
                else:
                    if close is not None:
                        await loop.run_in_executor(self._decode_thread, close)
                    self._decoded(sink)
        return gen()

    # -- foresight: the next request decoded while this turn's calls run -------------------
    def _decoded(self, calls: Sequence[ToolCall]) -> None:
        """The running turn's calls are decoded: note them, and decode ahead on them."""
        self._running_calls = list(calls)
        self._decode_ahead()

    def _decode_ahead(self) -> None:
        """Start decoding the next waiting request on the world the running calls should leave."""
        calls = self._running_calls
        if self.foresight is None or not self._waiting or not calls:
            return
        nxt = self._waiting[0]
        if nxt.id in self._ahead:
            return
        try:
            predicted = self.foresight.predict(calls)
            if predicted is None:
                return
            context = self.foresight.context(nxt.text, predicted)
            tools = list(self.tools_fn())
        except Exception:  # no prediction: the turn decodes when it starts, as usual
            return
        it = iter(self.decoder.decode_stream(context, tools))
        fut = asyncio.get_running_loop().run_in_executor(self._decode_thread, timed_list, it)
        self._ahead[nxt.id] = (predicted, fut)

    async def _decoded_ahead(
            self, turn: Turn) -> tuple[tuple[list[ToolCall], float] | None, list[ToolCall] | None]:
        """The calls decoded ahead for ``turn`` (and the decode's ms) if the world matches;
        else, if there are any, those calls as a draft for decoding afresh."""
        entry = self._ahead.pop(turn.id, None)
        if entry is None or self.foresight is None:
            return None, None
        predicted, fut = entry
        try:  # one llama context: let it finish (within the decode timeout)
            limit_s = self.options.decode_timeout_s
            ahead: tuple[list[ToolCall], float] = await (
                fut if limit_s is None else asyncio.wait_for(asyncio.shield(fut), limit_s))
            turn.foreseen = bool(self.foresight.matches(predicted))
        except Exception:  # a failed early decode or check: decode afresh
            turn.foreseen = False
            return None, None
        return (ahead, None) if turn.foreseen else (None, ahead[0])

    async def _replay(self, turn: Turn, ahead: tuple[list[ToolCall], float],
                      sink: list[ToolCall]) -> Any:
        """The calls decoded ahead, streamed as a fresh decode would stream them."""
        calls, ms = ahead
        turn.decode_ms.append(ms)
        for call in calls:
            yield self._take(turn, call, sink)
        self._decoded(sink)

    def _take(self, turn: Turn, call: ToolCall, sink: list[ToolCall]) -> ToolCall:
        """A call as the turn's plan gets it: numbered (the plan numbers calls the same
        way), its time noted if it is the first, kept in ``sink``."""
        if not call.id:
            call = replace(call, id=str(len(sink) + 1))
        if not turn.first_call_ns:
            turn.first_call_ns = self._now()
        sink.append(call)
        return call

    def _on_call(self, turn: Turn) -> Invoke:
        async def invoke(call: ToolCall) -> Any:
            result = await self._invoke(call)
            if not turn.first_result_ns:
                turn.first_result_ns = self._now()
            if getattr(result, "speculative", False):
                turn.speculative_hits += 1
            return result
        return invoke
