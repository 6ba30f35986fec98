"""The robot demo's decision: a deadline loop ticking skills while the agent decodes.

Every tick (16 Hz by default) :meth:`RobotDecision.tick` reads the latest world
state, lets the running skill compute a command and publishes it — by the
deadline, whatever the decoder or the tools are doing. Instructions arrive as
control requests (:meth:`RobotDecision.handle`); the agent (on its own thread)
decodes them into tool calls, runs them as a DAG through the speculative
executor, and write tools hand skills to the
:class:`~sim_envs.tabletop.skills.SkillRunner` that the loop ticks. Speculation
pre-runs read-only tools and dry-runs motions; it never moves the arm.

The sockets come in as :class:`DecisionPorts` and the time from an injected
:class:`~realtime.clock.Clock`, so the decision runs on fakes in tests
(tests/control/test_robot_decision.py); :mod:`control.robot_node` wires it into its
process. With tracing on it records the loop's ticks, instructions, world-state
hops, skill phase changes, the agent's turns and decodes, every tool call
(served from speculation, joined or direct) and speculative run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

from control.agent import Agent, AgentOptions
from control.dag_run import DagOptions
from control.tools import ToolCall, ToolResult
from models.decoder import DecodeContext
from models.prompts import render_scene, user_content
from realtime import messages as m
from realtime.bus import Latest
from realtime.bus_rpc import error_reply, ok_reply
from realtime.clock import Clock
from realtime.errors import RtAgentError
from realtime.loop import DeadlineLoop, LoopOptions, TickInfo
from realtime.node_trace import hop
from realtime.trace import Tracer
from sim_envs.tabletop.actuation import ArmCommand
from sim_envs.tabletop.config import WORLD_MAX_AGE_MS, RobotDemoConfig
from sim_envs.tabletop.foresight import RobotForesight
from sim_envs.tabletop.perception import WorldState
from sim_envs.tabletop.plan_tools import (
    MOTIONS,
    MotionPlanner,
    PlannedMotions,
    register_plan_tools,
)
from sim_envs.tabletop.robot_tools import RobotToolBackend, robot_tool_specs, visible_enums
from sim_envs.tabletop.skills import SkillRunner
from sim_envs.tabletop.wire import command_to_msg, world_from_msg

__all__ = ["DecisionPorts", "RobotDecision", "build_speculation", "decode_context", "scene_text"]

STATUS_EVERY_TICKS = 4  # a status event every 4 ticks (4 Hz at 16 Hz)


class WorldFeed(Protocol):
    def read_latest(self, max_age_ms: float, topic: str | None = None) -> Latest[Any] | None: ...


class Sink(Protocol):
    def publish(self, msg: m.Message, topic: str | None = None) -> None: ...


class RequestServer(Protocol):
    def serve_once(self, handler: Any, timeout_ms: float = 100.0) -> bool: ...


@dataclass(frozen=True)
class DecisionPorts:
    """The decision's sockets, as it uses them: world states in (latest value),
    commands and events out, control requests served without waiting."""

    world: WorldFeed
    commands: Sink
    events: Sink
    control: RequestServer


def scene_text(world: WorldState) -> str:
    """The scene as the decoder's prompt writes it (:func:`models.prompts.render_scene`)."""
    cubes = [o.name for name, o in world.objects.items() if name != "bin" and o.visible]
    return render_scene(cubes, world.gripper.holding)


def decode_context(world: WorldState, text: str,
                   history: Sequence[Mapping[str, str]] = ()) -> DecodeContext:
    """What the decoder sees for ``text`` on ``world`` (after a failure: ``history``)."""
    request = history[-1]["content"] if history else text
    messages = (*history[:-1], {"role": "user", "content": user_content(request, scene_text(world))})
    return DecodeContext(tuple(messages), enums=visible_enums(world))


def build_speculation(registry: Any, slack_ms: Callable[[], float],
                      gate: Callable[[], bool]) -> Any:
    """Live speculation (:class:`speculation.live.LiveSpeculation`): patterns mined from
    this demo's recorded runs and from this run after each turn. One prediction at a time
    (a plan costs a fraction of a core-second), only in the loop's slack and while
    ``gate()`` (a turn is being decoded and the arm is still); no dry runs: a motion's
    exact dry run is its plan, ``plan_for_<motion>``, which runs ahead for real."""
    from speculation.executor import SpeculationOptions
    from speculation.live import LiveSpeculation

    options = SpeculationOptions(slack_fn=slack_ms, min_slack_ms=5.0, top_k=1,
                                 max_concurrency=2, dry_runs=False, launch_at_issue=False)
    return LiveSpeculation("robot", registry, options, gate=gate)


def turn_features(text: str, world: WorldState) -> dict[str, Any]:
    """The observation a robot turn is decided on before it is decoded: the request's
    first word, the objects it names in order (``m0``, ``m1``), its numbers, and what
    the gripper holds (:func:`speculation.live.request_features`)."""
    from speculation.live import request_features

    return {**request_features(text, [*world.objects]),
            "holding": world.gripper.holding or "nothing"}


class RobotDecision:
    """The decision loop and the agent behind it.

    ``decoder``: a :class:`models.decoder.Decoder` (``decode_stream``).
    ``counters``: where tick and turn counts go (the node's heartbeat counters);
    ``beat``: called between ticks (the node's heartbeat). ``kinematics``: the tools'
    FK/IK (default: a :class:`~sim_envs.tabletop.kinematics.PandaKinematics` here; the
    demo's process passes a :class:`control.offload.KinematicsProcess`).
    """

    def __init__(self, cfg: RobotDemoConfig, clock: Clock, decoder: Any, ports: DecisionPorts, *,
                 tracer: Tracer | None = None, counters: MutableMapping[str, int] | None = None,
                 beat: Callable[[], object] = lambda: None, kinematics: Any = None) -> None:
        from speculation.trace_hooks import TracedInvoke, TracedRegistry, TracedSpeculation

        self.clock = clock
        self.ports = ports
        self.tracer = tracer if tracer is not None else Tracer("decision", enabled=False)
        self.counters: MutableMapping[str, int] = counters if counters is not None else {}
        self._beat = beat
        self.world: WorldState | None = None  # the latest world state perception sent
        self.world_version = -1
        self.slack_ms = 0.0  # left in the last tick's period: speculation runs only in slack
        self.phase: tuple[str, str] | None = None  # (skill, phase) as last traced
        self.turns: list[dict[str, Any]] = []  # every finished turn, as published
        self.hardening: list[dict[str, Any]] = []  # the loop thread's (set by its process)
        self.runner = SkillRunner()
        backend = RobotToolBackend(self.current_world, self.runner, kinematics)
        registry = backend.registry()
        # Each motion's checked plan is a read-only tool (plan_for_<motion>): speculation
        # may run it ahead, and the motion starts from it (sim_envs/tabletop/plan_tools.py).
        self.planner = MotionPlanner(backend.snapshot, backend.skill_options)
        register_plan_tools(registry, self.planner)
        traced_on = self.tracer.enabled
        # Traced: every tool run, and every call the agent makes (how it was served).
        tools = TracedRegistry(registry, self.tracer) if traced_on else registry
        self._turn_obs: dict[str, Any] = {}  # the running turn's features (speculation)
        self._turns_started = 0
        self._motions_before_turn = 0
        self.worlds_while_deciding = 0  # new world versions while a turn was being decoded
        self.live = (build_speculation(tools, lambda: self.slack_ms, self._speculating)
                     if cfg.speculation else None)
        self.speculation = self.live.executor if self.live is not None else None
        traced = (TracedSpeculation(self.speculation, self.tracer)
                  if self.speculation is not None and traced_on else None)
        self._observer: Any = traced if traced is not None else self.speculation
        invoke = (traced.call if traced is not None
                  else self.speculation.call if self.speculation is not None
                  else TracedInvoke(tools, self.tracer).call if traced_on else None)
        # The next queued instruction is decoded while the motion runs, on the world it
        # should leave behind; kept only if perception then agrees (sim_envs/tabletop/foresight.py).
        foresight = (RobotForesight(self.current_world, lambda text, w: decode_context(w, text))
                     if cfg.foresight else None)
        # The full tool list, always: the context's enums narrow the decoding (visible_enums).
        # A motion waits for its skill (up to the backend's 60 s) after its checked plan:
        # the DAG's default 10 s per call would cut a slow one short on a busy machine.
        motions = {name: backend.wait_timeout_s + 30.0 for name in MOTIONS}
        self.agent = Agent(decoder, registry, self._context, tools_fn=robot_tool_specs,
                           invoke=invoke, foresight=foresight, tracer=self.tracer,
                           now_ns=clock.now_ns,
                           options=AgentOptions(dag=DagOptions(tool_timeouts_s=motions)))
        # A motion fetches its plan the way the agent calls: through speculation, if on.
        self.motions = PlannedMotions(partial(self._fetch, invoke or registry.invoke),
                                      backend.snapshot, self.planner.hurry)
        backend.planner = self.motions
        self._hold = ArmCommand.hold_here()
        self.loop: DeadlineLoop[m.Command] = DeadlineLoop(
            clock, LoopOptions(hz=cfg.hz), self.tick, between_ticks=self.between)

    def current_world(self) -> WorldState:
        """The world the tools and the decoder see: the latest perception sent."""
        if self.world is None:
            raise RtAgentError("no world state from perception yet")
        return self.world

    def _context(self, text: str, history: Sequence[Mapping[str, str]]) -> DecodeContext:
        world = self.current_world()
        ctx = decode_context(world, text, history)
        if history or self.live is None:
            return ctx
        return self._speculate_turn(text, world, ctx)

    def _speculate_turn(self, text: str, world: WorldState, ctx: DecodeContext) -> DecodeContext:
        """A turn starts (on the agent's loop): speculation starts over on its request.
        The plans of the motions it likely asks for run while it is decoded, and the calls
        it likely decodes to are the decoder's draft (kept only as far as it agrees)."""
        assert self.live is not None
        self._turns_started += 1
        self._motions_before_turn = self.motions.started
        self._turn_obs = turn_features(text, world)
        executor = self.live.executor
        executor.reset()
        executor.episode_id = f"{self.live.run_id}/t{self._turns_started}"
        self._observer.observe(self._turn_obs)
        draft = self.live.draft([s.name for s in robot_tool_specs()])
        return replace(ctx, draft=tuple(draft)) if draft else ctx

    def _speculating(self) -> bool:
        """Whether predictions may run now: a turn is on and its first motion has not
        started (after it the world changes every frame, and a plan is wanted at once)."""
        return (self.agent.progress()[0] != 0 and not self.runner.busy
                and self.motions.started == self._motions_before_turn)

    def _fetch(self, invoke: Callable[[ToolCall], Any], call: ToolCall) -> ToolResult:
        """Run ``call`` on the agent's loop from a tool's thread, and wait for it."""
        result: ToolResult = asyncio.run_coroutine_threadsafe(
            invoke(call), self.agent.loop).result(timeout=120)
        return result

    # -- the loop's tick ----------------------------------------------------------------
    def tick(self, info: TickInfo) -> m.Command:
        """Read the world, publish this tick's command, hand on finished turns, serve
        one control request. Never blocks."""
        got = self.ports.world.read_latest(max_age_ms=WORLD_MAX_AGE_MS, topic="world")
        if got is not None and got.new:
            self._take_world(got)
        # No fresh world: hold (never act on a stale belief). Otherwise the skill decides.
        fresh = self.world if got is not None else None
        arm = self.runner.step(fresh) if fresh is not None else self._hold
        if self.tracer.enabled:
            self._trace_phase(info)
        cmd = command_to_msg(arm, tick=info.seq, deadline_ns=info.release_ns + 2 * info.period_ns)
        self.ports.commands.publish(cmd, topic="cmd")
        for turn in self.agent.poll():
            self.turns.append(turn.to_json())
            self.ports.events.publish(m.LogEvent(logger="turn", text=json.dumps(self.turns[-1])),
                                      topic="turn")
            if self.live is not None:  # mine this turn's calls in (on the miner's thread)
                self.live.after_turn(self.agent.loop)
        self.ports.control.serve_once(self.handle, timeout_ms=0)
        self.slack_ms = max(0.0, (info.release_ns + info.period_ns - self.clock.now_ns()) / 1e6)
        self.counters.update(ticks=info.seq, turns=len(self.turns))
        return cmd

    def _take_world(self, got: Latest[Any]) -> None:
        msg: m.WorldState = got.message
        if self.tracer.enabled:
            hop(self.tracer, got, "world")
        changed = msg.version != self.world_version
        self.world, self.world_version = world_from_msg(msg), msg.version
        if self._observer is None or not changed:
            return
        # What read-only tools answered may have changed: speculation must not serve
        # results computed on the previous world (lossless).
        resources = ("world", "scene", "arm", "gripper",
                     *(f"object:{o.id}" for o in msg.objects))
        # Between turns and while the arm moves: only invalidate; during a turn's decode
        # predict again (observe) on the new world.
        if not self._speculating():
            self.agent.loop.call_soon_threadsafe(self._observer.invalidate, resources)
        else:
            self.worlds_while_deciding += 1
            self.agent.loop.call_soon_threadsafe(
                partial(self._observer.observe, self._turn_obs, changed=resources))

    def _trace_phase(self, info: TickInfo) -> None:
        current = self.runner.current
        phase = (current.name, current.phase) if current else None
        if phase != self.phase:
            self.phase = phase
            self.tracer.instant(f"{phase[0]}: {phase[1]}" if phase else "idle", "skills",
                                tick=info.seq)

    def between(self, info: TickInfo) -> None:
        """Between ticks, when there is slack: a heartbeat, and now and then a status."""
        self._beat()
        if info.seq % STATUS_EVERY_TICKS == 0:
            current = self.runner.current
            self.ports.events.publish(m.LogEvent(logger="status", text=json.dumps({
                "tick": info.seq, "skill": current.name if current else None,
                "phase": current.phase if current else None,
                "world_version": self.world_version, "busy": self.agent.busy,
                "misses": self.loop.summarize().deadline_misses,
            })), topic="status")

    # -- control requests ---------------------------------------------------------------
    def handle(self, req: m.ToolRequest) -> m.ToolReply:
        """``instruct`` (text -> turn id), ``stats``, ``cancel`` (the running skill)."""
        args = json.loads(req.arguments_json or "{}")
        if req.name == "instruct":
            if self.world is None:
                return error_reply("no world state from perception yet; try again in a moment")
            turn = self.agent.submit(str(args["text"]))
            self.tracer.instant("instruct", "agent", turn=turn, text=str(args["text"])[:80])
            return ok_reply({"turn": turn})
        if req.name == "stats":
            return ok_reply(self.stats())
        if req.name == "cancel":
            self.runner.cancel(str(args.get("reason", "cancelled by user")))
            return ok_reply({"cancelled": True})
        return error_reply(f"unknown decision request {req.name!r}; expected instruct, stats "
                           "or cancel")

    def stats(self) -> dict[str, Any]:
        """The turns so far, the loop's timing report and speculation's counters."""
        from realtime.jitter import report_from_history

        out: dict[str, Any] = {"turns": self.turns, "busy": self.agent.busy or self.runner.busy,
                               "hardening": self.hardening,
                               "wait": getattr(self.clock, "wait", type(self.clock).__name__)}
        if self.loop.history.total:
            release, _, _ = self.loop.history.arrays()
            out["loop"] = report_from_history(  # t_s of the samples count from first_release_ns
                self.loop.history, self.loop.summarize(), source="decision loop",
                keep_samples=True, meta={"first_release_ns": release[0]}).to_dict()
        if self.speculation is not None:
            out["speculation"] = self.speculation.metrics.to_json()
        if self.live is not None:
            out["speculation_live"] = {
                "store": str(self.live.directory), "loaded": self.live.loaded,
                "libraries_mined": self.live.mined, "replanned": self.motions.replanned,
                "worlds_while_deciding": self.worlds_while_deciding,
                "recorded": self.live.store.recorded if self.live.store is not None else 0}
        return out

    def close(self) -> None:
        """Stop the running skill (releasing the tool that waits on it), then the agent."""
        self.runner.cancel("decision stopping")
        self.agent.close()
        if self.live is not None:
            self.live.close()
        self.planner.close()
