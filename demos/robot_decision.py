"""The robot demo's decision process: the deadline loop, the agent, speculation.

Every tick (16 Hz by default) the loop reads the latest world state, lets the
running skill compute a command and publishes it — by the deadline, whatever
the decoder or the tools are doing. Instructions arrive as requests on
``decision_ctl``; the agent (on its own thread) decodes them into tool calls,
runs them as a DAG through the speculative executor, and write tools hand
skills to the :class:`~sim_envs.skills.SkillRunner` that the loop ticks.
Speculation pre-runs read-only tools and dry-runs motions; it never moves the arm.

With tracing on (see :mod:`demos.robot_nodes`) it records the loop's ticks,
instructions, world-state hops, skill phase changes, the agent's turns and
decodes (prompt tokens, forward passes), every tool call (served from
speculation, joined or direct) and speculative run, and the executor's counters.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from typing import Any

from control.agent import Agent
from demos.robot_nodes import (
    WORLD_MAX_AGE_MS,
    RobotDemoConfig,
    _fail,
    _reply,
)
from demos.robot_wire import command_to_msg, world_from_msg
from models.prompts import render_scene, user_content
from realtime import messages as m
from realtime.bus import BusOptions, LatestValueSubscriber, Publisher
from realtime.bus_rpc import ReplyServer
from realtime.clock import MonotonicClock
from realtime.hardening import Hardening, HardeningOptions
from realtime.loop import DeadlineLoop, LoopOptions, TickInfo
from realtime.node import Node
from realtime.node_trace import hop, node_tracer, run_traced
from sim_envs.actuation import ArmCommand
from sim_envs.perception import WorldState

log = logging.getLogger("rtagent.robot")


def scene_text(world: WorldState) -> str:
    """The scene as the decoder's prompt writes it (:func:`models.prompts.render_scene`)."""
    cubes = [o.name for name, o in world.objects.items() if name != "bin" and o.visible]
    return render_scene(cubes, world.gripper.holding)


def build_speculation(registry: Any, cfg: RobotDemoConfig, slack_ms: Any) -> Any:
    """A speculative executor whose patterns are mined from recorded robot episodes."""
    from speculation.executor import SpeculationOptions, SpeculativeExecutor
    from speculation.patterns import PatternLibrary
    from speculation.predictors import PatternPredictor
    from speculation.workloads import robot_episodes

    library = PatternLibrary()
    library.update(robot_episodes(200, seed=cfg.seed))
    options = SpeculationOptions(slack_fn=slack_ms, min_slack_ms=5.0)
    return SpeculativeExecutor(registry, PatternPredictor(library), options)


def _lora(cfg: RobotDemoConfig) -> str | None:
    if cfg.lora != "default":
        return cfg.lora
    try:
        from models.adapters import default_adapter
    except ImportError:
        return None
    path = default_adapter(cfg.model)
    return str(path) if path else None


def run_decision(cfg: RobotDemoConfig, node: Node) -> None:
    from models.decoder import DecodeContext, make_decoder
    from sim_envs.foresight import RobotForesight
    from sim_envs.robot_tools import RobotToolBackend, robot_tool_specs, visible_enums
    from sim_envs.skills import SkillRunner
    from speculation.trace_hooks import TracedInvoke, TracedRegistry, TracedSpeculation

    tracer = node_tracer(node, "decision", cfg.trace_label)
    rd = node.run_dir
    world_sub = node.own(LatestValueSubscriber(rd.endpoint("world"), ("world",),
                                               types=(m.WorldState,)))
    cmd_pub = node.own(Publisher(rd.endpoint("commands"), source="decision"))
    events = node.own(Publisher(rd.endpoint("events"), source="decision",
                                options=BusOptions(sndhwm=256)))
    ctl = node.own(ReplyServer(rd.endpoint("decision_ctl"), source="decision"))

    state: dict[str, Any] = {"world": None, "version": -1, "slack_ms": 0.0, "phase": None}

    def world() -> WorldState:
        w = state["world"]
        if w is None:
            raise RuntimeError("no world state from perception yet")
        return w

    runner = SkillRunner()
    registry = RobotToolBackend(world, runner).registry()
    # Traced: every tool run, and every call the agent makes (how it was served).
    tools = TracedRegistry(registry, tracer) if tracer.enabled else registry
    # Loading the model, the warm-up decode and mining the patterns take seconds
    # (more on a busy machine): heartbeats go on from a helper thread meanwhile.
    with node.beating():
        decoder = make_decoder(cfg.decoder, cfg.model, lora_path=_lora(cfg),
                               n_threads=cfg.decoder_threads)
        node.own(decoder)
        # Evaluate the system prompt and tool list once now, so the first instruction
        # pays only for its own tokens (the prefix KV cache is reused).
        with tracer.span("warm-up", "decoder", "decode"):
            decoder.decode(DecodeContext.from_request(
                "go home", scene=render_scene(["red_cube"])),
                robot_tool_specs())
        spec = (build_speculation(tools, cfg, lambda: state["slack_ms"]) if cfg.speculation
                else None)

    def context_on(w: WorldState, text: str, history: Any = ()) -> DecodeContext:
        request = history[-1]["content"] if history else text
        messages = (*history[:-1], {"role": "user", "content": user_content(request, scene_text(w))})
        return DecodeContext(tuple(messages), enums=visible_enums(w))

    def context(text: str, history: Any) -> DecodeContext:
        return context_on(world(), text, history)

    # The next queued instruction is decoded while the motion runs, on the world it
    # should leave behind; kept only if perception then agrees (sim_envs/foresight.py).
    foresight = (RobotForesight(world, lambda text, w: context_on(w, text)) if cfg.foresight
                 else None)

    traced = TracedSpeculation(spec, tracer) if spec is not None and tracer.enabled else None
    invoke = (traced.call if traced is not None else spec.call if spec is not None
              else TracedInvoke(tools, tracer).call if tracer.enabled else None)
    # The full tool list, always: the context's enums narrow the decoding (visible_enums).
    agent = Agent(decoder, registry, context, tools_fn=robot_tool_specs,
                  invoke=invoke, foresight=foresight, tracer=tracer)
    node.own(agent)
    node.report_turns(agent.progress)  # heartbeats carry the turn's progress
    observer: Any = traced if traced is not None else spec
    turns: list[dict[str, Any]] = []
    hold = ArmCommand.hold_here()

    def handle(req: m.ToolRequest) -> m.ToolReply:
        args = json.loads(req.arguments_json or "{}")
        if req.name == "instruct":
            if state["world"] is None:
                return _fail("no world state from perception yet; try again in a moment")
            turn = agent.submit(str(args["text"]))
            tracer.instant("instruct", "agent", turn=turn, text=str(args["text"])[:80])
            return _reply({"turn": turn})
        if req.name == "stats":
            return _reply(stats())
        if req.name == "cancel":
            runner.cancel(str(args.get("reason", "cancelled by user")))
            return _reply({"cancelled": True})
        return _fail(f"unknown decision request {req.name!r}")

    def stats() -> dict[str, Any]:
        from realtime.jitter import report_from_history

        out: dict[str, Any] = {"turns": turns, "busy": agent.busy or runner.busy}
        if loop.history.total:
            out["loop"] = report_from_history(loop.history, loop.summarize(),
                                              source="decision loop", keep_samples=True).to_dict()
        if spec is not None:
            out["speculation"] = spec.metrics.to_json()
        return out

    def tick(info: TickInfo) -> m.Command:
        got = world_sub.read_latest(max_age_ms=WORLD_MAX_AGE_MS, topic="world")
        if got is not None and got.new:
            msg: m.WorldState = got.message  # type: ignore[assignment]
            if tracer.enabled:
                hop(tracer, got, "world")
            changed = msg.version != state["version"]
            state["world"], state["version"] = world_from_msg(msg), msg.version
            if spec is not None and changed:
                # What read-only tools answered may have changed: speculation must not
                # serve results computed on the previous world (lossless).
                resources = ("scene", "arm", "gripper", *(f"object:{o.id}" for o in msg.objects))
                # While the arm moves the world changes every frame: only invalidate then;
                # predict again (observe) once it is still.
                if runner.busy:
                    agent.loop.call_soon_threadsafe(observer.invalidate, resources)
                else:
                    agent.loop.call_soon_threadsafe(
                        partial(observer.observe, {"world_version": msg.version},
                                changed=resources))
        w = state["world"] if got is not None else None
        # No fresh world: hold (never act on a stale belief). Otherwise the skill decides.
        arm = runner.step(w) if w is not None else hold
        if tracer.enabled:
            current = runner.current
            phase = (current.name, current.phase) if current else None
            if phase != state["phase"]:
                state["phase"] = phase
                tracer.instant(f"{phase[0]}: {phase[1]}" if phase else "idle", "skills",
                               tick=info.seq)
        cmd = command_to_msg(arm, tick=info.seq, deadline_ns=info.release_ns + 2 * info.period_ns)
        cmd_pub.publish(cmd, topic="cmd")
        for turn in agent.poll():
            turns.append(turn.to_json())
            events.publish(m.LogEvent(logger="turn", text=json.dumps(turns[-1])), topic="turn")
        ctl.serve_once(handle, timeout_ms=0)
        state["slack_ms"] = max(0.0, (info.release_ns + info.period_ns - time.monotonic_ns()) / 1e6)
        node.counters.update(ticks=info.seq, turns=len(turns))
        return cmd

    def between(info: TickInfo) -> None:
        node.beat()
        if info.seq % 4 == 0:
            current = runner.current
            events.publish(m.LogEvent(logger="status", text=json.dumps({
                "tick": info.seq, "skill": current.name if current else None,
                "phase": current.phase if current else None,
                "world_version": state["version"], "busy": agent.busy,
                "misses": loop.summarize().deadline_misses,
            })), topic="status")

    loop: DeadlineLoop[m.Command] = DeadlineLoop(
        MonotonicClock(), LoopOptions(hz=cfg.hz), tick, between_ticks=between)
    # Only this (loop) thread gets SCHED_FIFO: the agent's threads exist already and keep
    # SCHED_OTHER, so the decoder can never starve the loop.
    hardening = Hardening(HardeningOptions(fifo_priority=80 if cfg.fifo else None))
    node.beat("running", force=True)
    try:
        with hardening:
            for step in hardening.steps:
                log.info("hardening: %s", step)
            run_traced(loop, tracer, node)
    finally:
        runner.cancel("decision stopping")
