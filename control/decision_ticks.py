"""The ticks `rtagent jitter --tick` measures (tick factories for :mod:`realtime.jitter_run`).

- ``poll``: poll a result mailbox and fall back to hold (no real work): what the
  loop itself costs;
- ``robot``: the robot demo's decision tick (:meth:`RobotDecision.tick`): read the
  latest world state from a real :class:`LatestValueSubscriber`, step the running
  skill, publish the command, hand on finished turns, serve one control request;
  the agent (speculation and foresight on, as in the demo) decodes with the real
  llama.cpp decoder in its own process, as `rtagent robot` does. A feeder process
  stands in for perception and the arm: it publishes world states at the camera's
  16 Hz (the demo's message: four cubes, the bin, gripper, joints), moves the
  gripper toward each command at 0.25 m/s (no physics: grasps do not hold), and
  gives an instruction (point at a cube, move, go home) every ``instruct_every_s``;
- ``voice``: the voice demo's decision tick and between-ticks wait
  (:class:`VoiceDecision`): drain transcripts from a real :class:`Subscriber`, submit
  finals to the agent (real decoder in its own process; preflight speculation off),
  speak the replies; a feeder publishes an utterance's partial transcripts every
  250 ms (perception's rate) and its final, every ``utterance_every_s``, and serves
  the home tools over RPC, as actuation does.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from realtime.clock import Clock
from realtime.jitter_run import TickWorkload
from realtime.loop import HoldOrStop, LatestResult, TickInfo

__all__ = ["TICKS", "poll_tick", "robot_tick", "tick_factory", "voice_tick"]

TICKS = ("poll", "robot", "voice")
ROBOT_INSTRUCTIONS = ("point at the red cube", "move to 0.5 0.1 0.3", "point at the green cube",
                      "go home", "point at the blue cube", "move to 0.45 -0.1 0.25")
VOICE_REQUESTS = ("turn off the kitchen lights", "what's the weather in Oslo",
                  "add milk to the shopping list", "what's on my calendar today",
                  "set a timer for ten minutes")
PARTIAL_INTERVAL_S = 0.25  # perception's partial transcripts (audio.nodes: partial_interval_ms)


def tick_factory(kind: str) -> str:
    """The ``module:function`` of ``--tick kind``."""
    return f"{__name__}:{kind}_tick"


# -- poll ---------------------------------------------------------------------------------
def poll_tick(clock: Clock, args: Mapping[str, Any]) -> TickWorkload:
    """Poll a mailbox, fall back when empty; ``tick_alloc`` small objects allocated per
    tick (kept a while), ``heap_objects`` more on the heap first, like a big app."""
    mailbox: LatestResult[int] = LatestResult()
    fallback: HoldOrStop[int] = HoldOrStop(safe_stop=0, max_hold_ticks=3)
    alloc = int(args.get("tick_alloc", 0))
    ballast = [{"i": i} for i in range(int(args.get("heap_objects", 0)))]
    recent: deque[dict[str, Any]] = deque(maxlen=max(1, 50 * alloc))

    def tick(info: TickInfo) -> int:
        fresh = mailbox.poll()
        for i in range(alloc):
            recent.append({"seq": info.seq, "i": i, "xyz": [0.0, 0.1, 0.2]})
        return fallback(fresh.value if fresh else None)

    return TickWorkload(tick, close=ballast.clear,
                        describe="poll: a mailbox poll and the hold fallback (no work)")


# -- robot --------------------------------------------------------------------------------
def robot_tick(clock: Clock, args: Mapping[str, Any]) -> TickWorkload:
    """The robot demo's decision tick on real sockets (see the module doc)."""
    import multiprocessing as mp

    from control.offload import DecoderProcess, KinematicsProcess
    from control.robot_decision import DecisionPorts, RobotDecision
    from control.robot_node import load_decoder
    from models.decoder import DecodeContext
    from models.prompts import render_scene
    from realtime import messages as m
    from realtime.bus import BusOptions, LatestValueSubscriber, Publisher
    from realtime.bus_rpc import ReplyServer
    from realtime.endpoints import RunDirectory
    from sim_envs.tabletop.config import RobotDemoConfig
    from sim_envs.tabletop.robot_tools import robot_tool_specs

    cfg = RobotDemoConfig(hz=float(args.get("hz", 16.0)), model=args.get("model"))
    rd = RunDirectory()
    sockets: list[Any] = []
    ports = DecisionPorts(
        world=_own(sockets, LatestValueSubscriber(rd.endpoint("world"), ("world",),
                                                  types=(m.WorldState,))),
        commands=_own(sockets, Publisher(rd.endpoint("commands"), source="decision")),
        events=_own(sockets, Publisher(rd.endpoint("events"), source="decision",
                                       options=BusOptions(sndhwm=256))),
        control=_own(sockets, ReplyServer(rd.endpoint("decision_ctl"), source="decision")))
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    every_s = float(args.get("instruct_every_s", 4.0))
    feeder = ctx.Process(target=_robot_feed, args=(str(rd.path), cfg.camera_hz, every_s, stop),
                         daemon=True, name="robot feed")
    decoder = DecoderProcess(partial(load_decoder, cfg))
    decoder.decode(DecodeContext.from_request("go home", scene=render_scene(["red_cube"])),
                   robot_tool_specs())
    kinematics = KinematicsProcess()
    decision = RobotDecision(cfg, clock, decoder, ports, kinematics=kinematics)
    feeder.start()

    def close() -> None:
        stop.set()
        feeder.join(timeout=5)
        decision.close()
        decoder.close()
        kinematics.close()
        for s in sockets:
            s.close()
        rd.close()

    def stats() -> dict[str, Any]:
        return {"world_states_received": ports.world.stats.received,
                "commands_sent": ports.commands.stats.sent,
                "control_requests": ports.control.stats.received,
                "turns": len(decision.turns), "turns_ok": sum(t["ok"] for t in decision.turns),
                "decodes": sum(len(t["decode_ms"]) for t in decision.turns)}

    return TickWorkload(decision.tick, decision.between, close, stats=stats, describe=(
        "robot: RobotDecision.tick (world state from a LatestValueSubscriber at 16 Hz, skill "
        f"step, command publish, turns, control), an instruction every {every_s:g} s decoded "
        "by llama.cpp in its own process, speculation and foresight on, motion planning (IK) "
        "in its own process, as in `rtagent robot`"))


def _own(sockets: list[Any], sock: Any) -> Any:
    sockets.append(sock)
    return sock


class _KinematicArm:
    """A gripper that goes where it is told at a bounded speed (no physics)."""

    def __init__(self) -> None:
        import numpy as np

        from sim_envs.tabletop.perception import GripperState, ObjectState
        from sim_envs.tabletop.scene import FINGER_OPEN_M, HOME_Q

        self.np = np
        cube = partial(ObjectState, yaw_rad=0.0, visible=True, pixels=420, seen_s=0.0)
        self.objects = {
            "red_cube": cube("red_cube", "red", (0.55, 0.12, 0.02)),
            "green_cube": cube("green_cube", "green", (0.48, -0.05, 0.02)),
            "blue_cube": cube("blue_cube", "blue", (0.62, 0.02, 0.02)),
            "yellow_cube": cube("yellow_cube", "yellow", (0.45, 0.2, 0.02)),
            "bin": ObjectState("bin", "grey", (0.5, -0.3, 0.0), 0.0, True, 3800, 0.0)}
        self.position = np.array([0.31, 0.0, 0.49])
        self.width = FINGER_OPEN_M
        self.q = np.array(HOME_Q)
        self.version = 1
        self.seq = 0
        self.gripper = GripperState

    def follow(self, cmd: Any, dt_s: float) -> None:
        np = self.np
        before = (self.position.copy(), self.width, self.q.copy())
        if not cmd.hold and cmd.ee_position_m is not None:
            step = np.asarray(cmd.ee_position_m) - self.position
            dist = float(np.linalg.norm(step))
            self.position += step * min(1.0, 0.25 * dt_s / max(dist, 1e-9))
        if not cmd.hold and cmd.joint_target is not None:
            self.q += np.clip(np.asarray(cmd.joint_target) - self.q, -dt_s, dt_s)
        self.width += max(-0.1 * dt_s, min(0.1 * dt_s, cmd.gripper_width_m - self.width))
        if (np.abs(before[0] - self.position).max() > 1e-4 or abs(before[1] - self.width) > 1e-4
                or np.abs(before[2] - self.q).max() > 1e-4):
            self.version += 1

    def world(self, t_s: float) -> Any:
        from sim_envs.tabletop.perception import WorldState

        self.seq += 1
        grip = self.gripper(tuple(float(v) for v in self.position), float(self.width), None)
        return WorldState(self.objects, grip, tuple(float(v) for v in self.q), t_s, self.seq,
                          self.version)


def _robot_feed(run_dir: str, hz: float, instruct_every_s: float, stop: Any) -> None:
    """Perception and the arm, for the robot tick: world states out, commands followed,
    an instruction now and then, events drained."""
    import json
    import signal

    from realtime import messages as m
    from realtime.bus import BusOptions, LatestValueSubscriber, Publisher, Subscriber
    from realtime.bus_rpc import RequestClient
    from realtime.endpoints import RunDirectory
    from sim_envs.tabletop.wire import command_from_msg, world_to_msg

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rd = RunDirectory(run_dir)
    world = Publisher(rd.endpoint("world"), source="perception")
    commands = LatestValueSubscriber(rd.endpoint("commands"), ("cmd",), types=(m.Command,))
    events = Subscriber(rd.endpoint("events"), ("turn", "status"),
                        options=BusOptions(rcvhwm=1024))
    arm = _KinematicArm()

    def instruct() -> None:
        client = RequestClient(rd.endpoint("decision_ctl"), source="cli")
        try:
            for k in range(10**6):
                if stop.wait(instruct_every_s):
                    return
                text = ROBOT_INSTRUCTIONS[k % len(ROBOT_INSTRUCTIONS)]
                try:
                    client.call(m.ToolRequest(name="instruct",
                                              arguments_json=json.dumps({"text": text})),
                                timeout_ms=2000)
                except Exception:  # not up yet, or a tick missed it: the next one
                    continue
        finally:
            client.close()

    threading.Thread(target=instruct, daemon=True).start()
    period_s, t0 = 1.0 / hz, time.monotonic()
    k = 0
    try:
        while not stop.is_set():
            got = commands.read_latest(max_age_ms=500, topic="cmd")
            if got is not None:
                arm.follow(command_from_msg(got.message), period_s)  # type: ignore[arg-type]
            world.publish(world_to_msg(arm.world(time.monotonic() - t0)), topic="world")
            while events.recv(0) is not None:
                pass
            k += 1
            time.sleep(max(0.0, t0 + k * period_s - time.monotonic()))
    finally:
        for s in (world, commands, events):
            s.close()


# -- voice --------------------------------------------------------------------------------
def voice_tick(clock: Clock, args: Mapping[str, Any]) -> TickWorkload:
    """The voice demo's decision tick and between-ticks wait on real sockets."""
    import multiprocessing as mp

    from control.agent import Agent
    from control.offload import DecoderProcess
    from control.voice_confirm import ConfirmedCalls, ConfirmGate
    from control.voice_dates import DatedDecoder
    from control.voice_decision import (
        CallLog,
        DecisionPorts,
        DecoderChoice,
        VoiceDecision,
        decode_context,
    )
    from control.voice_node import HomeRpc, LoggedInvoke, VoiceDecisionConfig, build_registry
    from models.decoder import DecodeContext
    from models.factory import make_decoder
    from models.resolve import resolve_model
    from realtime import messages as m
    from realtime.bus import Publisher, Subscriber
    from realtime.bus_async import AsyncRequestClient
    from realtime.bus_rpc import ReplyServer
    from realtime.endpoints import RunDirectory
    from realtime.events import EVENT_OPTIONS
    from sim_envs.home.services import Services
    from sim_envs.home.tools import confirm_tools, voice_tool_specs

    cfg = replace(VoiceDecisionConfig(hz=float(args.get("hz", 16.0)), model=args.get("model")),
                  speculation=False)
    rd = RunDirectory()
    sockets: list[Any] = []
    ports = DecisionPorts(
        transcripts=_own(sockets, Subscriber(rd.endpoint("perception"), ("transcript", "barge_in"),
                                             types=(m.Transcript, m.PlaybackControl))),
        events=_own(sockets, Publisher(rd.endpoint("decision"), source="decision",
                                       options=EVENT_OPTIONS)),
        control=_own(sockets, ReplyServer(rd.endpoint("decision_ctl"), source="decision")))
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    every_s = float(args.get("utterance_every_s", 4.0))
    feeder = ctx.Process(target=_voice_feed, args=(str(rd.path), every_s, stop), daemon=True,
                         name="voice feed")
    feeder.start()  # it serves the home tools: up before the agent calls them
    specs = voice_tool_specs()
    model = resolve_model(cfg.model, cfg.lora if cfg.decoder == "simpletool" else None)
    remote = DecoderProcess(partial(make_decoder, cfg.decoder, model,
                                    n_threads=cfg.final_decoder_threads))
    decoder = DatedDecoder(remote)  # as the demo: dates in the request filled into the calls
    decoder.decode(DecodeContext.from_request("what's the weather in Oslo"), specs)
    services = Services(cfg.service_options())  # offline weather: the deterministic stand-in
    services.warm_up()
    home = HomeRpc()
    registry = build_registry(cfg, home.call, services)
    calls = CallLog(clock)
    invoke, answered = LoggedInvoke(calls), LoggedInvoke(calls)
    gate = ConfirmGate(confirm_tools())  # calls that need a yes are held, as in the demo
    gate.inner = registry.invoke
    invoke.inner, answered.inner = gate, gate.inner
    agent = Agent(decoder, registry, decode_context, tools_fn=lambda: specs, invoke=invoke,
                  now_ns=clock.now_ns)
    home.client = agent.run_on_loop(lambda: AsyncRequestClient(rd.endpoint("home"),
                                                               source="decision"))
    decision = VoiceDecision(cfg.loop_options(), clock=clock, agent=agent, specs=specs,
                             ports=ports, calls=calls,
                             decoder=DecoderChoice(cfg.decoder, model.gguf.name,
                                                   model.adapter.name if model.adapter else None),
                             answered=ConfirmedCalls(answered, agent.loop), confirm=gate.confirm)

    def close() -> None:
        stop.set()
        feeder.join(timeout=5)
        agent.close()
        if home.client is not None:
            home.client.close()
        remote.close()
        for s in sockets:
            s.close()
        rd.close()

    def stats() -> dict[str, Any]:
        return {"transcripts_received": ports.transcripts.stats.received,
                "events_sent": ports.events.stats.sent, "turns": decision.turns_done}

    return TickWorkload(decision.tick, decision.between_ticks, close, stats=stats, describe=(
        "voice: VoiceDecision.tick and its between-ticks wait (transcripts from a Subscriber: "
        f"partials every {PARTIAL_INTERVAL_S * 1000:.0f} ms, a final every {every_s:g} s), "
        "decoded by llama.cpp in its own process, replies published; preflight off"))


def _voice_feed(run_dir: str, utterance_every_s: float, stop: Any) -> None:
    """Perception and actuation, for the voice tick: an utterance's partial and final
    transcripts now and then, the home tools served, replies and events drained."""
    import signal

    from realtime import messages as m
    from realtime.bus import Publisher, Subscriber
    from realtime.bus_rpc import ReplyServer
    from realtime.endpoints import RunDirectory
    from realtime.trace import Tracer
    from sim_envs.home.nodes import HomeServer
    from sim_envs.home.store import HomeStore

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rd = RunDirectory(run_dir)
    transcripts = Publisher(rd.endpoint("perception"), source="perception")
    home = ReplyServer(rd.endpoint("home"), source="actuation")
    replies = Subscriber(rd.endpoint("decision"), ("speech", "event"))
    server = HomeServer(HomeStore(), Tracer("actuation", enabled=False))
    utterance, next_start = 0, time.monotonic() + 1.0
    try:
        while not stop.is_set():
            home.serve_once(server.handle, timeout_ms=20)
            while replies.recv(0) is not None:
                pass
            if time.monotonic() < next_start:
                continue
            utterance += 1
            words = VOICE_REQUESTS[utterance % len(VOICE_REQUESTS)].split()
            start_ns = time.monotonic_ns()
            for n in range(1, len(words) + 1):  # one more word per partial
                if stop.wait(PARTIAL_INTERVAL_S):
                    return
                home.serve_once(server.handle, timeout_ms=0)
                transcripts.publish(m.Transcript(text=" ".join(words[:n]), utterance_id=utterance,
                                                 audio_start_ns=start_ns,
                                                 audio_end_ns=time.monotonic_ns()),
                                    topic="transcript")
            transcripts.publish(m.Transcript(text=" ".join(words), is_final=True,
                                             utterance_id=utterance, audio_start_ns=start_ns,
                                             audio_end_ns=time.monotonic_ns()), topic="transcript")
            next_start = time.monotonic() + utterance_every_s
    finally:
        for s in (transcripts, home, replies):
            s.close()
