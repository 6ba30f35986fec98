"""The robot demo end to end: real processes, real ZeroMQ, real simulator, real model."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import zmq

from demos.cli import main as cli_main
from demos.robot_session import RobotSession, Step
from realtime import messages as m
from realtime.bus import Subscriber
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


class ArmObserver:
    """Listens to the commands and the measured joints of a session (receive times on
    this process's clock), on a thread of its own; once ``armed`` is set, kills -9 the
    decision process as soon as an arm joint moves faster than ``kill_over_rad_s``."""

    def __init__(self, session: RobotSession, kill_over_rad_s: float = 0.1) -> None:
        self.session, self.kill_over_rad_s = session, kill_over_rad_s
        self.armed = threading.Event()
        self.killed: list[tuple[int, int]] = []  # (pid, when)
        self.commands: list[int] = []  # receive times
        # (receive time, the sim's time, the fastest arm joint in rad/s)
        self.joints: list[tuple[int, float, float]] = []
        self.holds: list[int] = []  # receive times of the actuation's held targets
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while self.session.supervisor is None and not self._stop.is_set():
            time.sleep(0.01)
        if self.session.supervisor is None:
            return
        rd = self.session.supervisor.run_dir
        sub = Subscriber(rd.endpoint("commands"), ("cmd",))
        for endpoint, topic in (("sensors", b"joints"), ("targets", b"targets")):
            sub.sock.connect(rd.endpoint(endpoint))
            sub.sock.setsockopt(zmq.SUBSCRIBE, topic)
        try:
            while not self._stop.is_set():
                got = sub.recv(timeout_ms=50)
                if got is None:
                    continue
                now = time.monotonic_ns()
                if isinstance(got.message, m.Command):
                    self.commands.append(now)
                elif isinstance(got.message, m.JointState):
                    speed = max(map(abs, got.message.velocities_rad_s[:7]))
                    self.joints.append((now, got.message.sim_time_s, speed))
                    if self.armed.is_set() and not self.killed and speed > self.kill_over_rad_s:
                        self._kill_decision(now)
                elif isinstance(got.message, m.JointTargets) and got.message.held:
                    self.holds.append(now)
        finally:
            sub.close()

    def _kill_decision(self, now: int) -> None:
        sup = self.session.supervisor
        pid = sup.pid("decision") if sup is not None else None
        if pid:
            os.kill(pid, signal.SIGKILL)
            self.killed.append((pid, now))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def stopped_after_ms(self, killed_ns: int, still_rad_s: float = 0.05
                         ) -> tuple[float, float, float, float]:
        """How the arm stopped after ``killed_ns``: ms from the last command until the
        actuation's targets say held; then, in the simulator's time (a busy machine slows
        the sim, not its physics), ms until the arm is still (every joint under
        ``still_rad_s``, staying so for 1.5 s), and the median sim time between joint
        states then (what the sim's wakes resolve: 8 ms at 120 Hz, more when it falls
        behind); the fastest joint speed (rad/s) in the 100 ms before the kill."""
        last = max(t for t in self.commands if t <= killed_ns)
        before = max((v for t, _, v in self.joints
                      if killed_ns - 100_000_000 <= t <= killed_ns), default=0.0)
        held = next(t for t in self.holds if t > last)
        after = [(s, v) for t, s, v in self.joints if t > held]
        after = [(s, v) for s, v in after if s <= after[0][0] + 1.5]
        moving = [s for s, v in after if v >= still_rad_s]
        still = next(s for s, _ in after if not moving or s > moving[-1])
        gaps = sorted(b[0] - a[0] for a, b in zip(after, after[1:], strict=False))
        step_ms = gaps[len(gaps) // 2] * 1e3 if gaps else 0.0
        return (held - last) / 1e6, (still - after[0][0]) * 1e3, step_ms, before


def test_killing_decision_mid_task_holds_the_arm_and_the_restart_finishes_it() -> None:
    """The kill -9 comes while the arm moves; the actuation's watchdog (300 ms) trips at
    most one actuation tick (12.5 ms at 80 Hz) later (50 ms more allowed for a busy
    machine's scheduling) and holds where the arm is, which then stops within the arm's
    own stopping time (~40 ms of sim time from 0.8 rad/s; 100 ms allowed)."""
    observer: ArmObserver

    def on_status(status: dict) -> None:
        if status.get("skill"):  # the task runs: kill -9 the decision once the arm moves
            observer.armed.set()

    cfg = RobotDemoConfig(hz=16.0, watchdog_ms=300.0)
    session = RobotSession(cfg, [_task_step("move-0.5-0.0-0.3-s0")], turn_timeout_s=240,
                           on_status=on_status)
    observer = ArmObserver(session)
    try:
        result = session.run(timeout_s=500)
    finally:
        observer.close()
    killed = observer.killed
    assert killed, "the arm never started moving"
    tick_ms = 1000.0 / cfg.actuation_hz
    held_ms, still_ms, step_ms, moving_rad_s = observer.stopped_after_ms(killed[0][1])
    figures = (held_ms, still_ms, step_ms, moving_rad_s, result.supervisor and
               result.supervisor.processes["actuation"]["last_counters"])
    assert moving_rad_s > 0.05, f"the arm was not moving when the decision was killed {figures}"
    assert cfg.watchdog_ms <= held_ms <= cfg.watchdog_ms + tick_ms + 50.0, figures
    assert still_ms <= 100.0 + 2 * step_ms, figures  # (the sim's wakes are what we can see)
    assert result.error is None, result.error
    report = result.supervisor
    assert report is not None
    assert report.processes["decision"]["restarts"] == 1
    assert any("SIGKILL" in e for e in report.processes["decision"]["exits"])
    # The actuation process saw commands stop and held the arm (watchdog): the hold came
    # one watchdog period (and at most a tick) after the last command, as it measured too.
    counters = report.processes["actuation"]["last_counters"]
    assert counters.get("watchdog_ticks", 0) > 0 and counters["holds"] >= 1, counters
    assert cfg.watchdog_ms <= counters["hold_after_ms_max"] <= cfg.watchdog_ms + tick_ms + 50.0, \
        counters
    assert counters["stop_ms_max"] <= 100.0 + 3 * step_ms, counters  # (it reads them late too)
    assert counters["holds_never_still"] == 0, counters
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


def _children(pid: int) -> list[str]:
    """Command lines of ``pid``'s child processes."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    out.append(f.read().replace(b"\0", b" ").decode())
        except (OSError, ValueError, IndexError):
            continue
    return out


def test_the_decision_decodes_and_plans_in_child_processes_its_loop_fifo_where_permitted() -> None:
    """The decision loop's process keeps its GIL to the loop: the decoder and the tools'
    IK run in child processes, the loop thread is SCHED_FIFO and the agent's threads
    FIFO 1 where permitted, and its wait is an absolute clock_nanosleep."""
    from realtime.hardening import probe_fifo

    seen: list[list[str]] = []
    session: RobotSession

    def on_status(status: dict) -> None:
        if not seen and session.supervisor is not None:
            pid = session.supervisor.pid("decision")
            if pid:
                seen.append(_children(pid))

    session = RobotSession(RobotDemoConfig(hz=16.0, fifo=True),
                           [_task_step("point-yellow_cube-s0")], turn_timeout_s=120,
                           on_status=on_status)
    result = session.run(timeout_s=400)
    assert result.error is None, result.error
    assert seen and sum("spawn_main" in c for c in seen[0]) == 2, seen  # decoder, IK
    applied = {s["name"]: s["applied"] for s in result.stats["hardening"]}
    permitted, _ = probe_fifo(80)
    assert applied["fifo"] is permitted and applied["partners_fifo"] is permitted
    assert result.stats["wait"] == "clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)"
    (step,) = result.steps
    assert step.success, step.to_json()
