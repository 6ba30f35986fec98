"""The simulator's ground truth at one instant, as outcome predicates read it.

:class:`WorldTruth` is a plain snapshot of a :class:`~sim_envs.tabletop.scene.TabletopScene`:
object poses, which cubes the gripper holds (both fingers touch them), joint
positions and the grasp point. The sim process takes one when a step starts
(``moved``/``unmoved`` compare against it) and one when it is checked; the
front-end prints the last one as the run's final world state. The agent never
sees it: it perceives the world from the camera (:mod:`sim_envs.tabletop.perception`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim_envs.tabletop.scene import BIN_ID, CUBE_IDS, TabletopScene

__all__ = ["WorldTruth"]

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class WorldTruth:
    positions: Mapping[str, Vec3]
    """Every object's centre (a cube's centre, the bin's base), world frame, metres."""
    yaws: Mapping[str, float]
    held: frozenset[str]
    """Cubes both fingers touch."""
    joint_positions: tuple[float, ...]
    """7 arm joints (rad) then 2 finger joints (m)."""
    grasp_point: Vec3
    sim_time_s: float = 0.0

    @property
    def arm_q(self) -> tuple[float, ...]:
        return self.joint_positions[:7]

    @classmethod
    def of(cls, scene: TabletopScene) -> WorldTruth:
        def vec(v: Any) -> Vec3:
            return (float(v[0]), float(v[1]), float(v[2]))

        names = (*CUBE_IDS, BIN_ID)
        return cls(positions={n: vec(scene.object_position(n)) for n in names},
                   yaws={n: scene.object_yaw(n) for n in CUBE_IDS},
                   held=frozenset(c for c in CUBE_IDS if scene.touching_gripper(c)),
                   joint_positions=tuple(float(q) for q in scene.joint_state().positions),
                   grasp_point=vec(scene.grasp_point()), sim_time_s=scene.sim_time_s)

    def to_json(self) -> dict[str, Any]:
        return {"objects": {n: {"position": [round(v, 4) for v in p],
                                **({"yaw": round(self.yaws[n], 3)} if n in self.yaws else {})}
                            for n, p in self.positions.items()},
                "holding": sorted(self.held),
                "arm_q": [round(q, 4) for q in self.arm_q],
                "finger_width_m": round(sum(self.joint_positions[7:9]), 4),
                "grasp_point": [round(v, 4) for v in self.grasp_point],
                "sim_time_s": round(self.sim_time_s, 3)}
