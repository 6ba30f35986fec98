"""Actuation: end-effector commands -> IK -> limited, interpolated joint targets.

:class:`Actuator` is a plain tick-driven class (no bus, no clock of its own):
call :meth:`Actuator.update` at the actuation rate with the latest measured
joint state, the current time from an injected clock, and the newest command
(or ``None`` when none arrived). It moves a Cartesian set-point toward the
command at a bounded speed, solves IK on its *own* kinematic model, clips the
joint step to the velocity limits and the answer to the joint limits, and
returns what it actually commanded. A watchdog holds the arm when commands stop.
A command it cannot act on (non-finite, out of reach, malformed: see
:mod:`sim_envs.tabletop.target_checks`) makes it hold, counted in :attr:`Actuator.refused`;
IK gets a time budget, so no target can stall the tick.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from realtime.errors import ConfigError
from sim_envs.tabletop.kinematics import IkSolution, PandaKinematics, gripper_yaw, top_down_quat
from sim_envs.tabletop.scene import FINGER_OPEN_M, JointState
from sim_envs.tabletop.target_checks import Reach, refusal

__all__ = ["ActuatorOptions", "Actuator", "ArmCommand", "JointTargets"]


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


class Actuator:
    """IK + trajectory interpolation + limits + watchdog, one :meth:`update` per tick."""

    def __init__(self, kinematics: PandaKinematics | None = None,
                 options: ActuatorOptions | None = None) -> None:
        self.kin = kinematics or PandaKinematics()
        self.options = options or ActuatorOptions()
        self._command: ArmCommand | None = None
        self._last_command_s: float | None = None
        self._last_update_s: float | None = None
        self._q: np.ndarray | None = None  # last commanded arm angles
        self._setpoint: np.ndarray | None = None
        self._yaw = 0.0
        self._width = FINGER_OPEN_M
        self._ik_key: tuple[float, ...] | None = None
        self._ik: IkSolution | None = None
        self.watchdog_trips = 0
        self.refused: Counter[str] = Counter()  # commands held instead, by reason

    @property
    def command(self) -> ArmCommand | None:
        return self._command

    def reset(self) -> None:
        """Forget the command, set-point and watchdog state (a new episode)."""
        self._command = None
        self._last_command_s = self._last_update_s = None
        self._q = self._setpoint = None
        self._yaw, self._width = 0.0, FINGER_OPEN_M
        self._ik_key, self._ik = None, None
        self.watchdog_trips = 0
        self.refused.clear()

    def _init_from(self, state: JointState) -> None:
        self._q = np.array(state.arm_q, dtype=np.float64)
        self._setpoint, orn = self.kin.fk(self._q)
        self._yaw = gripper_yaw(orn)
        self._width = state.finger_width_m

    def update(self, state: JointState, now_s: float,
               command: ArmCommand | None = None) -> JointTargets:
        """Advance one actuation tick; returns the joint targets to apply now."""
        if self._q is None:
            self._init_from(state)
        if command is not None:
            if self._command is None and self._last_command_s is None:
                self._init_from(state)
            command = self._checked(command)
            self._command = command
            self._last_command_s = now_s
        dt = 0.0 if self._last_update_s is None else now_s - self._last_update_s
        dt = min(max(dt, 0.0), 0.1)
        self._last_update_s = now_s
        cmd = self._command
        tripped = (self._last_command_s is not None
                   and now_s - self._last_command_s > self.options.watchdog_timeout_s)
        if tripped and cmd is not None and not cmd.hold:
            self.watchdog_trips += 1
            self._command = cmd = ArmCommand.hold_here(self._width)
        if cmd is None or cmd.hold:
            if cmd is not None:
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
        self._ik_key = None
        self._q = np.array(state.arm_q, dtype=np.float64)
        self._setpoint, _ = self.kin.fk(self._q)
        self._command = ArmCommand.hold_here(self._width)
        return self._targets(0.0, False, True, False)

    def _targets(self, err: float, clipped: bool, holding: bool, tripped: bool) -> JointTargets:
        assert self._q is not None and self._setpoint is not None
        return JointTargets(self._q.copy(), self._width, self._setpoint.copy(), err, clipped,
                            holding, tripped)
