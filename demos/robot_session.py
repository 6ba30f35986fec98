"""Drive the robot demo's processes: start them, give instructions, collect figures.

:class:`RobotSession` starts the five processes under a supervisor (in the
calling thread, which must be the main thread for Ctrl-C handling) and runs a
script of instructions on a worker thread: for each, it asks the decision
process to act, follows its status, waits for the turn to finish and, for a
task from the suite or a step with an expected outcome (``--expect``), asks
the simulator whether it succeeded. The demo command and ``rtagent bench
robot`` both use it.

Tracing: pass ``env=trace.env()`` and ``tracer=trace.tracer`` of a
:class:`realtime.trace_run.TraceRun`; the processes then trace over the bus and
the session adds one span per step (track ``session``) from the front-end.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realtime import messages as m
from realtime.bus import BusOptions, LatestValueSubscriber, Subscriber
from realtime.bus_rpc import RequestClient
from realtime.errors import RtAgentError
from realtime.node_trace import supervisor_events
from realtime.supervisor import ProcessSpec, Supervisor, SupervisorReport, python_module
from realtime.trace import Tracer
from sim_envs.tabletop.config import RobotDemoConfig

# Each process is ``python -m MODULE NAME CONFIG_JSON``.
NODE_MODULES = {"sim": "sim_envs.tabletop.nodes", "camera": "sim_envs.tabletop.nodes",
                "perception": "sim_envs.tabletop.nodes",
                "actuation": "sim_envs.tabletop.nodes", "decision": "control.robot_node"}


@dataclass
class Step:
    """One instruction of a session, and, for a suite task, its id and seed.

    ``expect``: an outcome predicate (:mod:`sim_envs.tabletop.predicates`) the simulator
    checks when the instruction is done (a task is checked by its own predicate)."""

    instruction: str
    task_id: str | None = None
    seed: int | None = None
    expect: str | None = None


@dataclass
class StepResult:
    step: Step
    ok: bool
    success: bool | None  # the simulator's verdict for a task (None: no check)
    task_s: float
    turn: dict[str, Any] | None
    error: str | None = None
    ground_truth: dict[str, Any] | None = None  # the simulator's state when checked
    verdict: dict[str, Any] | None = None  # the predicate and each term's value

    def to_json(self) -> dict[str, Any]:
        return {"instruction": self.step.instruction, "task": self.step.task_id,
                "seed": self.step.seed, "ok": self.ok, "success": self.success,
                "expect": self.verdict, "task_s": round(self.task_s, 3), "turn": self.turn,
                "error": self.error, "ground_truth": self.ground_truth}


@dataclass
class SessionResult:
    steps: list[StepResult] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    supervisor: SupervisorReport | None = None
    frames: list[Any] = field(default_factory=list)
    error: str | None = None
    world: dict[str, Any] | None = None  # the simulator's state at the end (WorldTruth)


class RobotSession:
    """Runs ``steps`` on the real processes; ``on_status`` sees live status dicts."""

    def __init__(self, cfg: RobotDemoConfig, steps: Sequence[Step], *,
                 turn_timeout_s: float = 90.0, settle_s: float = 1.0, record_every_s: float = 0.0,
                 on_status: Callable[[dict[str, Any]], None] | None = None,
                 on_step: Callable[[StepResult], None] | None = None,
                 env: Mapping[str, str] | None = None, tracer: Tracer | None = None) -> None:
        self.cfg = cfg
        self.env = dict(env or {})  # extra environment of the processes (e.g. tracing)
        self.tracer = tracer or Tracer("frontend", enabled=False)
        self.steps = list(steps)
        self.turn_timeout_s = turn_timeout_s
        self.settle_s = settle_s
        self.record_every_s = record_every_s
        self.on_status = on_status or (lambda s: None)
        self.on_step = on_step or (lambda r: None)
        self.result = SessionResult()
        self._done = threading.Event()
        self._abort = threading.Event()
        self.supervisor: Supervisor | None = None
        self.resubmitted = 0  # instructions given again after a decision restart
        # The next free instruction, submitted while the current one runs (the agent
        # queues it and may decode it early): (turn id, decision restarts at submit).
        self._queued: tuple[int, int] | None = None

    def run(self, timeout_s: float | None = None) -> SessionResult:
        specs = [ProcessSpec(name, python_module(module, name, self.cfg.to_json()),
                             env=self.env, startup_grace_ms=120_000, heartbeat_timeout_ms=5000,
                             # a turn (decode + its calls) past this is a hung agent
                             turn_timeout_ms=180_000 if name == "decision" else None)
                 for name, module in NODE_MODULES.items()]
        t0_ns = time.monotonic_ns()  # the supervisor's report times count from about here
        self.supervisor = Supervisor(specs)
        worker = threading.Thread(target=self._script, name="robot-session", daemon=True)
        worker.start()
        try:
            self.result.supervisor = self.supervisor.run(until=self._done.is_set, timeout_s=timeout_s)
        finally:
            self._abort.set()
            worker.join(timeout=10)
            supervisor_events(self.tracer, self.result.supervisor, t0_ns)
        if not self._done.is_set() and self.result.error is None:
            self.result.error = f"stopped before the script ended ({self.result.supervisor.stopped_because})"
        return self.result

    # -- the script, on a worker thread ---------------------------------------------------
    def _script(self) -> None:
        assert self.supervisor is not None
        rd = self.supervisor.run_dir
        decision = RequestClient(rd.endpoint("decision_ctl"), source="cli")
        sim = RequestClient(rd.endpoint("sim_ctl"), source="cli")
        events = Subscriber(rd.endpoint("events"), ("turn", "status"), options=BusOptions(rcvhwm=1024))
        camera = LatestValueSubscriber(rd.endpoint("camera"), ("camera",))
        try:
            self._ask(decision, "stats", {}, wait_s=180)  # up (the model is loaded)
            for i, step in enumerate(self.steps):
                if self._abort.is_set():
                    return
                start_ns = time.monotonic_ns()
                after = self.steps[i + 1] if i + 1 < len(self.steps) else None
                queue_next = after if after is not None and after.seed is None else None
                result = self._run_step(step, decision, sim, events, camera, queue_next)
                self._trace_step(result, start_ns)
                self.result.steps.append(result)
                self.on_step(result)
            self.result.stats = self._ask(decision, "stats", {}, wait_s=10)
            self.result.world = self._ask(sim, "ground_truth", {}, wait_s=10)
        except RtAgentError as exc:
            self.result.error = str(exc)
        finally:
            for sock in (decision, sim, events, camera):
                sock.close()
            self._done.set()

    def _trace_step(self, r: StepResult, start_ns: int) -> None:
        if self.tracer.enabled:
            label = f"{self.cfg.trace_label}: " if self.cfg.trace_label else ""
            self.tracer.complete(f"{label}{r.step.task_id or r.step.instruction[:40]}", "session",
                                 start_ns, time.monotonic_ns(), "session",
                                 instruction=r.step.instruction[:80], ok=r.ok,
                                 success=r.success is True, task_s=round(r.task_s, 3),
                                 error=(r.error or "")[:120])

    def _ask(self, client: RequestClient, name: str, args: dict[str, Any], wait_s: float) -> Any:
        """A request, retried until answered ok or ``wait_s`` passes."""
        deadline = time.monotonic() + wait_s
        error = "no answer"
        while time.monotonic() < deadline and not self._abort.is_set():
            try:
                reply = client.call(m.ToolRequest(name=name, arguments_json=json.dumps(args)),
                                    timeout_ms=2000)
            except RtAgentError as exc:  # not up yet, or busy: try again
                error = str(exc)
                continue
            if reply.ok:
                return json.loads(reply.value_json)
            error = reply.error
            time.sleep(0.2)
        raise RtAgentError(f"{name!r} got no answer in {wait_s:.0f} s: {error}")

    def _run_step(self, step: Step, decision: RequestClient, sim: RequestClient,
                  events: Subscriber, camera: LatestValueSubscriber,
                  queue_next: Step | None = None) -> StepResult:
        if step.seed is not None:
            self._ask(sim, "reset", {"seed": step.seed}, wait_s=10)  # (starts the step)
            time.sleep(self.settle_s)  # perception sees the new scene
        assert self.supervisor is not None
        t0 = time.monotonic()
        restarts = self.supervisor.restarts("decision")
        queued, self._queued = self._queued, None
        if queued is not None and queued[1] == restarts:  # submitted during the last step
            turn_id = queued[0]  # (its step started when the last one was checked)
        else:
            if step.seed is None:
                self._ask(sim, "begin_step", {}, wait_s=10)  # moved() counts from here
            turn_id = self._ask(decision, "instruct", {"text": step.instruction}, wait_s=30)["turn"]
        if queue_next is not None:
            nxt = self._ask(decision, "instruct", {"text": queue_next.instruction}, wait_s=30)
            self._queued = (nxt["turn"], restarts)
        turn = None
        next_frame = 0.0
        while turn is None and time.monotonic() - t0 < self.turn_timeout_s:
            if self._abort.is_set():
                return StepResult(step, False, None, time.monotonic() - t0, None, "aborted")
            if self.supervisor.restarts("decision") != restarts:
                # The decision process died and was restarted: its turn died with it.
                # Ask the new one (it starts from the latest world state) to carry on.
                restarts = self.supervisor.restarts("decision")
                self.resubmitted += 1
                self._queued = None  # died with it too: the next step submits its own
                turn_id = self._ask(decision, "instruct", {"text": step.instruction},
                                    wait_s=180)["turn"]
            got = events.recv(timeout_ms=50)
            if got is not None and isinstance(got.message, m.LogEvent):
                data = json.loads(got.message.text)
                if got.message.logger == "turn" and data.get("id") == turn_id:
                    turn = data
                elif got.message.logger == "status":
                    self.on_status({**data, "instruction": step.instruction,
                                    "elapsed_s": time.monotonic() - t0})
            if self.record_every_s and time.monotonic() >= next_frame:
                frame = camera.read_latest(max_age_ms=1000, topic="camera")
                if frame is not None and frame.message.rgb is not None:  # type: ignore[attr-defined]
                    self.result.frames.append(frame.message.rgb.copy())  # type: ignore[attr-defined]
                    next_frame = time.monotonic() + self.record_every_s
        task_s = time.monotonic() - t0
        if turn is None:
            self._ask(decision, "cancel", {"reason": "timed out"}, wait_s=5)
            if self._queued is not None:  # the next one runs now
                self._ask(sim, "begin_step", {}, wait_s=10)
            return StepResult(step, False, None, task_s, None,
                              f"no result within {self.turn_timeout_s:.0f} s")
        return self._check(step, sim, StepResult(step, bool(turn["ok"]), None, task_s, turn,
                                                 turn.get("error")))

    def _check(self, step: Step, sim: RequestClient, result: StepResult) -> StepResult:
        """The simulator's verdict on the step. With the next instruction queued (it may
        start moving the moment this turn ends) the check is now, and the same instant
        starts the next step; otherwise after ``settle_s`` (the cube comes to rest)."""
        overlapped = self._queued is not None
        if step.task_id is None and step.expect is None:
            if overlapped:
                self._ask(sim, "begin_step", {}, wait_s=10)
            return result
        if not overlapped:
            time.sleep(self.settle_s)
        request, args = (("check_task", {"task_id": step.task_id}) if step.task_id is not None
                         else ("check", {"predicate": step.expect}))
        reply = self._ask(sim, request, {**args, "begin_step": overlapped}, wait_s=10)
        result.success = bool(reply["success"])
        result.verdict, result.ground_truth = reply["verdict"], reply["world"]
        return result


def save_gif(frames: Sequence[Any], path: str | Path, fps: float = 5.0) -> Path:
    """Write camera frames (H, W, 3 uint8) as an animated GIF."""
    from PIL import Image

    if not frames:
        raise RtAgentError("no camera frames were recorded; nothing to write")
    images = [Image.fromarray(f) for f in frames]
    path = Path(path)
    images[0].save(path, save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0)
    return path
