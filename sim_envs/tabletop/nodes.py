"""The robot demo's sim, perception and actuation processes, linked by ZeroMQ.

::

  sim ── PUB sensors: joints (every physics wake), camera (camera_hz) ──► perception, actuation
  perception ── PUB world (per camera frame) ──► decision
  decision ── PUB commands (every tick of the deadline loop) ──► actuation
  actuation ── PUB targets (actuation_hz) ──► sim
  decision / sim ── ReplyServer *_ctl: instructions, stats, task checks, resets

Each of these three is ``python -m sim_envs.tabletop.nodes NAME CONFIG_JSON``
(the decision is :mod:`control.robot_node`), started and watched by
:class:`realtime.supervisor.Supervisor` (heartbeats, restarts). Processes never
share memory; a restarted one picks up from the latest messages. Each wraps the
same plain parts the in-process :class:`~sim_envs.tabletop.robot.LocalRobot`
and the tests use — the sim runs :class:`~sim_envs.tabletop.driver.SimDriver` —
and converts at its edges with :mod:`sim_envs.tabletop.wire`.

Tracing (``--trace PATH``): when the front-end sets ``RTAGENT_TRACE_ENDPOINT``
(:meth:`realtime.trace_run.TraceRun.env`), every process traces over the bus
(:func:`realtime.node_trace.node_tracer`): loop ticks (sim, actuation), sim
renders and resets, perception frames, message hops (``bus`` track: a span from
the sender's ``t_ns`` to the receiver's, for camera frames and fresh commands),
watchdog trips. Without the variable no tracer is enabled and no socket is opened.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from realtime import messages as m
from realtime.bus import LatestValueSubscriber, Publisher
from realtime.bus_rpc import ReplyServer, error_reply, ok_reply
from realtime.clock import MonotonicClock
from realtime.loop import DeadlineLoop, LoopOptions, TickInfo
from realtime.node import Node, node_main
from realtime.node_trace import hop, node_tracer, run_traced
from sim_envs.tabletop.config import JOINTS_MAX_AGE_MS, RobotDemoConfig

__all__ = ["NODES", "main", "run_actuation", "run_perception", "run_sim"]

log = logging.getLogger("rtagent.robot")


# --------------------------------------------------------------------------- sim
def run_sim(cfg: RobotDemoConfig, node: Node) -> None:
    """Physics in real time (240 Hz of simulated time, stepped at each wake by the
    :class:`SimDriver`); publishes joints and camera; applies joint targets."""
    from sim_envs.tabletop.driver import SimDriver, SimDriverOptions
    from sim_envs.tabletop.scene import BIN_ID, CUBE_IDS, SceneOptions, TabletopScene
    from sim_envs.tabletop.tasks import get_task
    from sim_envs.tabletop.wire import frame_to_msg, joints_to_msg, targets_from_msg

    tracer = node_tracer(node, "sim", cfg.trace_label)
    rd = node.run_dir
    sensors = node.own(Publisher(rd.endpoint("sensors"), source="sim"))
    targets = node.own(LatestValueSubscriber(rd.endpoint("targets"), ("targets",),
                                             types=(m.JointTargets,)))
    ctl = node.own(ReplyServer(rd.endpoint("sim_ctl"), source="sim"))
    scene = node.own(TabletopScene(SceneOptions(gui=cfg.gui)))
    scene.reset(cfg.seed)

    def render() -> Any:
        with tracer.span("render", "sim"):
            return scene.render()

    driver = SimDriver(scene, SimDriverOptions(camera_hz=cfg.camera_hz), render=render)

    def ground_truth() -> dict[str, Any]:
        """The simulator's own state, for checks and tests (decision never sees it)."""
        return {"grasp_point": [round(float(v), 4) for v in scene.grasp_point()],
                "objects": {n: [round(float(v), 4) for v in scene.object_position(n)]
                            for n in (*CUBE_IDS, BIN_ID)}}

    def handle(req: m.ToolRequest) -> m.ToolReply:
        args = json.loads(req.arguments_json or "{}")
        if req.name == "reset":
            seed = int(args.get("seed", cfg.seed))
            with tracer.span("reset", "sim", seed=seed):
                scene.reset(seed)
            driver.restart()  # the reset stepped the scene: re-anchor to the clock
            return ok_reply({"seed": args.get("seed", cfg.seed)})
        if req.name == "check_task":
            return ok_reply({"success": bool(get_task(args["task_id"]).success(scene)),
                             **ground_truth()})
        if req.name == "ground_truth":
            return ok_reply(ground_truth())
        return error_reply(f"unknown sim request {req.name!r}; expected reset, check_task "
                           "or ground_truth")

    def tick(info: TickInfo) -> None:
        got = targets.read_latest(max_age_ms=cfg.watchdog_ms, topic="targets")
        if got is not None:
            q, width = targets_from_msg(got.message)
            if len(q) == 7:
                driver.apply(q, width)
        step = driver.advance(info.wake_ns / 1e9)
        sensors.publish(joints_to_msg(step.joint_state), topic="joints")
        if step.frame is not None:
            sensors.publish(frame_to_msg(step.frame), topic="camera")
        ctl.serve_once(handle, timeout_ms=0)
        node.counters["dropped_ms"] = round(driver.dropped_s * 1000)
        node.beat()

    # gc_min_slack_ms: the tick tracer's hook runs between ticks when 2 ms are left.
    loop = DeadlineLoop(MonotonicClock(), LoopOptions(hz=cfg.physics_wake_hz,
                                                      gc_between_ticks=False,
                                                      gc_min_slack_ms=2.0), tick)
    run_traced(loop, tracer, node)


# --------------------------------------------------------------------------- perception
def run_perception(cfg: RobotDemoConfig, node: Node) -> None:
    """Camera frames + joint states -> world state, computed from the images."""
    from sim_envs.tabletop.kinematics import PandaKinematics
    from sim_envs.tabletop.perception import Perception, PerceptionOptions
    from sim_envs.tabletop.wire import frame_from_msg, joints_from_msg, world_to_msg

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
            world = perception.update(frame_from_msg(frame.message),
                                      joints_from_msg(joints.message))
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
    from sim_envs.tabletop.actuation import Actuator, ActuatorOptions
    from sim_envs.tabletop.kinematics import PandaKinematics
    from sim_envs.tabletop.wire import command_from_msg, joints_from_msg, targets_to_msg

    tracer = node_tracer(node, "actuation", cfg.trace_label)
    rd = node.run_dir
    sensors = node.own(LatestValueSubscriber(rd.endpoint("sensors"), ("joints",)))
    commands = node.own(LatestValueSubscriber(rd.endpoint("commands"), ("cmd",),
                                              types=(m.Command,)))
    out = node.own(Publisher(rd.endpoint("targets"), source="actuation"))
    actuator = Actuator(node.own(PandaKinematics()),
                        ActuatorOptions(watchdog_timeout_s=cfg.watchdog_ms / 1000.0))
    held_ticks = misses = 0
    tripped = False

    def tick(info: TickInfo) -> None:
        nonlocal held_ticks, tripped, misses
        joints = sensors.read_latest(max_age_ms=JOINTS_MAX_AGE_MS, topic="joints")
        node.beat()
        if joints is None:
            return
        got = commands.read_latest(max_age_ms=cfg.watchdog_ms, topic="cmd")
        fresh = got if got is not None and got.new else None
        if fresh is not None and tracer.enabled:
            hop(tracer, fresh, "cmd")
        cmd = command_from_msg(fresh.message) if fresh is not None else None
        t = actuator.update(joints_from_msg(joints.message), info.wake_ns / 1e9, cmd)
        if t.watchdog_tripped and not tripped:
            tracer.instant("watchdog: holding", "actuation")
        tripped = t.watchdog_tripped
        held_ticks += int(t.watchdog_tripped)
        node.counters["watchdog_ticks"] = held_ticks
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


def main(argv: list[str] | None = None) -> int:
    return node_main("sim_envs.tabletop.nodes", NODES, RobotDemoConfig.from_json, argv)


if __name__ == "__main__":
    raise SystemExit(main())
