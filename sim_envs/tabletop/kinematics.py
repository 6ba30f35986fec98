"""The Panda's kinematic model, separate from the simulated world.

:class:`PandaKinematics` loads the stock Panda URDF into its *own* PyBullet
DIRECT client (no scene, no physics stepping) and uses it for forward
kinematics and damped, null-space inverse kinematics with refinement. The
actuation side and perception each own one, so nothing here reads the
simulator's state.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import pybullet as pb

from sim_envs.tabletop.scene import ARM_JOINTS, GRASP_LINK, HOME_Q, panda_urdf_path

__all__ = ["IkSolution", "PandaKinematics", "gripper_yaw", "top_down_quat", "wrap_gripper_yaw"]


def top_down_quat(yaw_rad: float = 0.0) -> tuple[float, float, float, float]:
    """Gripper pointing straight down, turned by ``yaw_rad`` about the world z axis."""
    x, y, z, w = pb.getQuaternionFromEuler((math.pi, 0.0, yaw_rad))
    return (x, y, z, w)


def gripper_yaw(quat: tuple[float, ...] | np.ndarray) -> float:
    """The yaw of a (roughly top-down) gripper orientation: the angle of its x axis."""
    m = pb.getMatrixFromQuaternion([float(v) for v in quat])
    return math.atan2(m[3], m[0])


def wrap_gripper_yaw(yaw_rad: float) -> float:
    """A cube's faces repeat every 90 degrees: the equivalent yaw in [-pi/4, pi/4)."""
    q = math.pi / 2
    return (yaw_rad + q / 2) % q - q / 2


@dataclass(frozen=True)
class IkSolution:
    """Joint angles for a target, and how far their forward kinematics lands from it."""

    q: np.ndarray  # (7,)
    position_error_m: float
    orientation_error_rad: float
    iterations: int

    def reached(self, tol_m: float = 0.005, tol_rad: float = 0.05) -> bool:
        return self.position_error_m <= tol_m and self.orientation_error_rad <= tol_rad


class PandaKinematics:
    """FK and IK of the Panda's grasp point (between the finger tips). Thread-safe."""

    def __init__(self) -> None:
        self.client = pb.connect(pb.DIRECT)
        self.robot = pb.loadURDF(panda_urdf_path(), (0, 0, 0), useFixedBase=True,
                                 physicsClientId=self.client)
        infos = [pb.getJointInfo(self.robot, j, physicsClientId=self.client)
                 for j in range(pb.getNumJoints(self.robot, physicsClientId=self.client))]
        self.movable = [i[0] for i in infos if i[2] != pb.JOINT_FIXED]  # 7 arm + 2 fingers
        arm = [infos[j] for j in ARM_JOINTS]
        self.lower = np.array([i[8] for i in arm])
        self.upper = np.array([i[9] for i in arm])
        self.max_velocity = np.array([i[11] for i in arm])
        self.home = np.array(HOME_Q)
        self._lock = threading.Lock()
        self._closed = False

    def _set(self, q: np.ndarray) -> None:
        if not np.all(np.isfinite(q)):  # PyBullet can spin for seconds on NaN angles
            raise ValueError(f"joint angles must be finite, got {q}")
        for j, v in zip(ARM_JOINTS, q, strict=True):
            pb.resetJointState(self.robot, j, float(v), physicsClientId=self.client)

    def _fk_unlocked(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._set(q)
        s = pb.getLinkState(self.robot, GRASP_LINK, computeForwardKinematics=True,
                            physicsClientId=self.client)
        return np.array(s[4]), np.array(s[5])

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grasp-point position (m) and orientation quaternion (x, y, z, w) for arm angles ``q``."""
        with self._lock:
            return self._fk_unlocked(np.asarray(q, dtype=np.float64)[:7])

    def ik(self, position: np.ndarray, orientation: tuple[float, ...] | np.ndarray,
           seed_q: np.ndarray | None = None, *, max_rounds: int = 6,
           tol_m: float = 0.001, max_time_s: float | None = None) -> IkSolution:
        """Arm angles putting the grasp point at ``position`` with ``orientation``.

        Starts from ``seed_q`` (the current angles, for continuity) and prefers the
        home posture in the null space; repeats the solve from its own answer until
        the FK error is under ``tol_m`` or ``max_time_s`` is spent (checked between
        rounds). The answer is clipped to the joint limits. A non-finite target never
        reaches PyBullet (it can spin there for seconds): the answer is the seed,
        with an infinite error.
        """
        start = time.monotonic()
        target = np.asarray(position, dtype=np.float64)
        quat = [float(v) for v in orientation]
        seed = self.home if seed_q is None else np.asarray(seed_q, dtype=np.float64)[:7]
        if not np.all(np.isfinite(seed)):
            seed = self.home
        if not (np.all(np.isfinite(target)) and all(math.isfinite(v) for v in quat)):
            return IkSolution(np.clip(seed, self.lower, self.upper), math.inf, math.inf, 0)
        lower = list(self.lower) + [0.0, 0.0]
        upper = list(self.upper) + [0.04, 0.04]
        ranges = [u - lo for lo, u in zip(lower, upper, strict=True)]
        rest = list(self.home) + [0.02, 0.02]
        with self._lock:
            q = np.clip(seed, self.lower, self.upper)
            err_p = err_r = math.inf
            rounds = 0
            for rounds in range(1, max_rounds + 1):  # noqa: B007 - rounds is reported
                self._set(q)
                if rounds == 1:  # null-space pass: stay near the home posture
                    sol = pb.calculateInverseKinematics(
                        self.robot, GRASP_LINK, target.tolist(), quat,
                        lowerLimits=lower, upperLimits=upper, jointRanges=ranges,
                        restPoses=rest, maxNumIterations=50, residualThreshold=1e-5,
                        physicsClientId=self.client)
                else:  # plain damped least squares from there: converges tightly
                    sol = pb.calculateInverseKinematics(
                        self.robot, GRASP_LINK, target.tolist(), quat,
                        maxNumIterations=50, residualThreshold=1e-5,
                        physicsClientId=self.client)
                q = np.clip(np.array(sol[:7]), self.lower, self.upper)
                pos, orn = self._fk_unlocked(q)
                err_p = float(np.linalg.norm(pos - target))
                err_r = _angle_between(orn, np.asarray(quat))
                if err_p <= tol_m and err_r <= 0.01:
                    break
                if max_time_s is not None and time.monotonic() - start >= max_time_s:
                    break
        return IkSolution(q, err_p, err_r, rounds)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            pb.disconnect(self.client)

    def __enter__(self) -> PandaKinematics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _angle_between(a: np.ndarray, b: np.ndarray) -> float:
    dot = abs(float(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b))))
    return 2.0 * math.acos(min(1.0, dot))
