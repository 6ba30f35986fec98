"""The speculative executor: middleware between the agent and its tools.

``result = await executor.call(call, observation=...)`` is all the agent does.
The executor serves a matching speculative result (same tool, same canonical
arguments, same versions of the resources it read), joins a matching run still
in flight (it never starts one twice), or runs the call for real; then it asks
its predictor for the top-K next calls and launches those the policy allows,
within its budget (concurrency, spare CPU cores, the control loop's slack).

Lossless by construction:

- a ``deny`` tool (or any tool that writes) never runs ahead for real: the check
  (:func:`speculation.metadata.guard_speculative`) sits at the invocation itself;
- a ``dry_run`` tool only has its dry run run ahead, and a dry-run result is
  never served (it lives under another key);
- a real write bumps the versions of what it writes when it starts and when it
  ends, and drops (cancels) every speculative result that read those resources;
- a read that changes with time (``x-max-age-ms``, ``x-depends-on-clock``) is
  served only while its result is younger than that bound when the agent asks,
  measured on ``options.clock_s`` (default: the event loop's clock); an older
  one is dropped and the call runs for real.

Multi-step: when a speculative run finishes, the executor predicts the call after
it from its result and prepares that too (up to ``max_depth``). At issue time it
also predicts from the call with a guessed result (or none): "thinking ahead".
Times come from the event loop's clock, so a virtual-time loop replays exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jsonschema

from control.tools import Effect, Tool, ToolCall, ToolRegistry, ToolResult
from speculation.cache import Entry, SpeculationCache
from speculation.derive import UNKNOWN, Context, Prediction
from speculation.metadata import (
    AheadMode,
    ResourceVersions,
    ahead_mode,
    call_resources,
    guard_speculative,
    max_age_s,
    registry_tool,
    resources_overlap,
)
from speculation.metrics import SpeculationMetrics
from speculation.options import SpeculationOptions
from speculation.patterns import Guess
from speculation.predictors import Guesser, Predictor
from speculation.traces import Step, TraceStore

__all__ = ["SpeculationOptions", "SpeculativeExecutor"]


class SpeculativeExecutor:
    """See the module doc. Not thread-safe: use it from one event loop."""

    def __init__(self, registry: ToolRegistry, predictor: Predictor | None,
                 options: SpeculationOptions | None = None, *, guesser: Guesser | None = None,
                 store: TraceStore | None = None, episode_id: str = "live") -> None:
        self.registry = registry
        self.predictor = predictor
        self.options = options or SpeculationOptions()
        if guesser is None and isinstance(predictor, Guesser):
            guesser = predictor
        self.guesser = guesser
        self.store = store
        self.episode_id = episode_id
        self.metrics = SpeculationMetrics()
        self._versions = ResourceVersions()
        self._cache = SpeculationCache(self._versions, self.options.max_entries, self._now_s)
        self._history: list[Step] = []
        self._observation: Mapping[str, Any] = {}
        self._gen = 0
        self._last: list[Prediction] = []
        self._real_keys: dict[str, int] = {}
        self._real_writes: list[frozenset[str]] = []
        self._validators: dict[str, jsonschema.protocols.Validator] = {}

    # ---- the agent's side ----
    async def call(self, call: ToolCall, *, observation: Mapping[str, Any] | None = None
                   ) -> ToolResult:
        """Serve ``call`` from speculation if a matching valid result exists, else run it."""
        if observation is not None:
            self._observation = dict(observation)
        loop = asyncio.get_running_loop()
        now = loop.time()
        asked_s = self._now_s()
        self._score(call)
        tool = registry_tool(self.registry, call.name)
        if tool is None:
            failed = await self.registry.invoke(call)
            self._commit(call, failed)
            return failed
        key = call.key()
        self._real_keys[key] = self._real_keys.get(key, 0) + 1
        _, writes = self._resources(tool, call)
        if writes:  # from now on nothing that reads these may start or be served
            self._real_writes.append(writes)
            self.invalidate(writes)
        try:
            if self.options.launch_at_issue:
                guess = self.guess(call)
                ctx = self.context().then(call, UNKNOWN if guess is None else guess.value)
                self._schedule(ctx, depth=1, chain=ctx.history[-1:], score=False)
            entry = self._cache.get(key)
            served = None if entry is None else await self._serve(entry, call, now, asked_s)
            if served is None:
                result = await self.registry.invoke(call)
                self.metrics.direct += 1
            else:
                result = served
        finally:
            if writes:
                self._real_writes.remove(writes)
                self.invalidate(writes)
            self._real_keys[key] -= 1
            if not self._real_keys[key]:
                del self._real_keys[key]
        self._commit(call, result)
        return result

    def observe(self, observation: Mapping[str, Any], *, changed: Iterable[str] = (),
                speculate: bool = True) -> None:
        """New world state or partial transcript; ``changed`` names resources that changed
        outside any tool (their speculative results are dropped). With ``speculate``,
        predicts from it at once (e.g. read-only tools before the user stops speaking)."""
        self._observation = dict(observation)
        self.invalidate(changed)
        if not speculate:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._schedule(self.context(), depth=1, chain=(), score=True)

    async def speculate(self, calls: Sequence[ToolCall]) -> int:
        """Explicit speculation requests (same policy and budget); returns how many started."""
        before = self.metrics.launched + self.metrics.dry_runs
        for c in calls:
            self._launch(Prediction(c, 1.0, "explicit"), depth=1, chain=())
        return self.metrics.launched + self.metrics.dry_runs - before

    def guess(self, call: ToolCall) -> Guess | None:
        """A guess of ``call``'s result for thinking ahead (commit only if the real one matches)."""
        entry = self._cache.get(call.key())
        if entry is not None and self._cache.valid(entry):
            res = entry.done_ok()
            if res is not None:
                return Guess(res.value, 1.0)
        if self.guesser is None:
            return None
        t0 = self.options.cpu_clock()
        try:
            g = self.guesser.guess_result(call, self.context())
        except Exception:  # a broken guesser costs a guess, never the agent's call
            self.metrics.predictor_errors += 1
            g = None
        self.metrics.overhead_cpu_s += self.options.cpu_clock() - t0
        return g

    def context(self) -> Context:
        return Context(tuple(self._history), self._observation)

    def invalidate(self, resources: Iterable[str]) -> None:
        """Resources changed outside the tools: drop what read them."""
        rs = list(resources)
        if rs:
            self._versions.bump(rs)
            for e in self._cache.conflicting(rs):
                self._drop(e, invalidated=True)

    def reset(self) -> None:
        """Start a new episode: cancel speculation, forget the history and observation."""
        self._cancel_all()
        self._history.clear()
        self._observation = {}
        self._last = []

    def close(self) -> None:
        self._cancel_all()

    async def aclose(self) -> None:
        tasks = [e.task for e in self._cache]
        self._cancel_all()
        if tasks:
            await asyncio.wait(tasks)

    # ---- serving and running ----
    def _now_s(self) -> float:
        """The clock results' ages are measured on."""
        if self.options.clock_s is not None:
            return self.options.clock_s()
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:  # outside the loop (closing): any monotonic reading will do
            return time.monotonic()

    async def _serve(self, entry: Entry, call: ToolCall, now: float, asked_s: float
                     ) -> ToolResult | None:
        if entry.dry_run or not self._cache.valid(entry, asked_s):
            if not entry.dry_run:
                self._drop_invalid(entry)
            return None
        joined = not entry.task.done()
        if joined:
            entry.used = True  # not evicted as stale while the agent waits on it
            await asyncio.wait({entry.task})
        res = entry.done_ok()
        if res is None or not self._cache.valid(entry, asked_s):
            entry.used = False
            self._drop(entry, invalidated=res is not None)
            return None
        entry.used = True
        self._cache.pop(entry)
        if joined:
            self.metrics.joins += 1
            self.metrics.latency_saved_s += max(0.0, now - entry.started_s)
        else:
            self.metrics.hits += 1
            self.metrics.latency_saved_s += (entry.ended_s or now) - entry.started_s
        return ToolResult(call, True, value=res.value, started_ns=res.started_ns,
                          ended_ns=res.ended_ns, speculative=True)

    def _resources(self, tool: Tool, call: ToolCall) -> tuple[frozenset[str], frozenset[str]]:
        reads, writes = call_resources(tool.spec, call)
        if tool.spec.effect is Effect.WRITE and not writes:
            writes = frozenset({"*"})   # a write that does not say what it writes: everything
        if not reads:
            reads = frozenset({"*"}) if tool.spec.effect is Effect.READ else reads
        return reads, writes

    def _commit(self, call: ToolCall, result: ToolResult) -> None:
        step = Step(name=call.name, arguments=dict(call.arguments),
                    result=result.value if result.ok else result.error,
                    tool_ms=result.duration_ms, ok=result.ok,
                    observation=dict(self._observation), speculative=result.speculative)
        self._history.append(step)
        del self._history[: -self.options.history_len]
        self._gen += 1
        self.metrics.calls += 1
        self.metrics.flag(call.key(), result.speculative)
        if self.store is not None:
            self.store.record(self.episode_id, step, started_ns=result.started_ns,
                              ended_ns=result.ended_ns)
        for e in self._cache.stale(self._gen, self.options.max_depth):
            if not e.used:
                self._drop(e)
        self._schedule(self.context(), depth=1, chain=(), score=True)

    def _score(self, call: ToolCall) -> None:
        keys = [p.call.key() for p in self._last]
        if keys and keys[0] == call.key():
            self.metrics.top1 += 1
        if call.key() in keys:
            self.metrics.topk += 1
        self._last = []

    # ---- speculation ----
    def _schedule(self, ctx: Context, *, depth: int, chain: tuple[Step, ...], score: bool
                  ) -> None:
        if self.predictor is None or self.options.top_k == 0:
            return
        t0 = self.options.cpu_clock()
        try:
            preds = self.predictor.predict(ctx, self.options.top_k)
        except Exception:  # a broken predictor costs speculation, never the agent's call
            self.metrics.predictor_errors += 1
            preds = []
        if score:
            self._last = preds
        for p in preds:
            self._launch(p, depth=depth, chain=chain)
        self.metrics.overhead_cpu_s += self.options.cpu_clock() - t0

    def _budget_ok(self) -> bool:
        o = self.options
        if self._cache.in_flight() >= o.max_concurrency:
            return False
        if o.slack_fn is not None and o.slack_fn() <= o.min_slack_ms:
            return False
        return not (o.spare_cores_fn is not None and o.spare_cores_fn() < o.cpu_headroom)

    def _launch(self, pred: Prediction, *, depth: int, chain: tuple[Step, ...]) -> None:
        if pred.probability < self.options.min_probability:
            return
        call = pred.call
        tool = registry_tool(self.registry, call.name)
        if tool is None:
            return
        mode = ahead_mode(tool)
        if mode is not AheadMode.RUN:
            self.metrics.writes_attempted += 1
            self.metrics.writes_blocked += 1
            if mode is AheadMode.DRY_RUN and self.options.dry_runs:
                self._start(tool, call, pred, depth, chain, dry_run=True)
            return
        if call.key() in self._real_keys:
            return
        self._start(tool, call, pred, depth, chain, dry_run=False)

    def _start(self, tool: Tool, call: ToolCall, pred: Prediction, depth: int,
               chain: tuple[Step, ...], *, dry_run: bool) -> None:
        key = ("dry:" if dry_run else "") + call.key()
        existing = self._cache.get(key)
        if existing is not None:
            if self._cache.valid(existing):
                existing.gen = max(existing.gen, self._gen)
                return
            self._drop_invalid(existing)
        if not self._valid_arguments(tool, call):
            return  # a malformed prediction is simply not run
        fn = self.options.cpu_s_fn
        if fn is not None and (1.0 - pred.probability) * fn(call, 1.0) > \
                self.options.max_expected_waste:
            self.metrics.skipped_budget += 1
            return
        reads, _ = self._resources(tool, call)
        if any(resources_overlap(reads, w) for w in self._real_writes):
            return  # a real write in flight would make the result stale
        if not self._budget_ok():
            self.metrics.skipped_budget += 1
            return
        loop = asyncio.get_running_loop()
        age = max_age_s(tool.spec, self.options.clock_read_max_age_ms)
        fresh_until = None if age is None else self._now_s() + age
        task = loop.create_task(self._invoke_ahead(tool, call, dry_run=dry_run))
        entry = Entry(call=call, dry_run=dry_run, reads=reads,
                      snapshot=self._versions.snapshot(reads), task=task,
                      started_s=loop.time(), depth=depth, probability=pred.probability,
                      gen=self._gen, chain=chain, fresh_until_s=fresh_until)
        for old in self._cache.put(entry):
            self._drop(old)
        if dry_run:
            self.metrics.dry_runs += 1
        else:
            self.metrics.launched += 1
        task.add_done_callback(lambda _t: self._finished(entry))

    def _valid_arguments(self, tool: Tool, call: ToolCall) -> bool:
        v = self._validators.get(tool.spec.name)
        if v is None:
            v = jsonschema.Draft202012Validator(dict(tool.spec.parameters))
            self._validators[tool.spec.name] = v
        return bool(v.is_valid(dict(call.arguments)))

    async def _invoke_ahead(self, tool: Tool, call: ToolCall, *, dry_run: bool) -> ToolResult:
        # THE enforcement point: nothing runs ahead without passing this guard.
        guard_speculative(tool, dry_run=dry_run)
        if not dry_run and tool.spec.effect is Effect.WRITE:  # unreachable past the guard
            self.metrics.writes_executed += 1
        return await self.registry.invoke(call, dry_run=dry_run)

    def _finished(self, entry: Entry) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        entry.ended_s = loop.time()
        if not entry.task.cancelled() and entry.task.exception() is not None:
            self.metrics.refused += 1  # the guard refused it (see _invoke_ahead)
            self._cache.pop(entry)
            return
        if entry.dry_run:
            self.metrics.dry_run_s += entry.ended_s - entry.started_s
            self._cache.pop(entry)
            return
        res = entry.done_ok()
        if (res is None or entry.depth >= self.options.max_depth or entry.gen < self._gen
                or entry.probability < self.options.multi_step_min_probability
                or not self._cache.valid(entry)):
            return
        step = Step(name=entry.call.name, arguments=dict(entry.call.arguments), result=res.value)
        chain = entry.chain + (step,)
        ctx = Context(tuple(self._history) + chain, self._observation)
        self._schedule(ctx, depth=entry.depth + 1, chain=chain, score=False)

    def _drop_invalid(self, entry: Entry) -> None:
        """Drop an entry that may not be served: a write changed what it read, or it is too old."""
        expired = self._versions.valid(entry.snapshot)
        if expired:
            self.metrics.expired += 1
        self._drop(entry, invalidated=not expired)

    def _drop(self, entry: Entry, *, invalidated: bool = False) -> None:
        self._cache.pop(entry)
        if entry.dropped:
            return
        entry.dropped = True
        if entry.used or entry.dry_run:
            if not entry.task.done():
                entry.task.cancel()
            return
        now = entry.ended_s
        if not entry.task.done():
            entry.task.cancel()
            self.metrics.cancelled += 1
            try:
                now = asyncio.get_running_loop().time()
            except RuntimeError:
                now = entry.started_s
        if invalidated:
            self.metrics.invalidated += 1
        self.metrics.unused += 1
        spent = max(0.0, (now if now is not None else entry.started_s) - entry.started_s)
        self.metrics.wasted_s += spent
        fn = self.options.cpu_s_fn
        self.metrics.wasted_cpu_s += fn(entry.call, spent) if fn is not None else spent

    def _cancel_all(self) -> None:
        for e in self._cache:
            self._drop(e)
