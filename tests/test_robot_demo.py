"""The robot demo end to end: real processes, real ZeroMQ, real simulator, real model."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from demos.cli import main as cli_main
from demos.robot_session import RobotSession, Step
from realtime.trace_figures import load_run
from sim_envs.tabletop.config import RobotDemoConfig
from sim_envs.tabletop.tasks import get_task

pytestmark = pytest.mark.slow


def _task_step(task_id: str) -> Step:
    task = get_task(task_id)
    return Step(task.instruction, task.id, task.seed)


def test_an_instruction_is_carried_out_and_checked_by_the_simulator() -> None:
    session = RobotSession(RobotDemoConfig(hz=16.0), [_task_step("point-yellow_cube-s0")],
                           turn_timeout_s=120)
    result = session.run(timeout_s=400)
    assert result.error is None, result.error
    (step,) = result.steps
    assert step.turn is not None and [c["name"] for c in step.turn["calls"]] == ["point_at"]
    assert step.success, step.to_json()
    loop = result.stats["loop"]
    assert loop["ticks"] > 0 and loop["hz"] == 16.0
    report = result.supervisor
    assert report is not None
    assert all(p["restarts"] == 0 for p in report.processes.values()), report.processes


def test_killing_decision_mid_task_holds_the_arm_and_the_restart_finishes_it() -> None:
    killed: list[int] = []
    session: RobotSession

    def on_status(status: dict) -> None:
        # Kill -9 the decision process once the arm is moving for the task.
        if not killed and status.get("skill"):
            pid = session.supervisor.pid("decision") if session.supervisor else None
            if pid:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    session = RobotSession(RobotDemoConfig(hz=16.0, watchdog_ms=300.0),
                           [_task_step("move-0.5-0.0-0.3-s0")], turn_timeout_s=240,
                           on_status=on_status)
    result = session.run(timeout_s=500)
    assert killed, "the arm never started moving"
    assert result.error is None, result.error
    report = result.supervisor
    assert report is not None
    assert report.processes["decision"]["restarts"] == 1
    assert any("SIGKILL" in e for e in report.processes["decision"]["exits"])
    # The actuation process saw commands stop and held the arm (watchdog) ...
    assert report.processes["actuation"]["last_counters"].get("watchdog_ticks", 0) > 0
    # ... and the restarted decision process finished the task.
    (step,) = result.steps
    assert session.resubmitted == 1
    assert step.success, step.to_json()


def test_trace_of_a_task_has_every_process_and_renders_a_report(tmp_path: Path) -> None:
    """`rtagent robot --trace`: ticks, messages, decodes and tool calls from the four
    processes in one Chrome trace, which `rtagent report` turns into HTML."""
    trace, summary = tmp_path / "robot.trace.json", tmp_path / "robot.json"
    code = cli_main(["robot", "--task", "point-yellow_cube-s0", "--trace", str(trace),
                     "--json", str(summary), "--turn-timeout-s", "120"])
    figures = json.loads(summary.read_text())
    assert code == 0 and figures["ok"] == 1, figures  # carried out (success: the test above)
    data = load_run([trace])
    assert {"sim", "perception", "actuation", "decision", "frontend"} <= {
        e["process"] for e in data.events}
    ticks = {e["process"] for e in data.spans(track="loop", name="tick")}
    assert ticks == {"sim", "actuation", "decision"}
    assert all("lateness_us" in t["args"] and "miss" in t["args"]
               for t in data.spans(track="loop", name="tick"))
    hops = {(e["process"], e["name"]) for e in data.spans(track="bus")}
    assert {("perception", "camera"), ("decision", "world"), ("actuation", "cmd")} <= hops
    assert all(e["dur"] >= 0 for e in data.spans(track="bus"))
    (decode,) = data.spans(track="decoder", name="decode")
    assert decode["args"]["calls"] == 1 and decode["args"]["prompt_tokens"] > 0
    assert decode["args"]["forward_passes"] > 0
    # The agent's call, and the motion's plan it fetched the same way (speculation/live.py).
    calls = {c["name"]: c for c in data.spans(track="calls")}
    assert set(calls) == {"1 point_at", "plan_for_point_at"}, calls
    call = calls["1 point_at"]
    assert call["process"] == "decision"
    assert call["args"]["served"] in ("speculation", "joined", "direct")
    runs = data.spans(track="tools") + data.spans(track="speculation")
    assert runs and all(r["args"]["kind"] in ("direct", "speculative", "dry-run") for r in runs)
    if call["args"]["served"] == "direct":  # the call itself ran as a direct tool run
        assert any(r["name"] == "point_at" and r["args"]["kind"] == "direct" for r in runs)
    assert data.last_counter("speculation") is not None
    assert [t["name"] for t in data.spans(track="agent")] == ["turn 1"]
    (step,) = data.spans(track="session")
    assert step["process"] == "frontend" and step["args"]["ok"] is True
    assert data.other["trace_senders"]["decision"]["dropped"] == 0
    supervised = {e["name"] for e in data.events if e["track"] == "supervisor"}
    assert {f"{p}: first heartbeat" for p in ("sim", "perception", "actuation", "decision")
            } <= supervised

    html = tmp_path / "robot.html"
    assert cli_main(["report", str(trace), "-o", str(html)]) == 0
    page = html.read_text()
    for fig in ("lateness", "timeline", "decoder"):
        assert f'id="{fig}"' in page
    assert "decision loop: ticks" in page and "tool calls (direct / from speculation" in page
