"""Skills: the robot's write tools as tick-driven state machines.

Each skill (:class:`MoveTo`, :class:`GoHome`, :class:`PointAt`, :class:`Release`,
:class:`Grasp`, :class:`PlaceOn`, and :class:`PutOn` = grasp then place) says
how it plans its waypoints, follows the object while approaching, checks each
phase and ends; the state machine they all walk, their options and outcome, and
the :class:`SkillRunner` the loop ticks are in :mod:`sim_envs.tabletop.skill_machine`
(re-exported here).
"""

from __future__ import annotations

import numpy as np

from sim_envs.tabletop.actuation import ArmCommand
from sim_envs.tabletop.perception import WorldState
from sim_envs.tabletop.planning import (
    PlanningError,
    Waypoint,
    grasp_waypoints,
    home_waypoints,
    path_waypoints,
    place_waypoints,
    point_waypoints,
    put_refusal,
)
from sim_envs.tabletop.scene import BIN_HALF_INNER_M, BIN_ID, CUBE_SIZE_M, FINGER_OPEN_M, HOME_Q
from sim_envs.tabletop.skill_machine import (
    Skill,
    SkillBusyError,
    SkillHandle,
    SkillOptions,
    SkillOutcome,
    SkillRunner,
)

__all__ = ["GoHome", "Grasp", "MoveTo", "PlaceOn", "PointAt", "PutOn", "Release", "Skill",
           "SkillBusyError", "SkillHandle", "SkillOptions", "SkillOutcome", "SkillRunner"]


class MoveTo(Skill):
    name = "move_to"

    def __init__(self, x: float, y: float, z: float, options: SkillOptions | None = None):
        super().__init__(options)
        self.goal = (x, y, z)

    def plan(self, world: WorldState) -> list[Waypoint]:
        return path_waypoints(world, *self.goal, self.options.motion)


class GoHome(Skill):
    name = "go_home"

    def plan(self, world: WorldState) -> list[Waypoint]:
        return home_waypoints()

    def check(self, world: WorldState) -> str | None:
        err = float(np.max(np.abs(np.asarray(world.arm_q) - np.asarray(HOME_Q))))
        return None if err < 0.05 else f"arm is {err:.2f} rad from home"


class PointAt(Skill):
    name = "point_at"

    def __init__(self, obj: str, options: SkillOptions | None = None):
        super().__init__(options)
        self.obj = obj

    def plan(self, world: WorldState) -> list[Waypoint]:
        return point_waypoints(world, self.obj, self.options.motion)

    def retarget(self, world: WorldState, wp: Waypoint) -> Waypoint:
        return point_waypoints(world, self.obj, self.options.motion)[0]


class Release(Skill):
    name = "release"

    def plan(self, world: WorldState) -> list[Waypoint]:
        return [Waypoint("open", tuple(world.gripper.position_m), 0.0, "open")]  # type: ignore[arg-type]

    def retarget(self, world: WorldState, wp: Waypoint) -> Waypoint:
        return wp

    def _command(self, wp: Waypoint) -> ArmCommand:
        return ArmCommand.hold_here(FINGER_OPEN_M)  # open in place, arm still

    def _reached(self, world: WorldState, wp: Waypoint) -> bool:
        return world.gripper.width_m >= FINGER_OPEN_M - 0.006


class Grasp(Skill):
    name = "grasp"

    def __init__(self, obj: str, options: SkillOptions | None = None):
        super().__init__(options)
        self.obj = obj

    def plan(self, world: WorldState) -> list[Waypoint]:
        if world.gripper.holding:
            raise PlanningError(f"already holding {world.gripper.holding!r}; place or release it")
        return grasp_waypoints(world, self.obj, self.options.motion)

    def retarget(self, world: WorldState, wp: Waypoint) -> Waypoint:
        obj = world.objects.get(self.obj)
        if wp.name == "above" and obj is not None and obj.visible:
            return grasp_waypoints(world, self.obj, self.options.motion)[0]
        return wp

    def phase_ok(self, world: WorldState, wp: Waypoint) -> str | None:
        obj = world.objects.get(self.obj)
        if wp.name == "above" and obj is not None and obj.visible and self._waypoints:
            # Seen from straight above, unoccluded: fix the descent on the freshest estimate.
            self._waypoints[1:] = grasp_waypoints(world, self.obj, self.options.motion)[1:]
        if wp.name == "close" and world.gripper.width_m < 0.5 * CUBE_SIZE_M:
            return f"missed {self.obj!r}: the fingers closed on nothing"
        return None

    def check(self, world: WorldState) -> str | None:
        if world.gripper.holding != self.obj:
            return f"{self.obj!r} is not in the gripper after lifting (it slipped)"
        self.details["held"] = self.obj
        return None


class PlaceOn(Skill):
    name = "place_on"

    def __init__(self, target: str, options: SkillOptions | None = None):
        super().__init__(options)
        self.target = target
        self.held: str | None = None

    def plan(self, world: WorldState) -> list[Waypoint]:
        self.held = world.gripper.holding
        return place_waypoints(world, self.target, self.options.motion)

    def retarget(self, world: WorldState, wp: Waypoint) -> Waypoint:
        tgt = world.objects.get(self.target)
        if wp.name == "carry" and tgt is not None and tgt.visible:
            # The cube it lifted (perception may lose the hold for a frame; the carry's
            # end checks that it is still held).
            return place_waypoints(world, self.target, self.options.motion, held=self.held)[0]
        return wp

    def phase_ok(self, world: WorldState, wp: Waypoint) -> str | None:
        if wp.name == "carry":
            if world.gripper.holding != self.held:
                return f"dropped {self.held!r} on the way"
            tgt = world.objects.get(self.target)
            if tgt is not None and tgt.visible and self._waypoints:
                self._waypoints[1:] = place_waypoints(world, self.target, self.options.motion)[1:]
        return None

    def check(self, world: WorldState) -> str | None:
        assert self.held is not None
        obj = world.objects.get(self.held)
        tgt = world.objects.get(self.target)
        if obj is None or tgt is None or not obj.visible:
            return f"cannot see {self.held!r} after letting go"
        p, t = np.asarray(obj.position_m), np.asarray(tgt.position_m)
        if self.target == BIN_ID:
            ok = bool(np.all(np.abs(p[:2] - t[:2]) < BIN_HALF_INNER_M + 0.01))
        else:
            ok = bool(np.linalg.norm(p[:2] - t[:2]) < 0.6 * CUBE_SIZE_M
                      and abs(p[2] - t[2] - CUBE_SIZE_M) < 0.015)
        self.details["placed"] = self.held
        return None if ok else f"{self.held!r} did not end up on {self.target!r}"


class PutOn(Skill):
    """``place_on(object, target)``: :class:`Grasp` the object unless it is already
    held, then :class:`PlaceOn` the target — one tool call for "put X on Y", each
    part still a feedback-driven skill (the place is planned after the lift, from
    where the cube really is)."""

    name = "place_on"

    def __init__(self, obj: str, target: str, options: SkillOptions | None = None):
        super().__init__(options)
        self.obj, self.target = obj, target
        self._parts: list[Skill] | None = None

    @property
    def phase(self) -> str:
        return self._parts[0].phase if self._parts else "end"

    def step(self, world: WorldState) -> ArmCommand:
        if self.finished:
            return ArmCommand.hold_here(self._width)
        if self._parts is None:
            held = world.gripper.holding
            self._width = 0.0 if held else FINGER_OPEN_M  # a refusal must not drop the cube
            refusal = put_refusal(held, self.obj, self.target)
            if refusal:  # before any motion: the grasp must not start
                return self._fail(refusal)
            grasp = [] if held == self.obj else [Grasp(self.obj, self.options)]
            if grasp and self._planned:  # the plan's grasp, up to the lift (the place is
                lift = [w.name for w in self._planned].index("lift")  # planned after it)
                grasp[0].use_plan(self._planned[: lift + 1])
            self._parts = [*grasp, PlaceOn(self.target, self.options)]
        part = self._parts[0]
        before = part.ticks
        cmd = part.step(world)
        self.ticks += part.ticks - before
        self._width = cmd.gripper_width_m
        if part.failed:
            return self._fail(f"{part.name}: {part.reason}")
        if part.done:
            self.details.update(part.details)
            self._parts.pop(0)
            if not self._parts:
                self.done, self.reason = True, "ok"
        return cmd
