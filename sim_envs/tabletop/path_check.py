"""Collision-checked, IK-verified paths: what a motion will sweep, checked before it starts.

:class:`PathChecker` follows a skill's waypoints the way the arm will: from the
grasp point where it is now, along each straight segment in ``step_m`` steps
(joint-space targets such as home in ``joint_step_rad`` steps), solving IK at
every step seeded from the step before (as the actuation does each tick). A path
is feasible when every step is reached, no step jumps in joint space, and no
link, nor the cube in the gripper, penetrates the table, the bin or a cube it
is not handling. It uses a kinematic model of its own (its own PyBullet DIRECT
client with the Panda, the table, the bin and boxes where perception sees the
cubes): nothing here reads the simulator.

The answer is a pure function of the world state and the waypoints, so a check
run ahead (speculatively) and one run when the call comes agree exactly.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pybullet as pb

from realtime.errors import ConfigError
from sim_envs.tabletop.kinematics import PandaKinematics, gripper_yaw, top_down_quat
from sim_envs.tabletop.perception import WorldState
from sim_envs.tabletop.planning import Waypoint
from sim_envs.tabletop.scene import (
    ARM_JOINTS,
    BIN_ID,
    BIN_SCALE,
    CUBE_IDS,
    CUBE_SIZE_M,
    FINGER_JOINTS,
    FINGER_OPEN_M,
    GRASP_LINK,
)

__all__ = ["PathCheck", "PathCheckOptions", "PathChecker"]

TABLE_HALF_M = (0.55, 0.75, 0.025)  # the workcell's table, as the scene builds it
TABLE_CENTRE_M = (0.35, 0.0, -0.025)
_HAND_LINKS = frozenset({7, 8, 9, 10, 11})  # flange, hand, fingers: may touch what they handle
_ON_TABLE = frozenset({-1, 0})  # the base and first link stand on the table
_NEAR_M = 0.05  # clearance is reported up to this distance


@dataclass(frozen=True)
class PathCheckOptions:
    step_m: float = 0.01
    """Cartesian resolution: a step every centimetre (as MoveIt's Cartesian paths)."""
    joint_step_rad: float = 0.02
    max_joint_jump_rad: float = 0.35
    """A larger change of any joint between two steps is a discontinuity (a flip)."""
    reach_tol_m: float = 0.01
    reach_tol_rad: float = 0.1
    penetration_tol_m: float = 0.002
    """Deeper than this is a collision (shallower: perception noise)."""

    def __post_init__(self) -> None:
        if not 0.001 <= self.step_m <= 0.1:
            raise ConfigError(f"step_m: expected 0.001..0.1 m, got {self.step_m}")
        if not 0.001 <= self.joint_step_rad <= 0.2:
            raise ConfigError(f"joint_step_rad: expected 0.001..0.2, got {self.joint_step_rad}")


@dataclass(frozen=True)
class PathCheck:
    """The verdict on a path, and the joint angles that reach each waypoint."""

    feasible: bool
    reason: str
    steps: int
    max_ik_error_m: float
    min_clearance_m: float
    """Nearest approach of the arm (or held cube) to anything it must not touch."""
    waypoint_q: tuple[tuple[float, ...], ...]

    def to_json(self) -> dict[str, Any]:
        return {"feasible": self.feasible, "reason": self.reason, "steps": self.steps,
                "max_ik_error_m": round(self.max_ik_error_m, 4),
                "min_clearance_m": round(self.min_clearance_m, 4),
                "waypoint_q": [[round(v, 4) for v in q] for q in self.waypoint_q]}


class _Infeasible(Exception):
    pass


class PathChecker:
    """Checks paths on its own kinematic world; one check at a time (thread-safe)."""

    def __init__(self, options: PathCheckOptions | None = None) -> None:
        self.options = options or PathCheckOptions()
        self.kin = PandaKinematics()
        c = self.kin.client
        self._lock = threading.Lock()
        self.table = self._box(TABLE_HALF_M, TABLE_CENTRE_M)
        import pybullet_data

        self.bin = pb.loadURDF(f"{pybullet_data.getDataPath()}/tray/traybox.urdf", (0, 0, -5),
                               globalScaling=BIN_SCALE, useFixedBase=True, physicsClientId=c)
        half = (CUBE_SIZE_M / 2,) * 3
        self.cubes = {name: self._box(half, (0, 0, -5)) for name in CUBE_IDS}
        self.held_box = self._box(half, (0, 0, -5))

    def _box(self, half: Sequence[float], at: Sequence[float]) -> int:
        c = self.kin.client
        shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=list(half), physicsClientId=c)
        return int(pb.createMultiBody(0, shape, basePosition=list(at), physicsClientId=c))

    def close(self) -> None:
        self.kin.close()

    # -- the check ------------------------------------------------------------------
    def check(self, world: WorldState, waypoints: Sequence[Waypoint], *,
              grasps: str | None = None, handled: frozenset[str] = frozenset()) -> PathCheck:
        """Follow ``waypoints`` from where the arm is in ``world``. ``grasps``: the cube a
        ``close`` waypoint takes into the gripper; ``handled``: the objects the motion
        grasps or puts something on (the hand may touch those)."""
        with self._lock:
            touched = handled | frozenset([grasps] if grasps else [])
            return self._check(world, waypoints, grasps, touched)

    def _check(self, world: WorldState, waypoints: Sequence[Waypoint], grasps: str | None,
               handled: frozenset[str]) -> PathCheck:
        self._place_obstacles(world)
        q = np.asarray(world.arm_q, dtype=np.float64)[:7]
        pos, orn = self.kin.fk(q)  # where the arm is, and its yaw (turned along the way)
        yaw = gripper_yaw(orn)
        held = world.gripper.holding
        self.steps, self.worst_ik, self.clearance = 0, 0.0, _NEAR_M
        reached: list[tuple[float, ...]] = []
        try:
            for wp in waypoints:
                if wp.gripper == "close" and held is None:
                    held = grasps
                elif wp.gripper == "open":
                    held = None
                if wp.joint_target is not None:
                    q = self._joint_segment(q, np.asarray(wp.joint_target), wp, held, handled)
                    pos, _ = self.kin.fk(q)
                else:
                    assert wp.position_m is not None
                    goal = np.asarray(wp.position_m, dtype=np.float64)
                    q = self._cartesian_segment(q, pos, goal, yaw, wp, held, handled)
                    pos, yaw = goal, wp.yaw_rad
                reached.append(tuple(float(v) for v in q))
        except _Infeasible as exc:
            return PathCheck(False, str(exc), self.steps, self.worst_ik, self.clearance,
                             tuple(reached))
        return PathCheck(True, "", self.steps, self.worst_ik, self.clearance, tuple(reached))

    def _cartesian_segment(self, q: np.ndarray, start: np.ndarray, goal: np.ndarray,
                           yaw0: float, wp: Waypoint, held: str | None,
                           handled: frozenset[str]) -> np.ndarray:
        o = self.options
        n = max(1, math.ceil(float(np.linalg.norm(goal - start)) / o.step_m))
        dyaw = math.remainder(wp.yaw_rad - yaw0, 2 * math.pi)
        for i in range(1, n + 1):
            f = i / n
            target = start + (goal - start) * f
            sol = self.kin.ik(target, top_down_quat(yaw0 + dyaw * f), q)
            self.worst_ik = max(self.worst_ik, sol.position_error_m)
            if not sol.reached(tol_m=o.reach_tol_m, tol_rad=o.reach_tol_rad):
                raise _Infeasible(
                    f"waypoint {wp.name!r}: {[round(float(v), 3) for v in target]} is out of "
                    f"reach (IK error {sol.position_error_m * 1000:.0f} mm)")
            jump = float(np.max(np.abs(sol.q - q)))
            if jump > o.max_joint_jump_rad:
                raise _Infeasible(f"waypoint {wp.name!r}: the arm would flip ({jump:.2f} rad "
                                  "between two centimetres of path)")
            q = sol.q
            self._collide(q, wp, held, handled)
        return q

    def _joint_segment(self, q: np.ndarray, goal: np.ndarray, wp: Waypoint, held: str | None,
                       handled: frozenset[str]) -> np.ndarray:
        span = float(np.max(np.abs(goal - q)))
        n = max(1, math.ceil(span / self.options.joint_step_rad))
        for i in range(1, n + 1):
            step = q + (goal - q) * (i / n)
            self._collide(step, wp, held, handled)
        return goal

    # -- collisions ---------------------------------------------------------------
    def _place_obstacles(self, world: WorldState) -> None:
        c = self.kin.client
        for name, body in (*self.cubes.items(), (BIN_ID, self.bin)):
            obj = world.objects.get(name)
            if obj is None or obj.held:
                at: tuple[float, ...] = (0.0, 0.0, -5.0)  # unseen or in the hand: out of the way
                yaw = 0.0
            else:
                at, yaw = obj.position_m, obj.yaw_rad
                if name == BIN_ID:
                    at = (at[0], at[1], 0.0)  # the tray's origin is on the table
            pb.resetBasePositionAndOrientation(body, list(at),
                                               pb.getQuaternionFromEuler((0, 0, yaw)),
                                               physicsClientId=c)

    def _collide(self, q: np.ndarray, wp: Waypoint, held: str | None,
                 handled: frozenset[str]) -> None:
        c, robot = self.kin.client, self.kin.robot
        self.steps += 1
        for j, v in zip(ARM_JOINTS, q, strict=True):
            pb.resetJointState(robot, j, float(v), physicsClientId=c)
        width = CUBE_SIZE_M if held else (FINGER_OPEN_M if wp.gripper != "close" else 0.0)
        for j in FINGER_JOINTS:
            pb.resetJointState(robot, j, width / 2, physicsClientId=c)
        grasp = pb.getLinkState(robot, GRASP_LINK, computeForwardKinematics=True,
                                physicsClientId=c)
        held_at = (0.0, 0.0, -5.0) if held is None else grasp[4]
        pb.resetBasePositionAndOrientation(self.held_box, list(held_at), grasp[5],
                                           physicsClientId=c)
        obstacles = [("the table", self.table), ("the bin", self.bin),
                     *((n, b) for n, b in self.cubes.items() if n != held)]
        for label, body in obstacles:
            name = label if label in self.cubes else BIN_ID if body == self.bin else ""
            for p in pb.getClosestPoints(robot, body, _NEAR_M, physicsClientId=c):
                link, dist = int(p[3]), float(p[8])
                if body == self.table and link in _ON_TABLE:
                    continue
                if name in handled and link in _HAND_LINKS:
                    continue
                self._note(dist, f"link {link}", label, wp)
            if held is not None and name not in handled and body != self.table:
                for p in pb.getClosestPoints(self.held_box, body, _NEAR_M, physicsClientId=c):
                    self._note(float(p[8]), f"the held {held}", label, wp)

    def _note(self, dist: float, what: str, obstacle: str, wp: Waypoint) -> None:
        self.clearance = min(self.clearance, dist)
        if dist < -self.options.penetration_tol_m:
            raise _Infeasible(f"waypoint {wp.name!r}: {what} would hit {obstacle} "
                              f"({-dist * 1000:.0f} mm deep)")
