"""The robot demo end to end: real processes, real ZeroMQ, real simulator, real model."""

from __future__ import annotations

import os
import signal

import pytest

from demos.robot_nodes import RobotDemoConfig
from demos.robot_session import RobotSession, Step
from sim_envs.tasks import get_task

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
