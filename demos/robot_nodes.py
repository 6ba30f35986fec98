"""The robot demo's four processes, linked by ZeroMQ in the run directory.

::

  sim ── PUB sensors: joints (every physics wake), camera (camera_hz) ──► perception, actuation
  perception ── PUB world (per camera frame) ──► decision
  decision ── PUB commands (every tick of the deadline loop) ──► actuation
  actuation ── PUB targets (actuation_hz) ──► sim
  decision / sim ── ReplyServer *_ctl: instructions, stats, task checks, resets

Each process is ``python -m demos.robot_nodes NAME CONFIG_JSON``, started and
watched by :class:`realtime.supervisor.Supervisor` (heartbeats, restarts).
Processes never share memory; a restarted one picks up from the latest messages.

Tracing (``--trace PATH``): when the front-end sets ``RTAGENT_TRACE_ENDPOINT``
(:meth:`realtime.trace_run.TraceRun.env`), every process traces over the bus
(:func:`node_tracer`): loop ticks (sim, actuation, decision), sim renders and
resets, perception frames, message hops (``bus`` track: a span from the
sender's ``t_ns`` to the receiver's, for camera frames, world states and fresh
commands), watchdog trips; the decision process adds the agent's turns,
decodes, tool calls and speculation. Without the variable no tracer is enabled
and no socket is opened.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from realtime import messages as m
from realtime.bus import LatestValueSubscriber, Publisher
from realtime.bus_rpc import ReplyServer
from realtime.clock import MonotonicClock
from realtime.loop import DeadlineLoop, LoopOptions, TickInfo
from realtime.node import Node, node_main
from realtime.node_trace import hop, node_tracer, run_traced

log = logging.getLogger("rtagent.robot")

WORLD_MAX_AGE_MS = 500.0  # older world states are not acted on
JOINTS_MAX_AGE_MS = 200.0


@dataclass(frozen=True)
class RobotDemoConfig:
    """Everything the four processes need; sent to each as JSON."""

    seed: int = 0
    hz: float = 16.0
    camera_hz: float = 16.0
    physics_wake_hz: float = 120.0  # the sim wakes this often and steps 240/wake_hz steps
    actuation_hz: float = 80.0
    watchdog_ms: float = 300.0
    gui: bool = False
    decoder: str = "simpletool"
    model: str | None = None
    lora: str | None = "default"  # "default": the shipped adapter if present; None: none
    # One: the sim holds a core, and the demos' threads sleep at each barrier, so a second
    # decoder thread costs more waking than it computes (20 tokens: 61 vs 70 ms here).
    decoder_threads: int = 1
    speculation: bool = True
    foresight: bool = True  # decode the next queued instruction while a motion runs
    fifo: bool = False
    trace_label: str = ""  # with tracing on: process names become "LABEL/sim", ...
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RobotDemoConfig:
        return cls(**json.loads(text))


def _reply(value: Any) -> m.ToolReply:
    return m.ToolReply(ok=True, value_json=json.dumps(value))


def _fail(error: str) -> m.ToolReply:
    return m.ToolReply(ok=False, error=error)


# --------------------------------------------------------------------------- sim
def run_sim(cfg: RobotDemoConfig, node: Node) -> None:
    """Physics in real time at 240 Hz; publishes joints and camera; applies joint targets."""
    from demos.robot_wire import frame_to_msg, joints_to_msg, targets_from_msg
    from sim_envs.scene import BIN_ID, CUBE_IDS, SceneOptions, TabletopScene
    from sim_envs.tasks import get_task

    tracer = node_tracer(node, "sim", cfg.trace_label)
    rd = node.run_dir
    sensors = node.own(Publisher(rd.endpoint("sensors"), source="sim"))
    targets = node.own(LatestValueSubscriber(rd.endpoint("targets"), ("targets",),
                                             types=(m.JointTargets,)))
    ctl = node.own(ReplyServer(rd.endpoint("sim_ctl"), source="sim"))
    scene = node.own(TabletopScene(SceneOptions(gui=cfg.gui)))
    scene.reset(cfg.seed)
    steps = max(1, round(scene.options.physics_hz / cfg.physics_wake_hz))
    frame_every = max(1, round(cfg.physics_wake_hz / cfg.camera_hz))

    def ground_truth() -> dict[str, Any]:
        """The simulator's own state, for checks and tests (decision never sees it)."""
        return {"grasp_point": [round(float(v), 4) for v in scene.grasp_point()],
                "objects": {n: [round(float(v), 4) for v in scene.object_position(n)]
                            for n in (*CUBE_IDS, BIN_ID)}}

    def handle(req: m.ToolRequest) -> m.ToolReply:
        args = json.loads(req.arguments_json or "{}")
        if req.name == "reset":
            with tracer.span("reset", "sim", seed=int(args.get("seed", cfg.seed))):
                scene.reset(int(args.get("seed", cfg.seed)))
            return _reply({"seed": args.get("seed", cfg.seed)})
        if req.name == "check_task":
            return _reply({"success": bool(get_task(args["task_id"]).success(scene)),
                           **ground_truth()})
        if req.name == "ground_truth":
            return _reply(ground_truth())
        return _fail(f"unknown sim request {req.name!r}")

    def tick(info: TickInfo) -> None:
        got = targets.read_latest(max_age_ms=cfg.watchdog_ms, topic="targets")
        if got is not None:
            q, width = targets_from_msg(got.message)  # type: ignore[arg-type]
            if len(q) == 7:
                scene.set_joint_targets(q, width)
        scene.step(steps)
        sensors.publish(joints_to_msg(scene.joint_state()), topic="joints")
        if info.seq % frame_every == 0:
            with tracer.span("render", "sim"):
                frame = frame_to_msg(scene.render())
            sensors.publish(frame, topic="camera")
        ctl.serve_once(handle, timeout_ms=0)
        node.beat()

    # gc_min_slack_ms: the tick tracer's hook runs between ticks when 2 ms are left.
    loop = DeadlineLoop(MonotonicClock(), LoopOptions(hz=cfg.physics_wake_hz,
                                                      gc_between_ticks=False,
                                                      gc_min_slack_ms=2.0), tick)
    run_traced(loop, tracer, node)


# --------------------------------------------------------------------------- perception
def run_perception(cfg: RobotDemoConfig, node: Node) -> None:
    """Camera frames + joint states -> world state, computed from the images."""
    from demos.robot_wire import frame_from_msg, joints_from_msg, world_to_msg
    from sim_envs.kinematics import PandaKinematics
    from sim_envs.perception import Perception, PerceptionOptions

    tracer = node_tracer(node, "perception", cfg.trace_label)
    rd = node.run_dir
    sensors = node.own(LatestValueSubscriber(rd.endpoint("sensors"), ("joints", "camera")))
    world_pub = node.own(Publisher(rd.endpoint("world"), source="perception"))
    perception = Perception(PerceptionOptions(), node.own(PandaKinematics()))
    while not node.stopping:
        frame = sensors.wait_latest(max_age_ms=1000, timeout_ms=100, topic="camera")
        joints = sensors.read_latest(max_age_ms=JOINTS_MAX_AGE_MS, topic="joints")
        node.beat()
        if frame is None or joints is None:
            continue
        start = time.monotonic_ns()
        if tracer.enabled:
            hop(tracer, frame, "camera")
        try:
            world = perception.update(frame_from_msg(frame.message),  # type: ignore[arg-type]
                                      joints_from_msg(joints.message))  # type: ignore[arg-type]
        except ValueError as exc:  # a malformed frame is dropped, never a crash
            log.warning("perception: dropped a frame: %s", exc)
            tracer.instant("dropped frame", "perception", error=str(exc)[:120])
            continue
        world_pub.publish(world_to_msg(world), topic="world")
        if tracer.enabled:
            tracer.complete("perceive", "perception", start, time.monotonic_ns(), "perception",
                            frame_seq=frame.message.seq, objects=len(world.visible()))


# --------------------------------------------------------------------------- actuation
def run_actuation(cfg: RobotDemoConfig, node: Node) -> None:
    """Commands -> IK on its own kinematic model -> limited joint targets; watchdog."""
    from demos.robot_wire import command_from_msg, joints_from_msg, targets_to_msg
    from sim_envs.actuation import Actuator, ActuatorOptions
    from sim_envs.kinematics import PandaKinematics

    tracer = node_tracer(node, "actuation", cfg.trace_label)
    rd = node.run_dir
    sensors = node.own(LatestValueSubscriber(rd.endpoint("sensors"), ("joints",)))
    commands = node.own(LatestValueSubscriber(rd.endpoint("commands"), ("cmd",),
                                              types=(m.Command,)))
    out = node.own(Publisher(rd.endpoint("targets"), source="actuation"))
    actuator = Actuator(node.own(PandaKinematics()),
                        ActuatorOptions(watchdog_timeout_s=cfg.watchdog_ms / 1000.0))
    held = misses = 0
    state = {"tripped": False}

    def tick(info: TickInfo) -> None:
        nonlocal held, misses
        joints = sensors.read_latest(max_age_ms=JOINTS_MAX_AGE_MS, topic="joints")
        node.beat()
        if joints is None:
            return
        got = commands.read_latest(max_age_ms=cfg.watchdog_ms, topic="cmd")
        fresh = got if got is not None and got.new else None
        if fresh is not None and tracer.enabled:
            hop(tracer, fresh, "cmd")
        cmd = command_from_msg(fresh.message) if fresh is not None else None  # type: ignore[arg-type]
        t = actuator.update(joints_from_msg(joints.message), info.wake_ns / 1e9, cmd)  # type: ignore[arg-type]
        if t.watchdog_tripped and not state["tripped"]:
            tracer.instant("watchdog: holding", "actuation")
        state["tripped"] = t.watchdog_tripped
        held += int(t.watchdog_tripped)
        node.counters["watchdog_ticks"] = held
        out.publish(targets_to_msg(t, fresh.message.seq if fresh else 0), topic="targets")
        # what bad input did: commands dropped at decode or refused (held), ticks overrun
        node.counters.update({f"cmd_dropped_{k}": n for k, n in commands.stats.dropped.items()})
        node.counters.update({f"refused_{k}": n for k, n in actuator.refused.items()})
        misses += int(time.monotonic_ns() > info.deadline_ns)
        node.counters["deadline_misses"] = misses

    loop = DeadlineLoop(MonotonicClock(), LoopOptions(hz=cfg.actuation_hz, gc_between_ticks=False,
                                                      gc_min_slack_ms=2.0), tick)
    run_traced(loop, tracer, node)


NODES: dict[str, Callable[[RobotDemoConfig, Node], None]] = {
    "sim": run_sim,
    "perception": run_perception,
    "actuation": run_actuation,
}


def _decision(cfg: RobotDemoConfig, node: Node) -> None:
    from demos.robot_decision import run_decision  # the model: only in this process

    run_decision(cfg, node)


def main(argv: list[str] | None = None) -> int:
    return node_main("demos.robot_nodes", {**NODES, "decision": _decision}, RobotDemoConfig.from_json, argv)


if __name__ == "__main__":
    raise SystemExit(main())
