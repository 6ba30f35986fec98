"""`rtagent report`: a trace from real parts -> HTML with plots, checked in a real browser.

The trace comes from a real DeadlineLoop on the real clock (~1 s at 16 Hz), a
real SpeculativeExecutor (patterns mined from the voice workload) under a real
DagExecutor on uvloop, and the voice tool specs with I/O-bound backends; the
slow test adds the real llama.cpp decoder through the real Agent. The HTML is
opened in Debian's chromium (headless): the DOM must hold the figures and the
table, and a screenshot is taken (tests skip, saying why, without chromium).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from control.dag_executor import DagExecutor, loop_factory
from control.tools import ToolCall, ToolRegistry, load_tool_specs
from demos.cli import main as cli_main
from demos.report import render_html
from realtime.clock import MonotonicClock
from realtime.loop import DeadlineLoop, LoopOptions, TickInfo
from realtime.loop_trace import TickTracer
from realtime.trace import Tracer, write_chrome
from realtime.trace_figures import load_run, speculative_outcomes
from speculation.executor import SpeculationOptions, SpeculativeExecutor
from speculation.patterns import PatternLibrary
from speculation.predictors import PatternPredictor
from speculation.trace_hooks import TracedRegistry, TracedSpeculation
from speculation.workloads import voice_episodes

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def voice_registry(latency_s: float = 0.12) -> ToolRegistry:
    """The voice tool specs, each backend an I/O-bound call taking ``latency_s``."""
    reg = ToolRegistry()
    for spec in load_tool_specs(json.loads((ROOT / "audio/voice_tools.json").read_text())):
        async def fn(_name: str = spec.name, **kw: Any) -> dict[str, Any]:
            await asyncio.sleep(latency_s)
            return {"tool": _name, **kw}
        reg.register(spec, fn)
    return reg


class AgentLoop:
    """An event loop on its own thread (as in control.agent), for executors."""

    def __init__(self) -> None:
        self.loop = loop_factory()()
        self.thread = threading.Thread(target=self.loop.run_forever, name="agent", daemon=True)
        self.thread.start()

    def submit(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def traced_speculation(tracer: Tracer, reg: ToolRegistry) -> TracedSpeculation:
    lib = PatternLibrary()
    lib.update(voice_episodes(200, seed=1))
    spec = SpeculativeExecutor(TracedRegistry(reg, tracer), PatternPredictor(lib),
                               SpeculationOptions(top_k=2))
    return TracedSpeculation(spec, tracer)


def record_loop_and_dag(path: Path) -> dict[str, Any]:
    """~1 s of a 16 Hz loop; at tick 2 a partial transcript is observed (speculation
    starts), at tick 6 the final plan runs through the DAG executor."""
    tracer = Tracer("decision")
    reg = voice_registry()
    agent = AgentLoop()
    spec = traced_speculation(tracer, reg)
    dag = DagExecutor(reg, invoke=spec.call)
    plan = [ToolCall("get_weather", {"city": "Oslo"}, "1"), ToolCall("get_time", {"city": "Oslo"}, "2")]
    state: dict[str, Any] = {}

    async def observe() -> None:
        spec.observe({"topic": "weather", "city": "Oslo", "home_city": "Paris"})

    def tick(info: TickInfo) -> str:
        if info.seq == 2:
            tracer.instant("partial transcript", "agent", text="weather in Oslo")
            agent.submit(observe())
        if info.seq == 6:
            tracer.instant("final transcript", "agent", text="weather and time in Oslo")
            state["run"] = agent.submit(dag.run(plan))
        fut = state.get("run")
        return "answer" if fut is not None and fut.done() else "hold"

    loop = DeadlineLoop(MonotonicClock(spin_us=500), LoopOptions(hz=16), tick)
    ticks = TickTracer(loop, tracer).attach()
    try:
        loop.run(seconds=1.0)
        run = state["run"].result(timeout=30)
        run.trace(tracer, track="dag")
        agent.submit(spec.executor.aclose()).result(timeout=10)
        spec.record_metrics()  # the final counters, waste included
    finally:
        agent.close()
    ticks.finish()
    write_chrome(path, tracer.events(), run="test_report")
    return {"run": run, "metrics": spec.executor.metrics, "ticks": loop.summarize().ticks}


def chromium(args: list[str], timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; setup.sh does it)")
    profile = tempfile.mkdtemp(prefix="rtagent-chromium-")
    try:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout_s, check=False,
            env={**os.environ, "HOME": profile})
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def check_in_browser(html_path: Path, shot: Path) -> str:
    """The DOM chromium built from the page; also leaves a screenshot at ``shot``."""
    dom = chromium(["--dump-dom", html_path.resolve().as_uri()])
    assert dom.returncode == 0, dom.stderr[-2000:]
    res = chromium([f"--screenshot={shot}", "--window-size=1200,2000",
                    "--hide-scrollbars", html_path.resolve().as_uri()])
    assert res.returncode == 0 and shot.stat().st_size > 10_000, res.stderr[-2000:]
    return dom.stdout


def test_loop_dag_and_speculation_trace_renders_in_a_browser(tmp_path: Path) -> None:
    trace = tmp_path / "run.trace.json"
    got = record_loop_and_dag(trace)
    assert got["run"].ok and got["ticks"] >= 14

    data = load_run([trace])
    ticks = data.spans(track="loop", name="tick")
    assert len(ticks) == got["ticks"]
    assert all("lateness_us" in t["args"] and "miss" in t["args"] for t in ticks)
    calls = {c["name"]: c["args"] for c in data.spans(track="calls")}
    # The predictor launched get_weather(Oslo) from the partial transcript: the
    # real call was served from it (finished or joined); get_time ran directly
    # or from a prediction made when get_weather was issued.
    assert calls["1 get_weather"]["served"] in ("speculation", "joined")
    assert got["metrics"].served >= 1 and got["metrics"].launched >= 1
    outcomes = speculative_outcomes(data)
    assert "served" in outcomes.values() or "joined" in outcomes.values()
    spec_runs = data.spans(track="speculation")
    weather = [s for s in spec_runs if s["name"] == "get_weather"]
    assert weather and weather[0]["args"]["kind"] == "speculative"
    assert weather[0]["ts"] < calls_start(data, "1 get_weather")  # ran ahead of the call

    out = tmp_path / "report.html"
    assert cli_main(["report", str(trace), "-o", str(out)]) == 0
    page = out.read_text()
    assert "http://" not in page and "https://" not in page  # self-contained
    dom = check_in_browser(out, tmp_path / "report.png")
    for fig in ("lateness", "timeline"):
        assert f'id="{fig}"' in dom and "data:image/png;base64," in dom
    assert 'id="figures"' in dom and "decision loop: ticks" in dom
    assert "speculative launches / hits / joins" in dom
    shot = os.environ.get("RTAGENT_REPORT_SHOT")
    if shot:  # keep the screenshot to look at
        shutil.copy(tmp_path / "report.png", shot)
        shutil.copy(out, Path(shot).with_suffix(".html"))


def calls_start(data: Any, name: str) -> float:
    return next(c["ts"] for c in data.spans(track="calls") if c["name"] == name)


def test_jitter_json_alone_gives_the_lateness_plot(tmp_path: Path) -> None:
    from realtime.jitter import report_from_history, save_json

    loop = DeadlineLoop(MonotonicClock(spin_us=0), LoopOptions(hz=100), lambda info: None)
    summary = loop.run(ticks=30)
    save_json(tmp_path / "jitter.json", [report_from_history(loop.history, summary)])
    doc, info = render_html([tmp_path / "jitter.json"])
    assert info["figures"] == ["lateness"]
    assert any(k == "rtagent loop: ticks" and v == "30" for k, v in info["rows"])
    assert 'id="timeline"' not in doc


def test_unreadable_inputs_are_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.json").write_text('{"hello": 1}')
    assert cli_main(["report", str(tmp_path / "x.json")]) == 1
    assert "expected a Chrome trace" in capsys.readouterr().err
    assert cli_main(["report", str(tmp_path / "missing.json")]) == 1
    assert "no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_real_decoder_turn_with_speculation_on_the_timeline(tmp_path: Path) -> None:
    """The real Agent + llama.cpp decoder: speculation launched from the partial
    transcript runs while the model decodes; the report draws that turn."""
    from control.agent import Agent
    from models.decoder import DecodeContext
    from models.factory import make_decoder
    from models.resolve import resolve_model

    tracer = Tracer("decision")
    reg = voice_registry()
    spec = traced_speculation(tracer, reg)
    decoder = make_decoder("simpletool", resolve_model())
    agent = Agent(decoder, reg, lambda text, history: DecodeContext.from_request(text),
                  invoke=spec.call, tracer=tracer)
    try:
        agent.run_on_loop(lambda: spec.observe({"topic": "weather", "city": "Oslo",
                                                "home_city": "Paris"}))
        agent.submit("what's the weather in Oslo?")
        (turn,) = agent.wait(600)
    finally:
        agent.close()
        decoder.close()
    assert turn.ok, turn.error
    trace = write_chrome(tmp_path / "agent.trace.json", tracer.events())
    data = load_run([trace])
    (decode,) = data.spans(track="decoder", name="decode")
    spec_runs = [s for s in data.spans(track="speculation") if s["name"] == "get_weather"]
    assert spec_runs and spec_runs[0]["ts"] < decode["ts"] + decode["dur"]  # overlapped decoding
    (call,) = data.spans(track="calls")
    assert call["args"]["served"] in ("speculation", "joined")
    doc, info = render_html([trace], episode=1)
    assert info["figures"] == ["timeline", "decoder"]
    out = tmp_path / "agent.html"
    out.write_text(doc)
    dom = check_in_browser(out, tmp_path / "agent.png")
    assert 'id="decoder"' in dom and "decode latency p50 / p95 / max" in dom
