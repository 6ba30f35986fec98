"""Checks of an arm command before it reaches IK: finite, within the arm's reach, well formed.

The bus already refuses non-finite and far-out numbers at decode
(:mod:`realtime.bounds`); these checks are the actuator's own, for the arm it
drives, and they also cover commands built in-process. A refused command makes
the actuator hold; :func:`refusal` names the reason (a counter key).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from realtime.errors import ConfigError

__all__ = ["REFUSALS", "Reach", "refusal"]

#: Every reason :func:`refusal` gives.
REFUSALS = ("non_finite", "unreachable", "bad_joint_target", "no_target", "ik_failed")


@dataclass(frozen=True)
class Reach:
    """Where the grasp point can go: within ``max_reach_m`` of the shoulder and above
    ``min_z_m``. The Panda's grasp point reaches 0.948 m from its shoulder (measured
    over random joint angles); a target further out cannot be reached by any pose."""

    shoulder_m: tuple[float, float, float] = (0.0, 0.0, 0.333)
    max_reach_m: float = 0.95
    min_z_m: float = -0.05

    def __post_init__(self) -> None:
        if not 0.1 <= self.max_reach_m <= 3.0:
            raise ConfigError(f"Reach.max_reach_m: expected 0.1..3.0 m, got {self.max_reach_m}")


def _finite(values: Sequence[float]) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError, OverflowError):
        return False


def refusal(ee_position_m: Sequence[float] | None, yaw_rad: float, gripper_width_m: float,
            joint_target: Sequence[float] | None, n_joints: int, reach: Reach) -> str | None:
    """Why a command with these fields must not be acted on, or None if it may."""
    if not _finite([yaw_rad, gripper_width_m]):
        return "non_finite"
    if joint_target is not None:
        if len(joint_target) != n_joints:
            return "bad_joint_target"
        return None if _finite(joint_target) else "non_finite"
    if ee_position_m is None:
        return "no_target"  # a move with neither a position nor joint angles
    if len(ee_position_m) != 3 or not _finite(ee_position_m):
        return "non_finite"
    x, y, z = (float(v) for v in ee_position_m)
    sx, sy, sz = reach.shoulder_m
    if z < reach.min_z_m or math.dist((x, y, z), (sx, sy, sz)) > reach.max_reach_m:
        return "unreachable"
    return None
