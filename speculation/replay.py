"""Replay recorded episodes with and without speculation, on a virtual clock.

Each episode is a list of steps: the agent thinks ``think_ms``, then makes the
call, which takes ``tool_ms``. A replay drives the *real*
:class:`~speculation.executor.SpeculativeExecutor` (the one the demos use) on a
:class:`~speculation.vtime.VirtualTimeLoop`, with a backend that answers each
call as the recorded world would: a call gets the result of the next matching
recorded step unless a recorded write to what it reads comes first (then the
previous one, or an "unrecorded" marker that must never reach the agent).

Runs: the baseline (no speculation); each predictor with pre-execution alone
and with thinking ahead (the agent starts deciding the next call while a tool
runs, committing only if the guessed result was right); and the same with an
oracle that knows the episode: the perfect-predictor bounds.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from control.tools import Effect, SpeculationPolicy, ToolCall, ToolRegistry, ToolResult, ToolSpec
from control.tools import canonical_json as cj
from speculation.derive import Context, Prediction
from speculation.executor import SpeculationOptions, SpeculativeExecutor
from speculation.metadata import resources_overlap
from speculation.metrics import SpeculationMetrics
from speculation.patterns import Guess
from speculation.predictors import Guesser, Predictor
from speculation.traces import Episode, Step
from speculation.vtime import run_virtual

__all__ = ["OraclePredictor", "ReplayBackend", "RunResult", "replay_run", "task_stats"]

_DEFAULT_IO_CPU = 0.05  # CPU share of a tool whose steps give no cpu_ms (mostly waiting)


class ReplayBackend:
    """Tools that answer as the recorded episode did, and that notice early writes."""

    def __init__(self, specs: Sequence[ToolSpec], history: Sequence[Episode] = ()) -> None:
        self.specs = {s.name: s for s in specs}
        self.episode = Episode("none", ())
        self.position = 0
        self.pending: dict[str, int] = {}  # keys the agent has issued and not yet received
        self.violations: list[str] = []    # write/deny tools run when the agent had not asked
        self.write_runs = 0
        self.dry_run_runs = 0
        self._default_ms: dict[str, float] = {}
        self._cpu_share: dict[str, float] = {}
        self.learn_durations([*history])

    def learn_durations(self, episodes: Sequence[Episode]) -> None:
        ms: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        for ep in episodes:
            for s in ep.steps:
                ms.setdefault(s.name, []).append(s.tool_ms)
                if s.cpu_ms is not None and s.tool_ms > 0:
                    cpu.setdefault(s.name, []).append(min(1.0, s.cpu_ms / s.tool_ms))
        self._default_ms.update({k: statistics.median(v) for k, v in ms.items()})
        self._cpu_share.update({k: statistics.fmean(v) for k, v in cpu.items()})

    def cpu_s(self, call: ToolCall, wall_s: float) -> float:
        return wall_s * self._cpu_share.get(call.name, _DEFAULT_IO_CPU)

    def _writes(self, step: Step) -> frozenset[str]:
        spec = self.specs.get(step.name)
        if spec is None:
            return frozenset({"*"})
        _, writes = spec.resources(step.arguments)
        return writes or (frozenset({"*"}) if spec.effect is Effect.WRITE else writes)

    def lookup(self, call: ToolCall) -> Step | None:
        """The recorded step whose result ``call`` would get now (see the module doc)."""
        spec = self.specs[call.name]
        reads, _ = spec.resources(call.arguments)
        reads = reads or frozenset({"*"})
        key, steps, p = call.key(), self.episode.steps, self.position
        for j in range(p, len(steps)):
            if steps[j].key() == key:
                return steps[j]
            if resources_overlap(reads, self._writes(steps[j])):
                break
        for j in range(min(p, len(steps)) - 1, -1, -1):
            if steps[j].key() == key:
                return steps[j]
            if resources_overlap(reads, self._writes(steps[j])):
                break
        return None

    def registry(self) -> ToolRegistry:
        reg = ToolRegistry()
        for spec in self.specs.values():
            dry = self._dry_fn(spec) if spec.speculation is SpeculationPolicy.DRY_RUN else None
            reg.register(spec, self._fn(spec), dry)
        return reg

    def _fn(self, spec: ToolSpec) -> Callable[..., Awaitable[Any]]:
        async def run(**arguments: Any) -> Any:
            call = ToolCall(spec.name, arguments)
            if spec.effect is Effect.WRITE or spec.speculation is SpeculationPolicy.DENY:
                self.write_runs += 1
                if not self.pending.get(call.key()):
                    self.violations.append(f"{call.key()} ran with no agent call pending")
            step = self.lookup(call)
            ms = step.tool_ms if step is not None else self._default_ms.get(spec.name, 100.0)
            await asyncio.sleep(ms / 1000.0)
            if step is None:
                return {"unrecorded": call.key()}
            if not step.ok:
                raise RuntimeError(str(step.result))
            return step.result
        return run

    def _dry_fn(self, spec: ToolSpec) -> Callable[..., Awaitable[Any]]:
        async def dry(**arguments: Any) -> Any:
            self.dry_run_runs += 1
            await asyncio.sleep(min(0.02, self._default_ms.get(spec.name, 100.0) / 10000.0))
            return {"dry_run": spec.name, "arguments": arguments, "feasible": True}
        return dry


class OraclePredictor:
    """Knows the episode being replayed: predicts exactly the next call(s) and results."""

    name = "oracle"

    def __init__(self) -> None:
        self.episode = Episode("none", ())
        self.position = 0

    def predict(self, ctx: Context, k: int) -> list[Prediction]:
        keys = [s.key() for s in self.episode.steps]
        n = len(ctx.history)
        if n >= len(keys) or [s.key() for s in ctx.history] != keys[:n]:
            return []
        s = self.episode.steps[n]
        return [Prediction(ToolCall(s.name, dict(s.arguments)), 1.0, "oracle")]

    def guess_result(self, call: ToolCall, ctx: Context | None = None) -> Guess | None:
        steps = self.episode.steps
        if self.position < len(steps) and steps[self.position].key() == call.key():
            s = steps[self.position]
            return Guess(s.result, 1.0) if s.ok else None
        return None


@dataclass
class RunResult:
    """One pass over the test episodes."""

    label: str
    task_s: list[float] = field(default_factory=list)
    committed: list[list[str]] = field(default_factory=list)
    metrics: SpeculationMetrics = field(default_factory=SpeculationMetrics)
    violations: list[str] = field(default_factory=list)
    unrecorded_served: int = 0
    dry_run_runs: int = 0


CallFn = Callable[[ToolCall, Mapping[str, Any]], Awaitable[ToolResult]]


async def _agent(ep: Episode, backend: ReplayBackend, call: CallFn,
                 guess: Callable[[ToolCall], Guess | None] | None,
                 observe: Callable[[Mapping[str, Any]], None] | None,
                 oracle: OraclePredictor | None) -> tuple[float, list[str], int]:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    ready = done = t0
    out: list[str] = []
    unrecorded = 0
    obs: Mapping[str, Any] | None = None
    for i, step in enumerate(ep.steps):
        if observe is not None and ep.observation_at(i) != obs:
            obs = ep.observation_at(i)
            observe(obs)
        issue_at = max(done, ready + step.think_ms / 1000.0)
        await asyncio.sleep(max(0.0, issue_at - loop.time()))
        backend.position = i
        if oracle is not None:
            oracle.position = i
        c = ToolCall(step.name, dict(step.arguments), id=str(i))
        g = guess(c) if guess is not None else None
        issued = loop.time()
        backend.pending[c.key()] = backend.pending.get(c.key(), 0) + 1
        res = await call(c, ep.observation_at(i))
        backend.pending[c.key()] -= 1
        backend.position = i + 1  # the world now reflects steps 0..i
        done = loop.time()
        value = res.value if res.ok else res.error
        if isinstance(value, Mapping) and "unrecorded" in value:
            unrecorded += 1
        out.append(f"{c.key()} -> {res.ok} {cj(value)}")
        right = g is not None and res.ok and cj(g.value) == cj(res.value)
        ready = issued if right else done
    return loop.time() - t0, out, unrecorded


def replay_run(label: str, specs: Sequence[ToolSpec], episodes: Sequence[Episode], *,
               predictor: Predictor | None, options: SpeculationOptions | None = None,
               think_ahead: bool = False, history: Sequence[Episode] = (),
               online: Callable[[Episode], None] | None = None,
               guesser: Guesser | None = None) -> RunResult:
    """Replay ``episodes`` on a virtual clock; ``predictor=None`` is the baseline.
    ``guesser`` guesses results (defaults to the predictor, if it can)."""
    return run_virtual(_replay(label, specs, episodes, predictor, options, think_ahead,
                               history, online, guesser))


async def _replay(label: str, specs: Sequence[ToolSpec], episodes: Sequence[Episode],
                  predictor: Predictor | None, options: SpeculationOptions | None,
                  think_ahead: bool, history: Sequence[Episode],
                  online: Callable[[Episode], None] | None, guesser: Guesser | None
                  ) -> RunResult:
    backend = ReplayBackend(specs, [*history, *episodes])
    registry = backend.registry()
    run = RunResult(label)
    oracle = predictor if isinstance(predictor, OraclePredictor) else None
    opts = options or SpeculationOptions()
    executor = None
    if predictor is not None:
        from dataclasses import replace

        opts = replace(opts, cpu_s_fn=backend.cpu_s)
        executor = SpeculativeExecutor(registry, predictor, opts, guesser=guesser)

    async def direct(c: ToolCall, _obs: Mapping[str, Any]) -> ToolResult:
        return await registry.invoke(c)

    async def speculative(c: ToolCall, obs: Mapping[str, Any]) -> ToolResult:
        assert executor is not None
        return await executor.call(c, observation=obs)

    for ep in episodes:
        backend.episode, backend.position = ep, 0
        if oracle is not None:
            oracle.episode, oracle.position = ep, 0
        if executor is None:
            t, out, bad = await _agent(ep, backend, direct, None, None, None)
        else:
            t, out, bad = await _agent(ep, backend, speculative,
                                       executor.guess if think_ahead else None,
                                       executor.observe, oracle)
            await executor.aclose()
            executor.reset()
        run.task_s.append(t)
        run.committed.append(out)
        run.unrecorded_served += bad
        if online is not None:
            online(ep)
    if executor is not None:
        run.metrics = executor.metrics
    run.violations = backend.violations
    run.dry_run_runs = backend.dry_run_runs
    return run


def task_stats(task_s: Sequence[float]) -> dict[str, float]:
    """Mean, p50, p95, p99 of task times, in seconds."""
    import numpy as np

    a = np.asarray(task_s, dtype=float)
    if a.size == 0:
        return {"mean_s": 0.0, "p50_s": 0.0, "p95_s": 0.0, "p99_s": 0.0}
    return {"mean_s": float(a.mean()), "p50_s": float(np.percentile(a, 50)),
            "p95_s": float(np.percentile(a, 95)), "p99_s": float(np.percentile(a, 99))}
