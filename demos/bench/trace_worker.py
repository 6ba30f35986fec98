"""One worker of `rtagent bench trace` (see :mod:`demos.bench.trace`), in its own process.

Tracing is on when ``RTAGENT_TRACE_ENDPOINT`` is set (the front-end's
collector), exactly as in the demos' processes. Prints one JSON line: the
loop's lateness and execution times, its counters, the replayed episodes'
task times and the trace sink's counters.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np

from control.dag_executor import loop_factory
from control.tools import ToolCall
from realtime import messages as m
from realtime.bus import Publisher
from realtime.clock import MonotonicClock
from realtime.endpoints import RunDirectory
from realtime.loop import DeadlineLoop, LoopOptions, TickInfo
from realtime.loop_trace import TickTracer
from realtime.trace import Tracer
from realtime.trace_bus import BusTracer, TraceBusOptions
from speculation.executor import SpeculationOptions, SpeculativeExecutor
from speculation.patterns import PatternLibrary
from speculation.predictors import PatternPredictor
from speculation.replay import ReplayBackend
from speculation.trace_hooks import TracedRegistry, TracedSpeculation
from speculation.traces import Episode
from speculation.workloads import load_specs, robot_episodes


def _scaled(episodes: list[Episode], k: float) -> list[Episode]:
    return [replace(e, steps=tuple(replace(s, think_ms=s.think_ms * k, tool_ms=s.tool_ms * k)
                                   for s in e.steps)) for e in episodes]


class Replay:
    """Recorded robot episodes, one after another on the real clock, through the
    real speculative executor (traced when the tracer is on)."""

    def __init__(self, tracer: Tracer, time_scale: float, seed: int) -> None:
        specs = load_specs("robot")
        train = _scaled(robot_episodes(100, seed=seed + 1000), time_scale)
        self.episodes = _scaled(robot_episodes(40, seed=seed), time_scale)
        self.backend = ReplayBackend(specs, [*train, *self.episodes])
        library = PatternLibrary()
        library.update(train)
        registry = self.backend.registry()
        self.executor = SpeculativeExecutor(
            TracedRegistry(registry, tracer) if tracer.enabled else registry,
            PatternPredictor(library), SpeculationOptions())
        self.spec = TracedSpeculation(self.executor, tracer)
        self.tracer = tracer
        self.task_s: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for n, ep in enumerate(self.episodes):
            self.backend.episode, self.backend.position = ep, 0
            t0, t0_ns = loop.time(), time.monotonic_ns()
            obs = None
            for i, step in enumerate(ep.steps):
                if ep.observation_at(i) != obs:
                    obs = ep.observation_at(i)
                    self.spec.observe(obs)
                await asyncio.sleep(step.think_ms / 1000.0)  # the agent decides
                self.backend.position = i
                call = ToolCall(step.name, dict(step.arguments), id=str(i + 1))
                key = call.key()
                self.backend.pending[key] = self.backend.pending.get(key, 0) + 1
                await self.spec.call(call, observation=obs)
                self.backend.pending[key] -= 1
                self.backend.position = i + 1
            self.task_s.append(loop.time() - t0)
            self.tracer.complete(f"turn {n + 1}", "agent", t0_ns, time.monotonic_ns(),
                                 steps=len(ep.steps))
            await self.executor.aclose()
            self.executor.reset()


def _tick_body(rng: np.random.Generator) -> Any:
    """A 7-joint damped least-squares IK step, as a skill would compute each tick."""
    jac = rng.standard_normal((6, 7))
    err = rng.standard_normal(6)
    q = np.zeros(7)
    for _ in range(8):
        dq = jac.T @ np.linalg.solve(jac @ jac.T + 0.01 * np.eye(6), err)
        q += 0.5 * dq
        err = err - 0.5 * (jac @ dq)
    return q


def main(spec: dict[str, Any]) -> int:
    options = TraceBusOptions(flush_ms=float(spec.get("flush_ms", TraceBusOptions.flush_ms)))
    bus = BusTracer.from_env(str(spec.get("process", "bench")), options=options)
    tracer = bus.tracer
    replay = Replay(tracer, float(spec["time_scale"]), int(spec["seed"]))
    agent_loop = loop_factory()()
    thread = threading.Thread(target=agent_loop.run_forever, name="agent", daemon=True)
    thread.start()
    rng = np.random.default_rng(int(spec["seed"]))
    with RunDirectory() as run_dir:
        pub = Publisher(run_dir.endpoint("commands"), source="decision")

        def tick(info: TickInfo) -> m.Command:
            q = _tick_body(rng)
            cmd = m.Command(mode="move", joint_target_rad=[float(x) for x in q],
                            deadline_ns=info.release_ns + 2 * info.period_ns)
            pub.publish(cmd, topic="cmd")
            if tracer.enabled:
                tracer.complete("cmd", "bus", info.wake_ns, time.monotonic_ns(), "msg",
                                seq=info.seq)
            return cmd

        loop: DeadlineLoop[m.Command] = DeadlineLoop(MonotonicClock(),
                                                     LoopOptions(hz=float(spec["hz"])), tick)
        ticks = TickTracer(loop, tracer).attach()
        job = asyncio.run_coroutine_threadsafe(replay.run(), agent_loop)
        try:
            summary = loop.run(seconds=float(spec["seconds"]))
        finally:
            job.cancel()

            async def stop() -> None:
                await replay.executor.aclose()
                replay.spec.record_metrics()

            asyncio.run_coroutine_threadsafe(stop(), agent_loop).result(timeout=10)
            agent_loop.call_soon_threadsafe(agent_loop.stop)
            thread.join(timeout=10)
            agent_loop.close()
            ticks.finish()
            pub.close()
    bus.close()  # sends what is queued, then the counters
    sent = bus.sink.sent if bus.sink is not None else 0
    dropped = bus.sink.dropped if bus.sink is not None else 0
    release, wake, end = loop.history.arrays()
    print(json.dumps({
        "traced": tracer.enabled, "connected": bus.connected,
        "ticks": summary.ticks, "deadline_misses": summary.deadline_misses,
        "overruns": summary.overruns,
        "lateness_us": [(w - r) / 1e3 for r, w in zip(release, wake, strict=True)],
        "exec_us": [(e - w) / 1e3 for w, e in zip(wake, end, strict=True)],
        "task_s": replay.task_s, "hits": replay.executor.metrics.hits,
        "events_sent": sent, "events_dropped": dropped,
    }))
    return 0
