"""Motion plans from a world state: the waypoints each skill will follow.

The same functions give the skills their waypoints and the read-only tools
(``plan_grasp``, ``plan_path``) and the write tools' dry runs their answers, so
a dry run is the plan the real call would execute, without moving anything.
Feasibility is checked with IK on a kinematic model (never the simulator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from realtime.errors import ConfigError, RtAgentError
from sim_envs.tabletop.kinematics import PandaKinematics, top_down_quat, wrap_gripper_yaw
from sim_envs.tabletop.perception import WorldState
from sim_envs.tabletop.scene import BIN_ID, CUBE_SIZE_M, HOME_Q

__all__ = ["MotionOptions", "Plan", "PlanningError", "Waypoint", "grasp_waypoints",
           "home_waypoints", "place_waypoints", "plan", "point_waypoints", "path_waypoints",
           "put_refusal", "put_waypoints"]

WORKSPACE_M = ((0.2, 0.8), (-0.5, 0.5), (0.0, 0.7))  # as in robot_tools.json


class PlanningError(RtAgentError):
    """No plan: the object is not seen, nothing is held, or the target is out of reach."""


@dataclass(frozen=True)
class MotionOptions:
    """Heights and speeds the skills use (metres above a cube's centre, unless noted)."""

    approach_height_m: float = 0.10
    grasp_offset_m: float = 0.005
    safe_height_m: float = 0.20
    """Height of the grasp point when carrying over the table (clears the bin walls)."""
    place_gap_m: float = 0.008
    """Gap left under a cube that is put down on another cube."""
    bin_drop_height_m: float = 0.09
    """Grasp-point height (above the bin floor) where a cube is let go into the bin."""
    point_height_m: float = 0.15
    ee_speed_m_s: float = 0.35
    """Set-point speed assumed for duration estimates (the actuator's max_ee_speed_m_s)."""

    def __post_init__(self) -> None:
        if not 0.03 <= self.approach_height_m <= 0.3:
            raise ConfigError(f"approach_height_m: expected 0.03..0.3, got {self.approach_height_m}")
        if not 0.1 <= self.safe_height_m <= 0.5:
            raise ConfigError(f"safe_height_m: expected 0.1..0.5, got {self.safe_height_m}")


@dataclass(frozen=True)
class Waypoint:
    """A phase of a motion: where the grasp point goes and what the gripper does there."""

    name: str
    position_m: tuple[float, float, float] | None
    yaw_rad: float = 0.0
    gripper: str = "keep"  # "open" | "close" | "keep"
    joint_target: tuple[float, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "gripper": self.gripper}
        if self.position_m is not None:
            d["position"] = [round(v, 4) for v in self.position_m]
            d["yaw"] = round(self.yaw_rad, 3)
        if self.joint_target is not None:
            d["joints"] = [round(v, 3) for v in self.joint_target]
        return d


@dataclass(frozen=True)
class Plan:
    feasible: bool
    waypoints: tuple[Waypoint, ...]
    path_length_m: float
    est_duration_s: float
    max_ik_error_m: float
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"feasible": self.feasible, "waypoints": [w.to_json() for w in self.waypoints],
                "path_length_m": round(self.path_length_m, 3),
                "est_duration_s": round(self.est_duration_s, 2),
                "max_ik_error_m": round(self.max_ik_error_m, 4), "reason": self.reason}


def _seen(world: WorldState, name: str) -> np.ndarray:
    obj = world.objects.get(name)
    if obj is None:
        seen = ", ".join(world.visible()) or "nothing"
        raise PlanningError(f"{name!r} has not been seen; the camera sees: {seen}")
    return np.asarray(obj.position_m, dtype=np.float64)


def _tup(p: np.ndarray) -> tuple[float, float, float]:
    return (float(p[0]), float(p[1]), float(p[2]))


def grasp_waypoints(world: WorldState, name: str,
                    o: MotionOptions | None = None) -> list[Waypoint]:
    o = o or MotionOptions()
    if name == BIN_ID:
        raise PlanningError("the bin cannot be grasped; grasp a cube")
    c = _seen(world, name)
    yaw = wrap_gripper_yaw(world.objects[name].yaw_rad)
    above = c + (0, 0, o.approach_height_m)
    return [Waypoint("above", _tup(above), yaw, "open"),
            Waypoint("descend", _tup(c + (0, 0, o.grasp_offset_m)), yaw, "open"),
            Waypoint("close", _tup(c + (0, 0, o.grasp_offset_m)), yaw, "close"),
            Waypoint("lift", _tup(c + (0, 0, o.safe_height_m - c[2])), yaw, "close")]


def place_waypoints(world: WorldState, target: str, o: MotionOptions | None = None,
                    held: str | None = None) -> list[Waypoint]:
    """Carry the held cube (or ``held``, about to be grasped) over ``target`` and let go."""
    o = o or MotionOptions()
    held = held or world.gripper.holding
    if held is None:
        raise PlanningError("the gripper holds nothing; grasp a cube first")
    if target == held:
        raise PlanningError(f"cannot put {held!r} on itself; choose another cube or the bin")
    t = _seen(world, target)
    yaw = wrap_gripper_yaw(world.objects[held].yaw_rad)
    if target == BIN_ID:
        release = _free_spot_in_bin(world, t, held) + (0, 0, o.bin_drop_height_m)
    else:
        yaw = wrap_gripper_yaw(world.objects[target].yaw_rad)
        release = t + (0, 0, CUBE_SIZE_M + o.grasp_offset_m + o.place_gap_m)
    carry = np.array([t[0], t[1], max(o.safe_height_m, release[2] + 0.05)])
    retreat = release + (0, 0, 0.10)
    return [Waypoint("carry", _tup(carry), yaw, "close"),
            Waypoint("descend", _tup(release), yaw, "close"),
            Waypoint("open", _tup(release), yaw, "open"),
            Waypoint("retreat", _tup(retreat), yaw, "open")]


def put_refusal(held: str | None, obj: str, target: str) -> str | None:
    """Why ``place_on(obj, target)`` cannot start with ``held`` in the gripper (None: it can)."""
    if held not in (None, obj):
        return f"holding {held!r}, not {obj!r}; place or release it first"
    if target == obj:
        return f"cannot put {obj!r} on itself; choose another cube or the bin"
    return None


def put_waypoints(world: WorldState, obj: str, target: str,
                  o: MotionOptions | None = None) -> list[Waypoint]:
    """``place_on(object, target)``: grasp ``obj`` unless it is held, then place it."""
    held = world.gripper.holding
    refusal = put_refusal(held, obj, target)
    if refusal:
        raise PlanningError(refusal)
    if held == obj:
        return place_waypoints(world, target, o)
    return grasp_waypoints(world, obj, o) + place_waypoints(world, target, o, held=obj)


def _free_spot_in_bin(world: WorldState, centre: np.ndarray, held: str) -> np.ndarray:
    """The spot in the bin (centre or a corner) farthest from the cubes already in it."""
    inside = [np.asarray(o.position_m) for n, o in world.objects.items()
              if n not in (BIN_ID, held) and np.all(np.abs(np.asarray(o.position_m)[:2]
                                                           - centre[:2]) < 0.13)]
    if not inside:
        return centre
    spots = [centre + (dx, dy, 0) for dx in (-0.05, 0.05) for dy in (-0.05, 0.05)]
    return max(spots, key=lambda s: min(float(np.linalg.norm(s[:2] - p[:2])) for p in inside))


def point_waypoints(world: WorldState, name: str,
                    o: MotionOptions | None = None) -> list[Waypoint]:
    o = o or MotionOptions()
    c = _seen(world, name)
    yaw = wrap_gripper_yaw(world.objects[name].yaw_rad) if name != BIN_ID else 0.0
    return [Waypoint("hover", _tup(c + (0, 0, o.point_height_m)), yaw, "keep")]


def path_waypoints(world: WorldState, x: float, y: float, z: float,
                   o: MotionOptions | None = None) -> list[Waypoint]:
    """Up to a safe height if needed, across, then down: clears cubes and bin walls."""
    o = o or MotionOptions()
    for v, (lo, hi), axis in zip((x, y, z), WORKSPACE_M, "xyz", strict=True):
        if not lo <= v <= hi:
            raise PlanningError(f"{axis}={v} m is outside the workspace {lo}..{hi} m")
    start = np.asarray(world.gripper.position_m)
    goal = np.array([x, y, z])
    yaw = 0.0
    if world.gripper.holding:
        yaw = wrap_gripper_yaw(world.objects[world.gripper.holding].yaw_rad)
    low = min(start[2], z) < o.safe_height_m - 0.05
    if low and np.linalg.norm(goal[:2] - start[:2]) > 0.05:
        return [Waypoint("up", _tup(np.array([*start[:2], o.safe_height_m])), yaw),
                Waypoint("across", _tup(np.array([x, y, o.safe_height_m])), yaw),
                Waypoint("goal", (x, y, z), yaw)]
    return [Waypoint("goal", (x, y, z), yaw)]


def home_waypoints() -> list[Waypoint]:
    return [Waypoint("home", None, 0.0, "keep", HOME_Q)]


def plan(world: WorldState, kin: PandaKinematics, waypoints: list[Waypoint],
         o: MotionOptions | None = None) -> Plan:
    """Check every waypoint with IK (seeded along the way) and estimate length and time."""
    o = o or MotionOptions()
    q = np.asarray(world.arm_q)
    pos = np.asarray(world.gripper.position_m)
    length, duration, worst = 0.0, 0.0, 0.0
    for w in waypoints:
        if w.joint_target is not None:
            nxt, _ = kin.fk(np.asarray(w.joint_target))
            q = np.asarray(w.joint_target)
            dq = np.max(np.abs(np.asarray(w.joint_target) - np.asarray(world.arm_q)))
            duration += float(dq / (kin.max_velocity.min() * 0.6))
        else:
            assert w.position_m is not None
            nxt = np.asarray(w.position_m)
            sol = kin.ik(nxt, top_down_quat(w.yaw_rad), q)
            q = sol.q
            worst = max(worst, sol.position_error_m)
            if not sol.reached(tol_m=0.01, tol_rad=0.1):
                return Plan(False, tuple(waypoints), length, duration, worst,
                            f"waypoint {w.name!r} at {[round(v, 3) for v in nxt]} is out of "
                            f"reach (IK error {sol.position_error_m * 1000:.0f} mm)")
            duration += float(np.linalg.norm(nxt - pos)) / o.ee_speed_m_s
        length += float(np.linalg.norm(nxt - pos))
        pos = nxt
        if w.gripper in ("open", "close"):
            duration += 0.4
    return Plan(True, tuple(waypoints), length, duration, worst)


def yaw_distance(a: float, b: float) -> float:
    return abs(math.remainder(a - b, math.pi / 2))
