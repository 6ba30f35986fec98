"""The read-only planning steps behind the robot's motions, as tools, and the hook
that makes each motion start from one.

Every motion tool (``move_to``, ``grasp``, ``place_on``, ``point_at``, ``go_home``)
has a twin ``plan_for_<tool>`` with the same arguments: the plan that call would
follow now — the skill's own waypoints on the current world version, checked
along the whole path (IK at every centimetre, no flips, no collision with the
table, the bin or a cube; :mod:`sim_envs.tabletop.path_check`). It is read-only
(``x-speculation: allow``) and reads only ``world`` (the perceived world's
version), so the speculative executor may run it ahead — while the instruction
is still being decoded — and serve it when the motion asks for it, as long as
the world version it was computed on is still current.

:class:`PlannedMotions` is the write tools' hook (``RobotToolBackend.planner``):
before a skill starts it fetches ``plan_for_<tool>`` through the agent's invoke
(the speculative executor), refuses a path that is not feasible with the reason,
and hands the skill the planned waypoints. The decoder never sees these tools:
its prompt (and KV cache) stay the same.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from control.tools import Effect, SpeculationPolicy, ToolCall, ToolRegistry, ToolResult, ToolSpec
from sim_envs.tabletop.path_check import PathChecker, PathCheckOptions
from sim_envs.tabletop.perception import WorldState
from sim_envs.tabletop.planning import PlanningError, Waypoint, put_waypoints
from sim_envs.tabletop.robot_tools import SkillFailedError, robot_tool_specs, skill_for
from sim_envs.tabletop.skills import Skill, SkillOptions

__all__ = ["MOTIONS", "PLAN_PREFIX", "MotionPlanner", "PlannedMotions", "plan_tool_specs",
           "register_plan_tools", "waypoints_from_json", "waypoints_to_json"]

PLAN_PREFIX = "plan_for_"
MOTIONS = ("move_to", "grasp", "place_on", "point_at", "go_home")
WORLD_RESOURCE = "world"  # every perceived-world change bumps it (control.robot_decision)


def plan_tool_specs() -> list[ToolSpec]:
    """``plan_for_<motion>`` for each motion tool of ``robot_tools.json``."""
    out = []
    for spec in robot_tool_specs():
        if spec.name in MOTIONS:
            out.append(ToolSpec(
                name=PLAN_PREFIX + spec.name,
                description=f"The checked motion plan {spec.name} would follow now "
                            "(waypoints, IK along the path, collisions); never moves.",
                parameters=spec.parameters, effect=Effect.READ,
                speculation=SpeculationPolicy.ALLOW, reads=(WORLD_RESOURCE,)))
    return out


def waypoints_to_json(waypoints: Sequence[Waypoint]) -> list[dict[str, Any]]:
    """Waypoints at full precision (a plan served later must be the one computed)."""
    return [{"name": w.name, "gripper": w.gripper, "yaw": w.yaw_rad,
             "position": None if w.position_m is None else list(w.position_m),
             "joints": None if w.joint_target is None else list(w.joint_target)}
            for w in waypoints]


def waypoints_from_json(data: Sequence[Mapping[str, Any]]) -> list[Waypoint]:
    out = []
    for d in data:
        pos, joints = d.get("position"), d.get("joints")
        out.append(Waypoint(str(d["name"]),
                            None if pos is None else (float(pos[0]), float(pos[1]), float(pos[2])),
                            float(d.get("yaw", 0.0)), str(d.get("gripper", "keep")),
                            None if joints is None else tuple(float(v) for v in joints)))
    return out


def _objects(world: WorldState, call: ToolCall) -> tuple[str | None, frozenset[str]]:
    """(the cube the motion grasps, the objects its hand may touch)."""
    a = call.arguments
    if call.name == "grasp":
        return str(a["object"]), frozenset({str(a["object"])})
    if call.name == "place_on":
        obj, target = str(a["object"]), str(a["target"])
        grasps = None if world.gripper.holding == obj else obj
        return grasps, frozenset({obj, target})
    return None, frozenset()


class MotionPlanner:
    """``plan_for_<motion>`` on the backend's world (one snapshot per version). Up to
    ``checkers`` plans run at once, each on its own kinematic world (one speculative
    and one real call never wait for each other)."""

    def __init__(self, world: Callable[[], WorldState], options: SkillOptions | None = None,
                 check: PathCheckOptions | None = None, checkers: int = 2) -> None:
        self.world = world
        self.options = options or SkillOptions()
        self.check_options = check or PathCheckOptions()
        self._free: queue.LifoQueue[PathChecker] = queue.LifoQueue()
        # Made now: loading the models takes a while (and the GIL), not at the first plan.
        for _ in range(max(1, checkers)):
            self._free.put(PathChecker(self.check_options))

    def _checker(self) -> PathChecker:
        return self._free.get(timeout=60)

    def plan_for(self, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        w = self.world()
        call = ToolCall(tool, dict(arguments))
        out: dict[str, Any] = {"tool": tool, "version": w.version}
        try:
            if tool == "place_on":
                waypoints = put_waypoints(w, str(arguments["object"]), str(arguments["target"]),
                                          self.options.motion)
            else:
                waypoints = skill_for(call, self.options).plan(w)
        except PlanningError as exc:
            return {**out, "feasible": False, "reason": str(exc), "waypoints": []}
        grasps, handled = _objects(w, call)
        checker = self._checker()
        try:
            check = checker.check(w, waypoints, grasps=grasps, handled=handled)
        finally:
            self._free.put(checker)
        start = np.asarray(w.gripper.position_m)
        length = 0.0
        for wp in waypoints:
            if wp.position_m is not None:
                length += float(np.linalg.norm(np.asarray(wp.position_m) - start))
                start = np.asarray(wp.position_m)
        return {**out, "feasible": check.feasible, "reason": check.reason,
                "waypoints": waypoints_to_json(waypoints), "path_length_m": round(length, 3),
                "check": check.to_json()}

    def close(self) -> None:
        while True:
            try:
                self._free.get_nowait().close()
            except queue.Empty:
                return


def register_plan_tools(registry: ToolRegistry, planner: MotionPlanner) -> None:
    """Add every ``plan_for_<motion>`` to ``registry``, answered by ``planner``."""
    for spec in plan_tool_specs():
        motion = spec.name.removeprefix(PLAN_PREFIX)

        def fn(_motion: str = motion, **arguments: Any) -> dict[str, Any]:
            return planner.plan_for(_motion, arguments)
        fn.__name__ = spec.name
        registry.register(spec, fn)


@dataclass
class PlannedMotions:
    """The write tools' hook: the motion's checked plan first (``fetch`` runs a call the
    way the agent does, through the speculative executor), then the skill follows it.
    ``world``: the world version now — a plan computed on an older one is planned again."""

    fetch: Callable[[ToolCall], ToolResult]
    world: Callable[[], WorldState]
    replanned: int = 0  # plans that came back for a world that had changed since
    started: int = 0  # motions started (each fetched its plan)

    def __call__(self, call: ToolCall, skill: Skill) -> Skill:
        if call.name not in MOTIONS:
            return skill
        self.started += 1
        return self._planned(call, skill)

    def _planned(self, call: ToolCall, skill: Skill) -> Skill:
        plan_call = ToolCall(PLAN_PREFIX + call.name, dict(call.arguments))
        plan: Mapping[str, Any] = {}
        for _ in range(2):
            result = self.fetch(plan_call)
            if not result.ok:
                raise SkillFailedError(f"{call.name} failed: {result.error}")
            plan = result.value
            if plan.get("version") == self.world().version:
                break
            self.replanned += 1
        if not plan.get("feasible"):
            raise SkillFailedError(f"{call.name} failed: {plan.get('reason') or 'no plan'}")
        skill.use_plan(waypoints_from_json(plan["waypoints"]))
        return skill

