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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from control.tools import (
    Effect,
    SpeculationPolicy,
    ToolCall,
    ToolRegistry,
    ToolResult,
    ToolSpec,
    running_ahead,
)
from sim_envs.tabletop.path_check import PathCheckOptions
from sim_envs.tabletop.perception import WorldState
from sim_envs.tabletop.plan_workers import (
    PathWorkers,
    waypoints_from_json,
    waypoints_to_json,
    world_to_json,
)
from sim_envs.tabletop.planning import PlanningError, put_waypoints
from sim_envs.tabletop.robot_tools import SkillFailedError, robot_tool_specs, skill_for
from sim_envs.tabletop.skills import Skill, SkillOptions

__all__ = ["MOTIONS", "PLAN_PREFIX", "MotionPlanner", "PlannedMotions", "plan_tool_specs",
           "register_plan_tools"]

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
    """``plan_for_<motion>`` on the backend's world (one snapshot per version): the
    waypoints here, the path check in a worker process (:mod:`sim_envs.tabletop.plan_workers`:
    off this process's GIL; a check run ahead uses spare CPU only)."""

    def __init__(self, world: Callable[[], WorldState], options: SkillOptions | None = None,
                 check: PathCheckOptions | None = None) -> None:
        self.world = world
        self.options = options or SkillOptions()
        self.workers = PathWorkers(check)

    @staticmethod
    def job_key(tool: str, arguments: Mapping[str, Any], version: int) -> str:
        return f"{ToolCall(tool, dict(arguments)).key()}@{version}"

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
        job = {"world": world_to_json(w), "waypoints": waypoints_to_json(waypoints),
               "grasps": grasps, "handled": sorted(handled)}
        check = self.workers.check(self.job_key(tool, arguments, w.version), job,
                                   ahead=running_ahead(),
                                   still_current=lambda: self.world().version == w.version)
        start = np.asarray(w.gripper.position_m)
        length = 0.0
        for wp in waypoints:
            if wp.position_m is not None:
                length += float(np.linalg.norm(np.asarray(wp.position_m) - start))
                start = np.asarray(wp.position_m)
        return {**out, "feasible": bool(check["feasible"]), "reason": str(check["reason"]),
                "waypoints": waypoints_to_json(waypoints), "path_length_m": round(length, 3),
                "check": check}

    def hurry(self, call: ToolCall) -> None:
        """A motion needs ``plan_for_<call>`` now: a check of it running ahead at idle
        priority gets the normal worker too."""
        self.workers.hurry(self.job_key(call.name, call.arguments, self.world().version))

    def close(self) -> None:
        self.workers.close()


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
    hurry: Callable[[ToolCall], None] = lambda call: None
    replanned: int = 0  # plans that came back for a world that had changed since
    started: int = 0  # motions started (each fetched its plan)

    def __call__(self, call: ToolCall, skill: Skill) -> Skill:
        if call.name not in MOTIONS:
            return skill
        self.started += 1
        return self._planned(call, skill)

    def _planned(self, call: ToolCall, skill: Skill) -> Skill:
        plan_call = ToolCall(PLAN_PREFIX + call.name, dict(call.arguments))
        self.hurry(call)  # if it runs ahead at idle priority, it is wanted now
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

