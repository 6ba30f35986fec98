"""The robot demo's sim, perception and actuation processes, linked by ZeroMQ.

::

  sim ── PUB sensors: joints (every physics wake) ──► perception, actuation
      └─ PUB sensors: poses (camera_hz of sim time) ──► camera
  camera ── PUB camera: frames (drawn from the poses) ──► perception
  perception ── PUB world (per camera frame) ──► decision
  decision ── PUB commands (every tick of the deadline loop) ──► actuation
  actuation ── PUB targets (actuation_hz) ──► sim
  decision / sim ── ReplyServer *_ctl: instructions, stats, outcome checks, resets

The camera renders in its own process (its own PyBullet client, never stepped,
mirroring the sim's poses) because PyBullet holds the GIL while it renders: in
the sim process a 10-50 ms render stalled the 120 Hz physics loop.

Each of these four is ``python -m sim_envs.tabletop.nodes NAME CONFIG_JSON``
(the decision is :mod:`control.robot_node`), started and watched by
:class:`realtime.supervisor.Supervisor` (heartbeats, restarts). Processes never
share memory; a restarted one picks up from the latest messages. Each wraps the
same plain parts the in-process :class:`~sim_envs.tabletop.robot.LocalRobot`
and the tests use — the sim runs :class:`~sim_envs.tabletop.driver.SimDriver` —
and converts at its edges with :mod:`sim_envs.tabletop.wire`.

Tracing (``--trace PATH``): when the front-end sets ``RTAGENT_TRACE_ENDPOINT``
(:meth:`realtime.trace_run.TraceRun.env`), every process traces over the bus
(:func:`realtime.node_trace.node_tracer`): loop ticks (sim, actuation), camera
renders, sim resets, perception frames, message hops (``bus`` track: a span from
the sender's ``t_ns`` to the receiver's, for camera frames and fresh commands),
watchdog trips. Without the variable no tracer is enabled and no socket is opened.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from realtime import messages as m
from realtime.bus import LatestValueSubscriber, Publisher
from realtime.bus_rpc import ReplyServer, error_reply, ok_reply
from realtime.clock import MonotonicClock
from realtime.errors import RtAgentError
from realtime.hardening import Hardening, HardeningOptions
from realtime.loop import DeadlineLoop, LoopOptions, TickInfo
from realtime.node import Node, node_main
from realtime.node_trace import hop, node_tracer, run_traced
from sim_envs.tabletop.config import JOINTS_MAX_AGE_MS, RobotDemoConfig

__all__ = ["NODES", "main", "run_actuation", "run_camera", "run_perception", "run_sim"]

log = logging.getLogger("rtagent.robot")


# --------------------------------------------------------------------------- sim
def run_sim(cfg: RobotDemoConfig, node: Node) -> None:
    """Physics in real time (240 Hz of simulated time, stepped at each wake by the
    :class:`SimDriver`); publishes joints, and poses for the camera; applies joint targets."""
    from sim_envs.tabletop.driver import SimDriver, SimDriverOptions
    from sim_envs.tabletop.predicates import parse
    from sim_envs.tabletop.scene import SceneOptions, TabletopScene
    from sim_envs.tabletop.tasks import get_task
    from sim_envs.tabletop.truth import WorldTruth
    from sim_envs.tabletop.wire import joints_to_msg, poses_to_msg, targets_from_msg

    tracer = node_tracer(node, "sim", cfg.trace_label)
    rd = node.run_dir
    sensors = node.own(Publisher(rd.endpoint("sensors"), source="sim"))
    targets = node.own(LatestValueSubscriber(rd.endpoint("targets"), ("targets",),
                                             types=(m.JointTargets,)))
    ctl = node.own(ReplyServer(rd.endpoint("sim_ctl"), source="sim"))
    scene = node.own(TabletopScene(SceneOptions(gui=cfg.gui)))
    scene.reset(cfg.seed)

    # At the camera rate the sim only snapshots the poses; the camera process draws them.
    driver = SimDriver(scene, SimDriverOptions(camera_hz=cfg.camera_hz), render=scene.poses)

    # The world when the current step started: moved()/unmoved() compare with it.
    step_start = WorldTruth.of(scene)

    def check(predicate: str, begin_step: bool) -> m.ToolReply:
        """Evaluate ``predicate`` on the simulator's own state (the decision never sees
        it); with ``begin_step`` the same instant also starts the next step."""
        nonlocal step_start
        now = WorldTruth.of(scene)
        verdict = parse(predicate).evaluate(now, step_start)
        if begin_step:
            step_start = now
        return ok_reply({"success": verdict.success, "verdict": verdict.to_json(),
                         "world": now.to_json()})

    def handle(req: m.ToolRequest) -> m.ToolReply:
        nonlocal step_start
        args = json.loads(req.arguments_json or "{}")
        if req.name == "reset":
            seed = int(args.get("seed", cfg.seed))
            with tracer.span("reset", "sim", seed=seed):
                scene.reset(seed)
            driver.restart()  # the reset stepped the scene: re-anchor to the clock
            step_start = WorldTruth.of(scene)
            return ok_reply({"seed": args.get("seed", cfg.seed)})
        if req.name == "begin_step":
            step_start = WorldTruth.of(scene)
            return ok_reply({"sim_time_s": round(scene.sim_time_s, 3)})
        try:
            if req.name == "check":
                return check(str(args["predicate"]), bool(args.get("begin_step")))
            if req.name == "check_task":
                return check(get_task(args["task_id"]).check, bool(args.get("begin_step")))
        except RtAgentError as exc:  # a bad predicate or task id: the caller is told why
            return error_reply(str(exc))
        if req.name == "ground_truth":
            return ok_reply(WorldTruth.of(scene).to_json())
        return error_reply(f"unknown sim request {req.name!r}; expected reset, begin_step, "
                           "check, check_task or ground_truth")

    def tick(info: TickInfo) -> None:
        got = targets.read_latest(max_age_ms=cfg.watchdog_ms, topic="targets")
        if got is not None:
            q, width = targets_from_msg(got.message)
            if len(q) == 7:
                driver.apply(q, width)
        step = driver.advance(info.wake_ns / 1e9)
        sensors.publish(joints_to_msg(step.joint_state), topic="joints")
        if step.frame is not None:
            sensors.publish(poses_to_msg(step.frame), topic="poses")
        ctl.serve_once(handle, timeout_ms=0)
        so_far = loop.summarize()  # (up to the last tick) for the front-end's summary
        node.counters.update(ticks=so_far.ticks, deadline_misses=so_far.deadline_misses,
                             dropped_ms=round(driver.dropped_s * 1000))
        node.beat()

    # gc_min_slack_ms: the tick tracer's hook runs between ticks when 2 ms are left.
    # No spin before each wake: physics steps to the clock whenever it wakes, so a
    # late wake costs nothing, and spinning would take CPU from the decoder.
    loop = DeadlineLoop(MonotonicClock(spin_us=0.0), LoopOptions(hz=cfg.physics_wake_hz,
                                                                 gc_between_ticks=False,
                                                                 gc_min_slack_ms=2.0), tick)
    # --fifo: the physics loop runs SCHED_FIFO too, just below the decision loop (80);
    # its ~1 ms ticks cannot starve anything, and no other load delays its wake-ups.
    hardening = Hardening(HardeningOptions(fifo_priority=70 if cfg.fifo else None))
    with hardening:
        for done in hardening.steps:
            log.info("hardening: %s", done)
        run_traced(loop, tracer, node)


# --------------------------------------------------------------------------- camera
def run_camera(cfg: RobotDemoConfig, node: Node) -> None:
    """Draws each pose snapshot the sim sends in its own scene; publishes the frames
    (a snapshot where nothing moved gets the last image again, without drawing)."""
    from sim_envs.tabletop.camera import CameraFrame, CameraNoise, CameraOptions
    from sim_envs.tabletop.scene import SceneOptions, ScenePoses, TabletopScene
    from sim_envs.tabletop.wire import frame_to_msg, joints_to_msg, poses_from_msg

    tracer = node_tracer(node, "camera", cfg.trace_label)
    rd = node.run_dir
    poses = node.own(LatestValueSubscriber(rd.endpoint("sensors"), ("poses",),
                                           types=(m.WorldState,)))
    out = node.own(Publisher(rd.endpoint("camera"), source="camera"))
    noise = CameraNoise.realistic(seed=cfg.seed) if cfg.camera_noise else CameraNoise()
    # Headless, never stepped: a mirror to draw.
    scene = node.own(TabletopScene(SceneOptions(camera=CameraOptions(noise=noise))))
    frames = reused = 0
    frame: CameraFrame | None = None
    drawn: ScenePoses | None = None  # the poses ``frame`` was drawn from
    while not node.stopping:
        got = poses.wait_latest(max_age_ms=1000, timeout_ms=100, topic="poses")
        node.beat()
        if got is None:
            continue
        try:
            snapshot = poses_from_msg(got.message)
        except ValueError as exc:
            log.warning("camera: dropped poses: %s", exc)
            continue
        scene.set_poses(snapshot)
        if frame is not None and snapshot.same_picture(drawn) and not cfg.camera_noise:
            # Nothing moved (the arm waits while the decoder runs): the same image, now
            # (a noisy camera draws every frame: its noise and light change each time).
            frame = replace(frame, sim_time_s=snapshot.sim_time_s)
            reused += 1
        else:
            start = time.monotonic_ns()
            with tracer.span("render", "camera"):
                frame = scene.render()
            drawn = snapshot
            render_ms = (time.monotonic_ns() - start) // 1_000_000
            node.counters["render_ms_max"] = max(node.counters.get("render_ms_max", 0),
                                                 render_ms)
        # The encoders at the frame's instant first (the physics ran on while this
        # rendered): perception pairs them with the frame, as a synchronised camera would.
        out.publish(joints_to_msg(scene.joint_state()), topic="frame_joints")
        out.publish(frame_to_msg(frame), topic="camera")
        frames += 1
        node.counters.update(frames=frames, frames_reused=reused)


# --------------------------------------------------------------------------- perception
def run_perception(cfg: RobotDemoConfig, node: Node) -> None:
    """Camera frames + joint states -> world state, computed from the images."""
    from sim_envs.tabletop.kinematics import PandaKinematics
    from sim_envs.tabletop.perception import Perception, PerceptionOptions
    from sim_envs.tabletop.wire import frame_from_msg, joints_from_msg, world_to_msg

    tracer = node_tracer(node, "perception", cfg.trace_label)
    rd = node.run_dir
    sensors = node.own(LatestValueSubscriber(rd.endpoint("sensors"), ("joints",)))
    camera = node.own(LatestValueSubscriber(rd.endpoint("camera"), ("camera", "frame_joints")))
    world_pub = node.own(Publisher(rd.endpoint("world"), source="perception"))
    perception = Perception(PerceptionOptions(), node.own(PandaKinematics()))
    while not node.stopping:
        frame = camera.wait_latest(max_age_ms=1000, timeout_ms=100, topic="camera")
        joints = sensors.read_latest(max_age_ms=JOINTS_MAX_AGE_MS, topic="joints")
        at_frame = camera.read_latest(max_age_ms=1000, topic="frame_joints")
        if (frame is not None and at_frame is not None
                and at_frame.message.sim_time_s == frame.message.sim_time_s):
            joints = at_frame  # the arm where it was when the frame was drawn
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
    from sim_envs.tabletop.actuation import Actuator, ActuatorOptions, CommandStamp, predicted
    from sim_envs.tabletop.hold_watch import HoldWatch
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
    holds = HoldWatch()  # how fast the arm is still once commands stop

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
        stamp = None if fresh is None else CommandStamp(  # seq and deadline: the watchdog's
            fresh.message.seq, fresh.message.source, fresh.message.deadline_ns / 1e9)
        state = predicted(joints_from_msg(joints.message), joints.age_ms / 1000.0)  # as of now
        t = actuator.update(state, info.wake_ns / 1e9, cmd, stamp)
        if t.watchdog_tripped and not tripped:
            tracer.instant("watchdog: holding", "actuation")
        tripped = t.watchdog_tripped
        held_ticks += int(t.watchdog_tripped)
        holds.update(actuator.watchdog, state.velocities[:7], info.wake_ns, state.sim_time_s)
        node.counters.update(watchdog_ticks=held_ticks, watchdog_trips=actuator.watchdog.trips,
                             watchdog_resumes=actuator.watchdog.resumes, **holds.counters())
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
    "camera": run_camera,
    "perception": run_perception,
    "actuation": run_actuation,
}


def main(argv: list[str] | None = None) -> int:
    return node_main("sim_envs.tabletop.nodes", NODES, RobotDemoConfig.from_json, argv)


if __name__ == "__main__":
    raise SystemExit(main())
