"""The machinery every skill runs on: a tick-driven state machine and its runner.

Each tick the decision loop calls ``skill.step(world) -> ArmCommand``; it
returns at once (never blocks or sleeps) and reads only the latest perceived
:class:`~sim_envs.tabletop.perception.WorldState` — is the grasp point there yet, is the
cube in the gripper. A :class:`Skill` walks its waypoints (from
:mod:`sim_envs.tabletop.planning`), re-aiming at the object while it approaches
(its subclasses' hooks, in :mod:`sim_envs.tabletop.skills`), and ends ``done``
or ``failed`` with a reason. Time is counted in ticks (``tick_s`` each), never
read from a clock.

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
from sim_envs.tabletop.planning import MotionOptions, PlanningError, Waypoint
from sim_envs.tabletop.scene import FINGER_OPEN_M

__all__ = ["Skill", "SkillBusyError", "SkillHandle", "SkillOptions", "SkillOutcome",
           "SkillRunner"]


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
        try:  # re-planning on a changed world can find it impossible: fail, never raise
            wp = self.retarget(world, self._waypoints[self._i])
        except PlanningError as exc:
            return self._fail(str(exc))
        self._waypoints[self._i] = wp
        self._phase_ticks += 1
        self._width = _width_cmd(wp.gripper, world, self._width)
        if self._reached(world, wp):
            try:
                problem = self.phase_ok(world, wp)
            except PlanningError as exc:
                problem = str(exc)
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
