"""Parallel tool calls: the DAG executor against sequential execution.

Every tool call is a real request over loopback TCP to a local service (a
separate process) that answers after the call's latency, so the calls are
truly I/O-bound. Each plan runs both ways in the same run:

- sequential: one call after another in plan order (ReAct-style), references
  substituted, no executor;
- DAG: `control.dag_executor.DagExecutor` on uvloop.

Reported for each plan: the speedup (sequential / DAG time), the bound the
plan allows (sum of latencies / critical path), and their ratio (target
>= 0.9). Workloads: fan-outs of k = 2..8 independent calls, mixed DAGs
(diamond, chains, write conflicts, map-reduce), and a voice-demo flavoured
run with the real voice tool specs ("weather in Paris and in Rome") against a
simulated weather/home service, also through the speculative executor
(predicted calls joined, not started twice). Scheduling overhead per call is
measured with zero-latency tools: (DAG - sequential time) / calls (target
<= 0.2 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from control.dag_workloads import (
    MIXED,
    VOICE_LATENCY_MS,
    LocalService,
    fan_out,
    io_calls,
    io_registry,
    overhead_plans,
    overhead_registry,
    run_sequential,
    voice_plans,
    voice_registry,
)
from demos.bench.args import json_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latency-ms", type=float, default=30.0,
                        help="latency unit of one I/O-bound call (default 30)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of each plan each way; the median is reported (default 5)")
    parser.add_argument("--kmax", type=int, default=8, help="largest fan-out (default 8)")
    parser.add_argument("--overhead-runs", type=int, default=300,
                        help="runs of each zero-latency plan for the overhead (default 300)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="event loop (default uvloop where installed)")
    json_output(parser)


async def _timed(fns: Sequence[Callable[[], Awaitable[Any]]], repeats: int,
                 stat: Callable[[list[int]], float] = statistics.median
                 ) -> list[tuple[float, Any]]:
    """``stat`` of each function's ms, run interleaved so load changes hit all alike."""
    times: list[list[int]] = [[] for _ in fns]
    last: list[Any] = [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter_ns()
            last[i] = await fn()
            times[i].append(time.perf_counter_ns() - t0)
    return [(stat(t) / 1e6, v) for t, v in zip(times, last, strict=True)]


async def _compare(name: str, calls: list[Any], registry: Any, repeats: int,
                   durations_ms: dict[str, float]) -> dict[str, Any]:
    from control.dag_executor import DagExecutor
    from control.plan import Plan

    ex = DagExecutor(registry)
    plan = Plan.from_calls(calls, registry)
    cp_ms, path = plan.critical_path(durations_ms)
    bound = sum(durations_ms.values()) / cp_ms
    (seq_ms, _), (dag_ms, run) = await _timed(
        [lambda: run_sequential(calls, registry, registry.invoke), lambda: ex.run(calls)], repeats)
    if not run.ok:
        raise RuntimeError(f"{name}: the DAG run failed:\n{run.failure_report()}")
    speedup = seq_ms / dag_ms
    row = {"plan": name, "calls": len(calls), "sequential_ms": seq_ms, "dag_ms": dag_ms,
           "critical_path_ms": cp_ms, "speedup": speedup, "bound": bound,
           "of_bound": speedup / bound, "critical_path": path}
    print(f"  {name:<24} {len(calls):>5} {seq_ms:>9.1f} {dag_ms:>8.1f} {cp_ms:>7.1f} "
          f"{speedup:>7.2f}x {bound:>6.2f}x {speedup / bound:>7.2f}")
    return row


HEADER = (f"  {'plan':<24} {'calls':>5} {'seq ms':>9} {'dag ms':>8} {'CP ms':>7} "
          f"{'speedup':>8} {'bound':>7} {'of bound':>8}")


async def _overhead(runs: int) -> list[dict[str, Any]]:
    from control.dag_executor import DagExecutor

    reg = overhead_registry()
    ex = DagExecutor(reg)
    rows = []
    print(f"  {'plan':<12} {'seq us/call':>12} {'dag us/call':>12} {'overhead us/call':>17}")
    for name, calls in overhead_plans().items():
        n = len(calls)
        reps = max(3, runs * 8 // n)
        for _ in range(3):  # warm up both paths
            await run_sequential(calls, reg, reg.invoke)
            await ex.run(calls)
        (seq_ms, _), (dag_ms, _) = await _timed(
            [partial(run_sequential, calls, reg, reg.invoke), partial(ex.run, calls)], reps, min)
        seq_us, dag_us = seq_ms * 1000 / n, dag_ms * 1000 / n
        over = dag_us - seq_us
        print(f"  {name:<12} {seq_us:>12.1f} {dag_us:>12.1f} {over:>17.1f}"
              f"   {'meets' if over <= 200 else 'MISSES'} <= 200 us")
        rows.append({"plan": name, "calls": n, "seq_us_per_call": seq_us,
                     "dag_us_per_call": dag_us, "overhead_us_per_call": over})
    return rows


async def _speculative(vreg: Any, repeats: int, lead_ms: float = 60.0) -> dict[str, Any]:
    """The same plan through the speculative executor, both weather calls predicted
    ``lead_ms`` before the plan arrives (as from a partial transcript)."""
    from control.dag_executor import DagExecutor
    from control.tools import ToolCall
    from speculation.executor import SpeculativeExecutor

    calls = voice_plans()["... and text Anna both"]
    predicted = [ToolCall("get_weather", {"city": city}) for city in ("Paris", "Rome")]
    times, joins = [], 0
    for _ in range(repeats):
        spec = SpeculativeExecutor(vreg, None)
        try:
            await spec.speculate(predicted)
            await asyncio.sleep(lead_ms / 1000)  # the user is still speaking
            t0 = time.perf_counter_ns()
            run = await DagExecutor(vreg, spec.call).run(calls)
            times.append((time.perf_counter_ns() - t0) / 1e6)
            joins += spec.metrics.joins + spec.metrics.hits
        finally:
            await spec.aclose()
        if not run.ok:
            raise RuntimeError(f"speculative run failed:\n{run.failure_report()}")
    ms = statistics.median(times)
    ideal = VOICE_LATENCY_MS["get_weather"] - lead_ms + VOICE_LATENCY_MS["send_message"]
    print(f"  through SpeculativeExecutor.call, both weather calls predicted {lead_ms:g} ms "
          f"early: {ms:.1f} ms (ideal {ideal:g}); {joins / repeats:g} of 2 joined/served")
    return {"plan": "... and text Anna both", "lead_ms": lead_ms, "dag_ms": ms,
            "joined_per_run": joins / repeats}


def _timeline(run: Any) -> None:
    t0 = min(e.started_ns for e in run.timeline.values())
    t1 = max(e.ended_ns for e in run.timeline.values())
    scale = 48 / max(1, t1 - t0)
    for e in run.timeline.values():
        a, b = int((e.started_ns - t0) * scale), max(1, int((e.ended_ns - e.started_ns) * scale))
        args = run.results[e.id].call.arguments
        print(f"    {e.id} {e.name:<14} |{' ' * a}{'#' * b:<{48 - a}}| "
              f"{(e.ended_ns - t0) / 1e6:6.1f} ms  {json.dumps(args)[:48]}")


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    from control.dag_executor import DagExecutor
    from speculation.workloads import load_specs

    unit = args.latency_ms
    out: dict[str, Any] = {"latency_ms": unit, "loop": type(asyncio.get_running_loop()).__module__}
    print(f"loop: {out['loop']}; latency unit {unit:g} ms, loopback TCP to a service process; "
          f"median of {args.repeats} runs each way")
    async with LocalService() as service:
        reg = io_registry(service)
        print("\nfan-out of k independent I/O-bound calls (bound = k):")
        print(HEADER)
        out["fan_out"] = [await _compare(f"fan-out k={k}", io_calls(fan_out(k), unit), reg, args.repeats,
                                         {str(i): unit for i in range(1, k + 1)})
                          for k in range(2, args.kmax + 1)]
        print("\nmixed DAGs (bound = sum of latencies / critical path):")
        print(HEADER)
        out["mixed"] = [await _compare(name, io_calls(spec, unit), reg, args.repeats,
                                       {str(i): s[2] * unit for i, s in enumerate(spec, 1)})
                        for name, spec in MIXED.items()]
        print("\nvoice demo, real voice tool specs, simulated service latencies "
              f"({', '.join(f'{k} {v:g}' for k, v in VOICE_LATENCY_MS.items())} ms):")
        print(HEADER)
        vreg = voice_registry(service, load_specs("voice"))
        out["voice"] = []
        for name, calls in voice_plans().items():
            durations = {c.id: VOICE_LATENCY_MS[c.name] for c in calls}
            out["voice"].append(await _compare(name[:24], calls, vreg, args.repeats, durations))
        run = await DagExecutor(vreg).run(voice_plans()["... and text Anna both"])
        print("  timeline of '... and text Anna both':")
        _timeline(run)
        out["voice_speculative"] = await _speculative(vreg, args.repeats)
    print("\nscheduling overhead, zero-latency tools (DAG minus sequential, per call; "
          "fastest runs, as load only adds):")
    out["overhead"] = await _overhead(args.overhead_runs)
    rows = out["fan_out"] + out["mixed"] + out["voice"]
    worst = min(rows, key=lambda r: r["of_bound"])
    out["worst_of_bound"] = worst["of_bound"]
    out["worst_overhead_us"] = max(r["overhead_us_per_call"] for r in out["overhead"])
    print(f"\nworst speedup/bound: {worst['of_bound']:.2f} ({worst['plan']}), target >= 0.90: "
          f"{'meets' if worst['of_bound'] >= 0.9 else 'MISSES'}; worst overhead "
          f"{out['worst_overhead_us']:.1f} us/call, target <= 200 us: "
          f"{'meets' if out['worst_overhead_us'] <= 200 else 'MISSES'}")
    return out


def run(args: argparse.Namespace) -> int:
    from control.dag_executor import loop_factory
    from realtime.errors import ConfigError

    for name in ("latency_ms", "repeats", "kmax", "overhead_runs"):
        value = getattr(args, name)
        if not value > (1 if name == "kmax" else 0):
            raise ConfigError(f"--{name.replace('_', '-')}: expected a positive number"
                              f"{' >= 2' if name == 'kmax' else ''}, got {value!r}")
    factory = loop_factory() if args.loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        out = runner.run(_main(args))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
        print(f"figures written to {args.json}")
    return 0
