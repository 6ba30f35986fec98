"""Backends for every tool in ``robot_tools.json``, built into a ``ToolRegistry``.

Every function reads the *latest* perceived world state (``world()``), never
the simulator. Read-only tools compute an answer (no motion). Write tools
start a skill on the :class:`~sim_envs.tabletop.skill_machine.SkillRunner` and wait for it
(they run in a worker thread while the control loop keeps ticking); each has a
dry run that returns the plan the real call would follow and never moves.

Read-only tools and dry runs answer from the first world state seen with the
current ``version`` (a snapshot per version), so a speculative call and the real
call made at the same world version return identical results.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from control.tools import ToolCall, ToolRegistry, ToolSpec, load_tool_specs
from realtime.errors import RtAgentError
from sim_envs.tabletop.kinematics import PandaKinematics
from sim_envs.tabletop.perception import WorldState
from sim_envs.tabletop.planning import (
    grasp_waypoints,
    home_waypoints,
    path_waypoints,
    plan,
    point_waypoints,
    put_waypoints,
)
from sim_envs.tabletop.scene import BIN_ID
from sim_envs.tabletop.skills import (
    GoHome,
    Grasp,
    MoveTo,
    PointAt,
    PutOn,
    Release,
    Skill,
    SkillOptions,
    SkillRunner,
)

__all__ = ["SPEC_PATH", "RobotToolBackend", "SkillFailedError", "robot_tool_specs",
           "skill_for", "visible_enums"]

# The spec stays at sim_envs/robot_tools.json: the shipped adapter and the tuning data name that path.
SPEC_PATH = Path(__file__).parent.parent / "robot_tools.json"


class SkillFailedError(RtAgentError):
    """A motion ran but did not achieve its goal (the reason says why)."""


@cache
def _spec_json() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(SPEC_PATH.read_text())
    return data


def robot_tool_specs() -> list[ToolSpec]:
    return load_tool_specs(_spec_json())


def visible_enums(world: WorldState) -> dict[str, list[str]]:
    """Run-time restrictions for the decoder (``DecodeContext.enums``): object arguments
    take only the cubes perception sees now, and a target may also be the bin. (The tool
    list itself stays whole, so the prompt and its KV cache do not change.)"""
    seen = [n for n in world.visible() if n != BIN_ID]
    return {"object": seen, "target": [*seen, BIN_ID]}


def skill_for(call: ToolCall, options: SkillOptions | None = None) -> Skill:
    """The skill a write call runs."""
    a: Mapping[str, Any] = call.arguments
    makers: dict[str, Callable[[], Skill]] = {
        "move_to": lambda: MoveTo(float(a["x"]), float(a["y"]), float(a["z"]), options),
        "grasp": lambda: Grasp(str(a["object"]), options),
        "place_on": lambda: PutOn(str(a["object"]), str(a["target"]), options),
        "point_at": lambda: PointAt(str(a["object"]), options),
        "release": lambda: Release(options),
        "go_home": lambda: GoHome(options),
    }
    if call.name not in makers:
        raise RtAgentError(f"{call.name!r} is not a motion tool; motions: {sorted(makers)}")
    return makers[call.name]()


def _r(v: Any) -> Any:
    return [round(float(x), 4) for x in v]


class RobotToolBackend:
    """The robot's tools over a world-state source and a skill runner."""

    def __init__(self, world: Callable[[], WorldState], runner: SkillRunner,
                 kinematics: PandaKinematics | None = None,
                 skill_options: SkillOptions | None = None, wait_timeout_s: float = 60.0) -> None:
        self.world = world
        self.runner = runner
        self.kin = kinematics or PandaKinematics()
        self.skill_options = skill_options or SkillOptions()
        self.wait_timeout_s = wait_timeout_s
        # Set by the decision: a motion's checked plan first (sim_envs/tabletop/plan_tools.py).
        self.planner: Callable[[ToolCall, Skill], Skill] | None = None
        self._lock = threading.Lock()
        self._snap: WorldState | None = None

    def snapshot(self) -> WorldState:
        """The world the read-only tools see: one fixed state per world version."""
        latest = self.world()
        if latest.version <= 0:  # no version from the producer: always the latest state
            return latest
        with self._lock:
            if self._snap is None or self._snap.version != latest.version:
                self._snap = latest
            return self._snap

    # -- read-only -----------------------------------------------------------
    def detect_objects(self) -> dict[str, Any]:
        w = self.snapshot()
        return {"objects": [o.to_json() for o in w.objects.values() if o.visible],
                "holding": w.gripper.holding}

    def locate_object(self, object: str) -> dict[str, Any]:
        w = self.snapshot()
        o = w.objects.get(object)
        if o is None or not o.visible:
            raise RtAgentError(f"{object!r} is not in view; visible: {w.visible() or 'nothing'}")
        return {"object": object, "position": _r(o.position_m), "yaw": round(o.yaw_rad, 3),
                "held": o.held}

    def plan_grasp(self, object: str) -> dict[str, Any]:
        w = self.snapshot()
        return {"object": object, **plan(w, self.kin, grasp_waypoints(w, object)).to_json()}

    def plan_path(self, x: float, y: float, z: float) -> dict[str, Any]:
        w = self.snapshot()
        return {"goal": [x, y, z], **plan(w, self.kin, path_waypoints(w, x, y, z)).to_json()}

    # -- writes and their dry runs --------------------------------------------------
    def _run(self, call: ToolCall) -> dict[str, Any]:
        skill = skill_for(call, self.skill_options)
        if self.planner is not None:
            skill = self.planner(call, skill)
        handle = self.runner.submit(skill)
        outcome = handle.wait(self.wait_timeout_s)
        if not outcome.ok:
            raise SkillFailedError(f"{call.name} failed: {outcome.reason}")
        return {**outcome.to_json(), "gripper": self.world().gripper.to_json()}

    def _dry(self, name: str, waypoints: Any) -> dict[str, Any]:
        w = self.snapshot()
        return {"dry_run": True, "tool": name, "version": w.version,
                **plan(w, self.kin, waypoints).to_json()}

    def move_to(self, x: float, y: float, z: float) -> dict[str, Any]:
        return self._run(ToolCall("move_to", {"x": x, "y": y, "z": z}))

    def dry_move_to(self, x: float, y: float, z: float) -> dict[str, Any]:
        return self._dry("move_to", path_waypoints(self.snapshot(), x, y, z))

    def grasp(self, object: str) -> dict[str, Any]:
        return self._run(ToolCall("grasp", {"object": object}))

    def dry_grasp(self, object: str) -> dict[str, Any]:
        w = self.snapshot()
        if w.gripper.holding:
            raise RtAgentError(f"already holding {w.gripper.holding!r}; place or release it first")
        return self._dry("grasp", grasp_waypoints(w, object))

    def place_on(self, object: str, target: str) -> dict[str, Any]:
        return self._run(ToolCall("place_on", {"object": object, "target": target}))

    def dry_place_on(self, object: str, target: str) -> dict[str, Any]:
        return self._dry("place_on", put_waypoints(self.snapshot(), object, target))

    def point_at(self, object: str) -> dict[str, Any]:
        return self._run(ToolCall("point_at", {"object": object}))

    def dry_point_at(self, object: str) -> dict[str, Any]:
        return self._dry("point_at", point_waypoints(self.snapshot(), object))

    def release(self) -> dict[str, Any]:
        return self._run(ToolCall("release", {}))

    def dry_release(self) -> dict[str, Any]:
        w = self.snapshot()
        return {"dry_run": True, "tool": "release", "feasible": True,
                "holding": w.gripper.holding, "est_duration_s": 0.4}

    def go_home(self) -> dict[str, Any]:
        return self._run(ToolCall("go_home", {}))

    def dry_go_home(self) -> dict[str, Any]:
        return self._dry("go_home", home_waypoints())

    def registry(self, specs: list[ToolSpec] | None = None) -> ToolRegistry:
        """Every robot tool with its backend (and dry run for the writes)."""
        reg = ToolRegistry()
        for spec in specs or robot_tool_specs():
            fn = getattr(self, spec.name)
            dry = getattr(self, f"dry_{spec.name}", None)
            reg.register(spec, fn, dry)
        return reg

