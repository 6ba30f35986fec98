"""--trace plumbing: the front-end's TraceRun, direct-call trace hooks, and
`rtagent bench trace` end to end on a tiny run (real loop, real collector)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from control.tools import Effect, SpeculationPolicy, ToolCall, ToolRegistry, ToolSpec
from demos.bench.trace import add_arguments, figures, measure
from demos.cli import main as cli_main
from realtime.messages import TraceEvent
from realtime.trace import read_chrome
from realtime.trace_bus import TRACE_ENV, BusTracer
from realtime.trace_figures import load_run
from realtime.trace_run import TraceRun
from speculation.trace_hooks import TracedInvoke, TracedRegistry

ROOT = Path(__file__).resolve().parents[2]


def test_trace_run_off_opens_nothing(tmp_path: Path) -> None:
    with TraceRun(None) as trace:
        assert not trace.enabled and trace.env() == {} and trace.collector is None
        trace.tracer.instant("x", "t")
        assert trace.tracer.events() == [] and trace.write() is None
    assert trace.written is None and list(tmp_path.iterdir()) == []
    assert trace.describe() is None


def test_trace_run_collects_a_node_and_writes_even_when_the_run_fails(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "run.trace.json"
    with pytest.raises(RuntimeError, match="the run broke"), TraceRun(path, run="t") as trace:
        env = trace.env()
        assert set(env) == {TRACE_ENV}
        with BusTracer.from_env("node", env=env) as bus:
            assert bus.connected
            bus.tracer.instant("hello", "main")
        trace.tracer.instant("front", "session")
        trace.tracer.add(TraceEvent(source="frontend", name="added", ts_ns=time.monotonic_ns(),
                                    track="supervisor"))  # as supervisor_events does
        raise RuntimeError("the run broke")
    assert trace.written == path
    assert trace.describe() == (f"wrote the trace {path} ({trace.summary()['events_kept']:,} "
                                f"events); `rtagent report {path}` makes a report of it")
    data = load_run([path])
    assert {(e["process"], e["name"]) for e in data.events} >= {
        ("node", "hello"), ("frontend", "front"), ("frontend", "added")}
    assert data.other["run"] == "t"


def test_a_front_end_killed_mid_trace_leaves_all_but_the_last_second(tmp_path: Path) -> None:
    path = tmp_path / "killed.trace.json"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from realtime.trace_bus import BusTracer
        from realtime.trace_run import TraceRun
        with TraceRun({str(path)!r}, run="killed") as trace:
            bus = BusTracer.from_env("node", env=trace.env())  # a node's events, over the bus
            print(bus.connected, flush=True)
            i = 0
            while True:
                i += 1
                bus.tracer.instant(f"n{{i}}", "main")
                trace.tracer.instant(f"f{{i}}", "session")  # the front-end's own
                time.sleep(0.01)
                if i % 10 == 0:
                    print(i, time.monotonic(), flush=True)
    """)
    made: list[tuple[int, float]] = []  # (events made so far, when)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "True"
            while not made or made[-1][1] - made[0][1] < 2.0:
                i, t = proc.stdout.readline().split()
                made.append((int(i), float(t)))
        finally:
            proc.kill()
            killed_at = time.monotonic()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    before = max(i for i, t in made if t <= killed_at - 1.0)
    names = {e["name"] for e in read_chrome(path)}
    expected = {f"{side}{k}" for side in "nf" for k in range(1, before + 1)}
    assert expected <= names, f"lost: {sorted(expected - names)[:10]}"
    html = tmp_path / "killed.html"
    assert cli_main(["report", str(path), "-o", str(html)]) == 0
    assert "ends early (its writer was killed)" in html.read_text()


def _registry() -> ToolRegistry:
    reg = ToolRegistry()

    async def get_time(city: str) -> dict[str, Any]:
        await asyncio.sleep(0.001)
        return {"city": city, "time": "12:00"}

    params = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    reg.register(ToolSpec("get_time", "time in a city", params, Effect.READ,
                          SpeculationPolicy.ALLOW), get_time)
    return reg


def test_direct_calls_without_speculation_are_traced_as_direct() -> None:
    from realtime.trace import Tracer

    tracer = Tracer("decision")
    invoke = TracedInvoke(TracedRegistry(_registry(), tracer), tracer).call
    result = asyncio.run(invoke(ToolCall("get_time", {"city": "Oslo"}, "1")))
    assert result.ok and not result.speculative
    spans = {e.track: e for e in tracer.events()}
    assert spans["calls"].name == "1 get_time" and spans["calls"].args["served"] == "direct"
    assert spans["tools"].args["kind"] == "direct" and spans["tools"].args["status"] == "ok"
    off = Tracer("decision", enabled=False)
    assert asyncio.run(TracedInvoke(_registry(), off).call(ToolCall("get_time", {"city": "Rome"}))).ok
    assert off.events() == []


def test_bench_figures_compare_only_episodes_every_run_finished() -> None:
    def run(late: list[float], tasks: list[float], sent: int) -> dict[str, Any]:
        return {"lateness_us": late, "exec_us": [100.0] * len(late), "ticks": len(late),
                "deadline_misses": 0, "overruns": 0, "task_s": tasks, "events_sent": sent,
                "events_dropped": 0, "hits": 1}

    out = figures({"off": [run([10.0, 20.0], [1.0, 2.0, 9.0], 0)],
                   "on": [run([20.0, 40.0], [2.0, 4.0], 50)]})
    off, on = out["configs"]["off"], out["configs"]["on"]
    assert off["episodes"] == on["episodes"] == 2  # off's third episode has no twin
    assert off["task_s_mean"] == 1.5 and on["task_s_mean"] == 3.0
    assert out["ratios_on_off"]["task_s_mean"] == 2.0
    assert out["ratios_on_off"]["lateness_p50_us"] == 2.0
    assert on["events_sent"] == 50 and off["events_sent"] == 0
    empty = figures({"off": [], "on": []})
    assert empty["ratios_on_off"]["lateness_p99_us"] is None


def test_bench_trace_tiny_run_traces_only_when_on(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    trace = tmp_path / "bench.trace.json"
    args = parser.parse_args(["--seconds", "1.5", "--rounds", "1", "--trace", str(trace)])
    seen: list[str] = []
    out = measure(args, on_run=lambda r: seen.append(r["config"]))
    assert seen == ["off", "on"]
    runs = {r["config"]: r for r in out["runs"]}
    assert not runs["off"]["traced"] and runs["off"]["events_sent"] == 0
    assert runs["on"]["traced"] and runs["on"]["connected"]
    assert runs["on"]["events_sent"] > 0 and runs["on"]["events_dropped"] == 0
    for config in ("off", "on"):
        s = out["configs"][config]
        assert s["ticks"] > 0 and s["lateness_p99_us"] is not None
    assert set(out["ratios_on_off"]) >= {"lateness_p50_us", "lateness_p99_us", "task_s_mean"}
    assert out["collector"]["received"] == {"bench r0": runs["on"]["events_sent"]}
    data = load_run([trace])
    ticks = data.spans(track="loop", name="tick")
    assert ticks and {t["process"] for t in ticks} == {"bench r0"}
    assert data.spans(track="speculation") or data.spans(track="calls")
    html = tmp_path / "bench.html"
    assert cli_main(["report", str(trace), "-o", str(html)]) == 0
    assert 'id="lateness"' in html.read_text()
    assert json.loads(json.dumps(out))["configs"]["on"]["ticks"] > 0  # plain JSON


def test_jitter_trace_has_every_tick_from_the_history(tmp_path: Path) -> None:
    trace, js = tmp_path / "jitter.trace.json", tmp_path / "jitter.json"
    assert cli_main(["jitter", "--seconds", "0.5", "--no-fifo", "--trace", str(trace),
                     "--json", str(js)]) == 0
    ticks = load_run([trace]).spans(track="loop", name="tick")
    (report,) = json.loads(js.read_text())["reports"]
    assert len(ticks) == report["ticks"] > 0
    assert all(t["process"] == "jitter" and "lateness_us" in t["args"] for t in ticks)


def test_a_node_loop_runs_with_its_start_up_heap_frozen_out_of_gc() -> None:
    import gc
    from types import SimpleNamespace

    from realtime.clock import MonotonicClock
    from realtime.loop import DeadlineLoop, LoopOptions
    from realtime.node_trace import run_traced
    from realtime.trace import Tracer

    node = SimpleNamespace(stopping=False)
    frozen: list[int] = []

    def tick(info: object) -> None:
        frozen.append(gc.get_freeze_count())
        node.stopping = len(frozen) >= 2

    loop: DeadlineLoop[None] = DeadlineLoop(MonotonicClock(), LoopOptions(hz=200), tick)
    try:
        run_traced(loop, Tracer("node", enabled=False), node)  # type: ignore[arg-type]
    finally:
        gc.unfreeze()
    assert len(frozen) == 2 and min(frozen) > 1000  # what was alive at start: out of the GC
