"""Actuation: end-effector commands -> IK -> limited, interpolated joint targets.

:class:`Actuator` is a plain tick-driven class (no bus, no clock of its own):
call :meth:`Actuator.update` at the actuation rate with the latest measured
joint state, the current time from an injected clock, and the newest command
(or ``None`` when none arrived). It moves a Cartesian set-point toward the
command at a bounded speed, solves IK on its *own* kinematic model, clips the
joint step to the velocity limits and the answer to the joint limits, and
returns what it actually commanded.

The watchdog is :class:`realtime.watchdog.Watchdog` on the tick's clock: a command
past its deadline (:attr:`CommandStamp.deadline_s`) or not newer than the last from
its source (:attr:`CommandStamp.seq`) is not acted on; no fresh command for
``watchdog_timeout_s`` holds the arm, and after a trip it moves again only after
``watchdog_resume_after`` fresh commands in a row. A command it cannot act on
(non-finite, out of reach, malformed: see :mod:`sim_envs.tabletop.target_checks`)
makes it hold. Both are counted in :attr:`Actuator.refused`, by reason; IK gets a
time budget, so no target can stall the tick.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from realtime.errors import ConfigError
from realtime.watchdog import Watchdog, WatchdogOptions, WatchdogState
from sim_envs.tabletop.kinematics import IkSolution, PandaKinematics, gripper_yaw, top_down_quat
from sim_envs.tabletop.scene import FINGER_OPEN_M, JointState
from sim_envs.tabletop.target_checks import Reach, refusal

__all__ = ["ActuatorOptions", "Actuator", "ArmCommand", "CommandStamp", "JointTargets",
           "predicted"]


@dataclass(frozen=True)
class ArmCommand:
    """What the decision side asks for, each tick.

    Either a Cartesian target for the grasp point (``ee_position_m`` with the
    gripper pointing down, turned by ``yaw_rad``) or a joint-space target
    (``joint_target``, e.g. the home posture), or ``hold`` to stop where it is.
    """

    ee_position_m: tuple[float, float, float] | None = None
    yaw_rad: float = 0.0
    gripper_width_m: float = FINGER_OPEN_M
    """Total finger opening: 0.08 is open, 0.0 squeezes whatever is between the fingers."""
    joint_target: tuple[float, ...] | None = None
    hold: bool = False

    @staticmethod
    def hold_here(gripper_width_m: float = FINGER_OPEN_M) -> ArmCommand:
        return ArmCommand(hold=True, gripper_width_m=gripper_width_m)


def predicted(state: JointState, age_s: float) -> JointState:
    """``state`` as it is ``age_s`` after it was measured, at its measured velocities: a
    hold where the arm is now, not where it was (a stale pose lies behind a moving arm,
    which would turn back to it: 25 ms stale makes the stop ~125 ms instead of ~45)."""
    age = min(max(age_s, 0.0), 0.2)
    return JointState(state.positions + state.velocities * age, state.velocities,
                      state.sim_time_s + age)


@dataclass(frozen=True)
class CommandStamp:
    """Where a command came from and until when it may be acted on.

    ``seq`` must rise from one command of ``source`` to the next (0: not numbered); a
    restarted sender is a new source (its name carries its incarnation). ``deadline_s``:
    on the clock of :meth:`Actuator.update`'s ``now_s`` (0: none).
    """

    seq: int = 0
    source: str = ""
    deadline_s: float = 0.0


@dataclass(frozen=True)
class JointTargets:
    """What the actuator actually sent: after interpolation, IK and clipping."""

    arm_q: np.ndarray  # (7,)
    finger_width_m: float
    setpoint_m: np.ndarray  # (3,) the interpolated grasp-point set-point
    ik_error_m: float
    clipped: bool
    """True when a velocity or joint limit cut the step short."""
    holding: bool
    """True when the arm is held (hold command, safe stop or watchdog)."""
    watchdog_tripped: bool


@dataclass(frozen=True)
class ActuatorOptions:
    max_ee_speed_m_s: float = 0.35
    """Top speed of the Cartesian set-point."""
    max_yaw_speed_rad_s: float = 2.0
    joint_speed_fraction: float = 0.6
    """Fraction of the URDF joint velocity limits the targets may move at."""
    watchdog_timeout_s: float = 0.5
    """Hold the arm when no command arrived for this long."""
    watchdog_resume_after: int = 2
    """After a hold, fresh commands in a row needed before the arm moves again."""
    reach: Reach = field(default_factory=Reach)
    """Targets beyond it are refused (the arm holds)."""
    ik_time_budget_s: float = 0.01
    """IK refinement rounds stop once this is spent (the next tick refines further)."""

    def __post_init__(self) -> None:
        if not 0.01 <= self.max_ee_speed_m_s <= 2.0:
            raise ConfigError(f"max_ee_speed_m_s: expected 0.01..2.0, got {self.max_ee_speed_m_s}")
        if not 0.05 <= self.joint_speed_fraction <= 1.0:
            raise ConfigError(
                f"joint_speed_fraction: expected 0.05..1.0, got {self.joint_speed_fraction}")
        if not 0.02 <= self.watchdog_timeout_s <= 10.0:
            raise ConfigError(
                f"watchdog_timeout_s: expected 0.02..10, got {self.watchdog_timeout_s}")
        if not 0.001 <= self.ik_time_budget_s <= 1.0:
            raise ConfigError(
                f"ik_time_budget_s: expected 0.001..1.0, got {self.ik_time_budget_s}")
        self.watchdog_options()  # resume_after: an int >= 1

    def watchdog_options(self) -> WatchdogOptions:
        return WatchdogOptions(timeout_ms=self.watchdog_timeout_s * 1000.0,
                               resume_after=self.watchdog_resume_after)


class Actuator:
    """IK + trajectory interpolation + limits + watchdog, one :meth:`update` per tick."""

    def __init__(self, kinematics: PandaKinematics | None = None,
                 options: ActuatorOptions | None = None) -> None:
        self.kin = kinematics or PandaKinematics()
        self.options = options or ActuatorOptions()
        self._command: ArmCommand | None = None
        self._now_ns = 0  # the tick's time: the watchdog's clock
        self._commanded = False
        self.watchdog = Watchdog(self.options.watchdog_options(), clock_ns=lambda: self._now_ns)
        self._last_update_s: float | None = None
        self._q: np.ndarray | None = None  # last commanded arm angles
        self._setpoint: np.ndarray | None = None
        self._yaw = 0.0
        self._width = FINGER_OPEN_M
        self._ik_key: tuple[float, ...] | None = None
        self._ik: IkSolution | None = None
        self.refused: Counter[str] = Counter()  # commands held or ignored instead, by reason

    @property
    def command(self) -> ArmCommand | None:
        return self._command

    @property
    def watchdog_trips(self) -> int:
        return self.watchdog.trips

    def reset(self) -> None:
        """Forget the command, set-point and watchdog state (a new episode)."""
        self._command = None
        self._commanded = False
        self._last_update_s = None
        self.watchdog = Watchdog(self.options.watchdog_options(), clock_ns=lambda: self._now_ns)
        self._q = self._setpoint = None
        self._yaw, self._width = 0.0, FINGER_OPEN_M
        self._ik_key, self._ik = None, None
        self.refused.clear()

    def _init_from(self, state: JointState) -> None:
        self._q = np.array(state.arm_q, dtype=np.float64)
        self._setpoint, orn = self.kin.fk(self._q)
        self._yaw = gripper_yaw(orn)
        self._width = state.finger_width_m

    def update(self, state: JointState, now_s: float, command: ArmCommand | None = None,
               stamp: CommandStamp | None = None) -> JointTargets:
        """Advance one actuation tick; returns the joint targets to apply now.
        ``command``: the one received since the last tick (None: none), ``stamp`` its
        seq, source and deadline (None: unnumbered, no deadline)."""
        self._now_ns = round(now_s * 1e9)
        if self._q is None:
            self._init_from(state)
        if command is not None and self._admitted(stamp or CommandStamp(), now_s):
            if not self._commanded:  # the first command: start from the measured pose
                self._init_from(state)
                self._commanded = True
            self._command = self._checked(command)
        dt = 0.0 if self._last_update_s is None else now_s - self._last_update_s
        dt = min(max(dt, 0.0), 0.1)
        self._last_update_s = now_s
        trips = self.watchdog.trips
        acting = self.watchdog.check()
        tripped = self.watchdog.state is WatchdogState.TRIPPED
        if self.watchdog.trips != trips:  # commands stopped: stop where the arm is now
            self._hold_measured(state)
        cmd = self._command
        if not acting or cmd is None or cmd.hold:
            if acting and cmd is not None:
                self._width = cmd.gripper_width_m
            return self._targets(0.0, False, True, tripped)
        self._width = float(np.clip(cmd.gripper_width_m, 0.0, FINGER_OPEN_M))
        assert self._q is not None and self._setpoint is not None
        max_dq = self.kin.max_velocity * self.options.joint_speed_fraction * dt
        if cmd.joint_target is not None:
            goal = np.clip(np.asarray(cmd.joint_target, dtype=np.float64),
                           self.kin.lower, self.kin.upper)
            step = np.clip(goal - self._q, -max_dq, max_dq)
            clipped = bool(np.any(np.abs(goal - self._q) > max_dq + 1e-12))
            self._q = self._q + step
            self._setpoint, _ = self.kin.fk(self._q)
            return self._targets(0.0, clipped, False, False)
        assert cmd.ee_position_m is not None
        goal_p = np.asarray(cmd.ee_position_m, dtype=np.float64)
        delta = goal_p - self._setpoint
        dist = float(np.linalg.norm(delta))
        reach = self.options.max_ee_speed_m_s * dt
        if dist > reach:
            self._setpoint = self._setpoint + delta * (reach / dist)
        else:
            self._setpoint = goal_p
        dyaw = math.remainder(cmd.yaw_rad - self._yaw, 2 * math.pi)
        max_dyaw = self.options.max_yaw_speed_rad_s * dt
        self._yaw += float(np.clip(dyaw, -max_dyaw, max_dyaw))
        key = (*self._setpoint.tolist(), self._yaw)
        if key != self._ik_key:  # the set-point moved: solve again (else reuse the answer)
            self._ik_key, self._ik = key, self.kin.ik(
                self._setpoint, top_down_quat(self._yaw), self._q,
                max_time_s=self.options.ik_time_budget_s)
        sol = self._ik
        assert sol is not None
        if not np.all(np.isfinite(sol.q)):  # cannot happen for a checked target; hold if it does
            self.refused["ik_failed"] += 1
            self._command = ArmCommand.hold_here(self._width)
            return self._targets(0.0, False, True, False)
        step = sol.q - self._q
        clipped = bool(np.any(np.abs(step) > max_dq + 1e-12))
        self._q = np.clip(self._q + np.clip(step, -max_dq, max_dq), self.kin.lower, self.kin.upper)
        return self._targets(sol.position_error_m, clipped, False, False)

    def _admitted(self, stamp: CommandStamp, now_s: float) -> bool:
        """Whether a received command may be acted on: in time, and newer than the last
        from its source (it then feeds the watchdog)."""
        if stamp.deadline_s and now_s > stamp.deadline_s:
            self.refused["expired"] += 1
            return False
        if not self.watchdog.feed(stamp.seq, stamp.source):
            self.refused["not_newer"] += 1
            return False
        return True

    def _checked(self, cmd: ArmCommand) -> ArmCommand:
        """``cmd``, or a hold (counted by reason) when it cannot be acted on."""
        if cmd.hold:
            ok = math.isfinite(cmd.gripper_width_m)
            return cmd if ok else self._refuse("non_finite")
        why = refusal(cmd.ee_position_m, cmd.yaw_rad, cmd.gripper_width_m, cmd.joint_target,
                      len(self.kin.lower), self.options.reach)
        return cmd if why is None else self._refuse(why)

    def _refuse(self, reason: str) -> ArmCommand:
        self.refused[reason] += 1
        return ArmCommand.hold_here(self._width)

    def safe_stop(self, state: JointState) -> JointTargets:
        """Hold the arm where it is now (measured), keeping the gripper as it is."""
        self._hold_measured(state)
        self._command = ArmCommand.hold_here(self._width)
        return self._targets(0.0, False, True, False)

    def _hold_measured(self, state: JointState) -> None:
        # The measured pose (see predicted()), not the last target: that one lies ahead of
        # a moving arm, which coasts on to it (~120 ms to still from 0.8 rad/s in the sim;
        # ~45 ms holding where it is).
        self._ik_key = None
        self._q = np.array(state.arm_q, dtype=np.float64)
        self._setpoint, _ = self.kin.fk(self._q)

    def _targets(self, err: float, clipped: bool, holding: bool, tripped: bool) -> JointTargets:
        assert self._q is not None and self._setpoint is not None
        return JointTargets(self._q.copy(), self._width, self._setpoint.copy(), err, clipped,
                            holding, tripped)
