"""Skills: tick-driven state machines behind the robot's write tools.

Each tick the decision loop calls ``skill.step(world) -> ArmCommand``; it
returns at once (never blocks or sleeps) and reads only the latest perceived
:class:`~sim_envs.tabletop.perception.WorldState` — is the grasp point there yet, is the
cube in the gripper. A skill walks its waypoints (from :mod:`sim_envs.tabletop.planning`),
re-aiming at the object while it approaches, and ends ``done`` or ``failed``
with a reason. Time is counted in ticks (``tick_s`` each), never read from a clock.

:class:`SkillRunner` is the hand-off between tool calls (any thread) and the
loop: ``submit`` a skill and wait on its handle; the loop calls ``step`` every tick.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realtime.errors import ConfigError, RtAgentError
from sim_envs.tabletop.actuation import ArmCommand
from sim_envs.tabletop.perception import WorldState
from sim_envs.tabletop.planning import (
    MotionOptions,
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

__all__ = ["GoHome", "Grasp", "MoveTo", "PlaceOn", "PointAt", "PutOn", "Release", "Skill",
           "SkillBusyError", "SkillHandle", "SkillOptions", "SkillOutcome", "SkillRunner"]


class SkillBusyError(RtAgentError):
    """A motion was started while another one is still running."""


@dataclass(frozen=True)
class SkillOptions:
    tick_s: float = 1 / 16
    """The decision loop's period: skills count time in ticks of this length."""
    reach_tol_m: float = 0.012
    """A waypoint is reached when the grasp point is this close (and has settled)."""
    fine_tol_m: float = 0.006
    """Tighter tolerance for the descent onto a cube."""
    phase_timeout_s: float = 6.0
    gripper_timeout_s: float = 1.5
    motion: MotionOptions = field(default_factory=MotionOptions)

    def __post_init__(self) -> None:
        if not 1 / 100 <= self.tick_s <= 1.0:
            raise ConfigError(f"tick_s: expected 0.01..1.0, got {self.tick_s}")


@dataclass(frozen=True)
class SkillOutcome:
    skill: str
    ok: bool
    reason: str
    ticks: int
    duration_s: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"skill": self.skill, "ok": self.ok, "reason": self.reason,
                "duration_s": round(self.duration_s, 2), **self.details}


def _width_cmd(gripper: str, world: WorldState, last: float) -> float:
    if gripper == "open":
        return FINGER_OPEN_M
    if gripper == "close":
        return 0.0
    return last


class Skill:
    """Walks a list of waypoints with feedback. Subclasses say how each ends and is checked."""

    name = "skill"

    def __init__(self, options: SkillOptions | None = None) -> None:
        self.options = options or SkillOptions()
        self.done = False
        self.failed = False
        self.reason = ""
        self.ticks = 0
        self.details: dict[str, Any] = {}
        self._waypoints: list[Waypoint] | None = None
        self._planned: list[Waypoint] | None = None
        self._i = 0
        self._phase_ticks = 0
        self._width = FINGER_OPEN_M
        self._prev_pos: np.ndarray | None = None
        self._prev_width: float | None = None

    @property
    def finished(self) -> bool:
        return self.done or self.failed

    @property
    def phase(self) -> str:
        if self._waypoints is None or self._i >= len(self._waypoints):
            return "end"
        return self._waypoints[self._i].name

    def outcome(self) -> SkillOutcome:
        return SkillOutcome(self.name, self.done, self.reason, self.ticks,
                            self.ticks * self.options.tick_s, dict(self.details))

    def use_plan(self, waypoints: list[Waypoint]) -> None:
        """Follow ``waypoints`` (a checked plan, made on the world the call saw) instead of
        planning at the first tick."""
        self._planned = list(waypoints)

    # -- hooks ----------------------------------------------------------------
    def plan(self, world: WorldState) -> list[Waypoint]:
        raise NotImplementedError

    def retarget(self, world: WorldState, wp: Waypoint) -> Waypoint:
        """Follow the object while approaching (feedback); default: keep the plan."""
        return wp

    def check(self, world: WorldState) -> str | None:
        """After the last waypoint: ``None`` if the skill succeeded, else why not."""
        return None

    def phase_ok(self, world: WorldState, wp: Waypoint) -> str | None:
        """After a waypoint is reached: ``None`` to go on, else why the skill fails."""
        return None

    # -- the state machine ------------------------------------------------------
    def _fail(self, reason: str) -> ArmCommand:
        self.failed, self.reason = True, reason
        return ArmCommand.hold_here(self._width)

    def step(self, world: WorldState) -> ArmCommand:
        """One tick: the command to send now. Never blocks."""
        if self.finished:
            return ArmCommand.hold_here(self._width)
        self.ticks += 1
        if self._waypoints is None:
            # Keep the gripper as it is: squeezing a held cube, else open.
            self._width = 0.0 if world.gripper.holding else FINGER_OPEN_M
            try:
                self._waypoints = self._planned or self.plan(world)
            except PlanningError as exc:
                return self._fail(str(exc))
        assert self._waypoints is not None
        if self._i >= len(self._waypoints):
            problem = self.check(world)
            if problem:
                return self._fail(problem)
            self.done, self.reason = True, "ok"
            return ArmCommand.hold_here(self._width)
        wp = self.retarget(world, self._waypoints[self._i])
        self._waypoints[self._i] = wp
        self._phase_ticks += 1
        self._width = _width_cmd(wp.gripper, world, self._width)
        if self._reached(world, wp):
            problem = self.phase_ok(world, wp)
            if problem:
                return self._fail(problem)
            self._i += 1
            self._phase_ticks = 0
            self._prev_width = None
            return self.step_again(world)
        gripper_only = wp.name in ("open", "close")
        limit = self.options.gripper_timeout_s if gripper_only else self.options.phase_timeout_s
        if self._phase_ticks * self.options.tick_s > limit:
            return self._fail(f"timed out in phase {wp.name!r} after {limit:.1f} s")
        return self._command(wp)

    def step_again(self, world: WorldState) -> ArmCommand:
        # The next waypoint's command goes out on this same tick (no idle tick).
        self.ticks -= 1
        return self.step(world)

    def _command(self, wp: Waypoint) -> ArmCommand:
        if wp.joint_target is not None:
            return ArmCommand(joint_target=wp.joint_target, gripper_width_m=self._width)
        return ArmCommand(ee_position_m=wp.position_m, yaw_rad=wp.yaw_rad,
                          gripper_width_m=self._width)

    def _reached(self, world: WorldState, wp: Waypoint) -> bool:
        g = world.gripper
        pos = np.asarray(g.position_m)
        moving = self._prev_pos is not None and \
            float(np.linalg.norm(pos - self._prev_pos)) > 0.002
        self._prev_pos = pos
        width_prev, self._prev_width = self._prev_width, g.width_m
        settled_width = width_prev is not None and abs(g.width_m - width_prev) < 0.0005
        if wp.gripper == "close" and not (settled_width and self._phase_ticks >= 3):
            return False
        if wp.gripper == "open" and g.width_m < FINGER_OPEN_M - 0.006:
            return False
        if wp.joint_target is not None:
            err = np.max(np.abs(np.asarray(world.arm_q) - np.asarray(wp.joint_target)))
            return bool(err < 0.03) and not moving
        assert wp.position_m is not None
        tol = self.options.fine_tol_m if wp.name == "descend" else self.options.reach_tol_m
        return bool(np.linalg.norm(pos - np.asarray(wp.position_m)) < tol) and not moving


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
            return place_waypoints(world, self.target, self.options.motion)[0]
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


@dataclass
class SkillHandle:
    skill: Skill
    _event: threading.Event = field(default_factory=threading.Event)
    outcome: SkillOutcome | None = None

    @property
    def finished(self) -> bool:
        return self._event.is_set()

    def _resolve(self, outcome: SkillOutcome) -> None:
        self.outcome = outcome
        self._event.set()

    def wait(self, timeout_s: float | None = None) -> SkillOutcome:
        if not self._event.wait(timeout_s):
            raise RtAgentError(f"{self.skill.name} still running after {timeout_s} s; "
                               "is the control loop ticking?")
        assert self.outcome is not None
        return self.outcome


class SkillRunner:
    """Runs one skill at a time; ``step`` is called by the loop, ``submit`` from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: SkillHandle | None = None
        self._current: SkillHandle | None = None
        self._width = FINGER_OPEN_M

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._current is not None or self._pending is not None

    @property
    def current(self) -> Skill | None:
        with self._lock:
            h = self._current or self._pending
            return h.skill if h else None

    def submit(self, skill: Skill) -> SkillHandle:
        with self._lock:
            if self._current is not None or self._pending is not None:
                running = (self._current or self._pending).skill.name  # type: ignore[union-attr]
                raise SkillBusyError(f"cannot start {skill.name}: {running} is still running; "
                                     "wait for it to finish (or cancel it)")
            self._pending = SkillHandle(skill)
            return self._pending

    def cancel(self, reason: str = "cancelled") -> None:
        with self._lock:
            for h in (self._pending, self._current):
                if h is not None:
                    h.skill.failed, h.skill.reason = True, reason
                    h._resolve(h.skill.outcome())
            self._pending = self._current = None

    def reset(self) -> None:
        """Cancel whatever runs and forget the gripper state (a new episode: open)."""
        self.cancel("reset")
        self._width = FINGER_OPEN_M

    def step(self, world: WorldState) -> ArmCommand:
        """The command for this tick: the running skill's, or hold (gripper as it was)."""
        with self._lock:
            if self._current is None and self._pending is not None:
                self._current, self._pending = self._pending, None
            handle = self._current
        if handle is None:
            return ArmCommand.hold_here(self._width)
        cmd = handle.skill.step(world)
        self._width = cmd.gripper_width_m
        if handle.skill.finished:
            with self._lock:
                if self._current is handle:
                    self._current = None
            handle._resolve(handle.skill.outcome())
        return cmd
