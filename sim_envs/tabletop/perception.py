"""Perception: camera frames + joint states -> a world state.

Objects are found in the *images*: each pixel is classified by hue and
saturation (red, green, blue, yellow cubes; the magenta bin), pixels of one
colour are grouped by the instance mask, and their 3-D points come from the
metric depth, the pinhole intrinsics and the camera pose
(:func:`sim_envs.tabletop.camera.deproject`). A cube's centre is its visible top face's
minimum-area rectangle, lowered by half the (known) cube size; its yaw is that
rectangle's angle. The gripper comes from the joint encoders and the
perception side's own kinematic model. Nothing is read from the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sim_envs.tabletop.camera import CameraFrame, deproject
from sim_envs.tabletop.kinematics import PandaKinematics
from sim_envs.tabletop.scene import BIN_ID, CUBE_SIZE_M, JointState

__all__ = ["GripperState", "ObjectState", "Perception", "PerceptionOptions", "WorldState"]

# name -> (colour word, hue ranges in degrees)
COLOUR_CLASSES: dict[str, tuple[str, tuple[tuple[float, float], ...]]] = {
    "red_cube": ("red", ((0.0, 20.0), (340.0, 360.0))),
    "yellow_cube": ("yellow", ((35.0, 75.0),)),
    "green_cube": ("green", ((90.0, 160.0),)),
    "blue_cube": ("blue", ((200.0, 260.0),)),
    BIN_ID: ("magenta", ((270.0, 330.0),)),
}


@dataclass(frozen=True)
class ObjectState:
    """One perceived object. ``position_m`` is a cube's centre, or the bin's floor centre."""

    name: str
    colour: str
    position_m: tuple[float, float, float]
    yaw_rad: float
    visible: bool
    """Seen in the latest frame (else: the last place it was seen)."""
    pixels: int
    seen_s: float
    held: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "colour": self.colour,
                "position": [round(v, 4) for v in self.position_m],
                "yaw": round(self.yaw_rad, 3), "visible": self.visible, "held": self.held}


@dataclass(frozen=True)
class GripperState:
    position_m: tuple[float, float, float]
    """Grasp point (between the finger tips), from forward kinematics of the encoders."""
    width_m: float
    holding: str | None

    def to_json(self) -> dict[str, Any]:
        return {"position": [round(v, 4) for v in self.position_m],
                "width": round(self.width_m, 4), "holding": self.holding}


@dataclass(frozen=True)
class WorldState:
    """What the robot believes about the world now; the tools' and skills' only input."""

    objects: Mapping[str, ObjectState]
    gripper: GripperState
    arm_q: tuple[float, ...]
    sim_time_s: float
    seq: int = 0
    version: int = 0
    """Changes whenever what the tools would answer changes: an object moved (beyond
    the hysteresis), appeared, vanished or was picked up, or the gripper moved. Two
    world states with the same version give the same tool results."""

    def visible(self) -> list[str]:
        return [n for n, o in self.objects.items() if o.visible]

    def cubes(self) -> list[str]:
        return [n for n in self.objects if n != BIN_ID]

    def position(self, name: str) -> np.ndarray:
        return np.asarray(self.objects[name].position_m)

    def to_json(self) -> dict[str, Any]:
        return {"objects": [o.to_json() for o in self.objects.values()],
                "gripper": self.gripper.to_json(), "t": round(self.sim_time_s, 3),
                "seq": self.seq, "version": self.version}


@dataclass(frozen=True)
class PerceptionOptions:
    min_pixels: int = 12
    """Fewer pixels of a colour than this: the object is not seen in this frame."""
    min_saturation: float = 0.45
    min_value: float = 0.12
    cube_size_m: float = CUBE_SIZE_M
    hold_distance_m: float = 0.045
    """A cube this close to the grasp point, with the fingers stopped on it, is held."""
    object_hysteresis_m: float = 0.004
    """A seen object's reported position changes only when it moved more than this
    (pixel noise does not churn the world state or its version)."""
    gripper_version_m: float = 0.005
    """The world's ``version`` changes when the grasp point moved more than this."""


def _hue_sat_val(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue (degrees), saturation and value of (N, 3) uint8 pixels."""
    x = rgb.astype(np.float32) * (1.0 / 255.0)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    mx, mn = x.max(axis=-1), x.min(axis=-1)
    c = mx - mn
    safe = np.where(c > 0, c, 1.0)
    h = np.where(mx == r, ((g - b) / safe) % 6.0,
                 np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) * 60.0
    s = c / np.where(mx > 0, mx, 1.0)
    return h, s, mx


_ANGLES = np.radians(np.arange(-45.0, 45.0, 1.5))
_ROTS = np.stack([np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], -1),
                  np.stack([-np.sin(_ANGLES), np.cos(_ANGLES)], -1)], 1)  # (A, 2, 2)


def _min_area_rect(xy: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and angle (in [-pi/4, pi/4)) of the smallest rectangle around points."""
    p = np.matmul(xy[None], _ROTS.transpose(0, 2, 1))  # (A, N, 2): every angle at once
    ext = p.max(axis=1) - p.min(axis=1)
    k = int(np.argmin(ext[:, 0] * ext[:, 1]))
    mid = (p[k].min(axis=0) + p[k].max(axis=0)) / 2
    return _ROTS[k].T @ mid, float(_ANGLES[k])


@dataclass
class Perception:
    """Stateful perception: remembers where an object was last seen."""

    options: PerceptionOptions = field(default_factory=PerceptionOptions)
    kinematics: PandaKinematics | None = None
    _memory: dict[str, ObjectState] = field(default_factory=dict)
    _seq: int = 0
    _version: int = 0
    _signature: tuple[object, ...] = ()
    _version_grasp: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kinematics is None:
            self.kinematics = PandaKinematics()

    def reset(self) -> None:
        self._memory.clear()
        self._signature, self._version_grasp = (), None
        self._version += 1

    def update(self, frame: CameraFrame | None, joints: JointState) -> WorldState:
        """A new world state; with ``frame=None`` only the gripper is refreshed (encoders)."""
        assert self.kinematics is not None
        grasp, _ = self.kinematics.fk(joints.arm_q)
        if frame is not None:
            self._see(frame)
        width = joints.finger_width_m
        holding = self._held(grasp, width)
        objects = {}
        for name, obj in self._memory.items():
            if name == holding:
                # The hand hides the top face; the encoders know where the grasp point is.
                p = obj.position_m if obj.visible else tuple(grasp)
                obj = replace(obj, position_m=(p[0], p[1], float(grasp[2])), held=True)
            objects[name] = obj
        self._seq += 1
        gripper = GripperState((float(grasp[0]), float(grasp[1]), float(grasp[2])), width, holding)
        signature = (holding, round(width, 2), *((n, ob.position_m, ob.yaw_rad, ob.visible)
                                                 for n, ob in objects.items()))
        moved = self._version_grasp is None or float(
            np.linalg.norm(grasp - self._version_grasp)) > self.options.gripper_version_m
        if signature != self._signature or moved:
            self._version += 1
            self._signature, self._version_grasp = signature, grasp
        return WorldState(objects, gripper, tuple(float(q) for q in joints.arm_q),
                          joints.sim_time_s, self._seq, self._version)

    def _see(self, frame: CameraFrame) -> None:
        o = self.options
        # Cheap pre-filter (a grey pixel has max - min channel near 0), then HSV on the rest.
        r, g, b = (frame.rgb[..., i] for i in range(3))
        spread = (np.maximum(np.maximum(r, g), b).astype(np.int16)
                  - np.minimum(np.minimum(r, g), b))
        cand_r, cand_c = np.nonzero(spread >= int(255 * o.min_saturation * o.min_value))
        h, s, v = _hue_sat_val(frame.rgb[cand_r, cand_c])
        ok = (s >= o.min_saturation) & (v >= o.min_value)
        cand_r, cand_c, h = cand_r[ok], cand_c[ok], h[ok]
        for name, (colour, ranges) in COLOUR_CLASSES.items():
            sel = np.logical_or.reduce([(h >= lo) & (h < hi) for lo, hi in ranges])
            rows, cols = self._largest_instance(cand_r[sel], cand_c[sel], frame.segmentation)
            if rows.size < o.min_pixels:
                if name in self._memory:
                    self._memory[name] = replace(self._memory[name], visible=False,
                                                 pixels=int(rows.size))
                continue
            pts = deproject(frame, rows, cols)
            if name == BIN_ID:
                pos, yaw = self._bin_pose(pts)
            else:
                pos, yaw = self._cube_pose(pts, self._memory.get(name))
            last = self._memory.get(name)
            if (last is not None and last.visible
                    and np.linalg.norm(np.subtract(pos, last.position_m)) < o.object_hysteresis_m
                    and abs(yaw - last.yaw_rad) < 0.05):
                pos, yaw = last.position_m, last.yaw_rad  # noise, not motion
            self._memory[name] = ObjectState(name, colour, pos, yaw, True, int(rows.size),
                                             frame.sim_time_s)

    @staticmethod
    def _largest_instance(rows: np.ndarray, cols: np.ndarray,
                          seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if rows.size == 0:
            return rows, cols
        ids, counts = np.unique(seg[rows, cols], return_counts=True)
        keep = seg[rows, cols] == ids[np.argmax(counts)]
        return rows[keep], cols[keep]

    def _cube_pose(self, pts: np.ndarray,
                   last: ObjectState | None) -> tuple[tuple[float, float, float], float]:
        half = self.options.cube_size_m / 2
        z_top = float(np.percentile(pts[:, 2], 97))
        top = pts[pts[:, 2] > z_top - 0.006]
        if len(top) >= 8:
            xy, yaw = _min_area_rect(top[:, :2])
            # A partly hidden top face: fall back to the footprint of every point.
            if np.ptp(top[:, 0]) < half or np.ptp(top[:, 1]) < half:
                xy = (pts[:, :2].min(axis=0) + pts[:, :2].max(axis=0)) / 2
                yaw = last.yaw_rad if last else yaw
        else:
            xy = (pts[:, :2].min(axis=0) + pts[:, :2].max(axis=0)) / 2
            yaw = last.yaw_rad if last else 0.0
        return (float(xy[0]), float(xy[1]), z_top - half), float(yaw)

    @staticmethod
    def _bin_pose(pts: np.ndarray) -> tuple[tuple[float, float, float], float]:
        lo = np.percentile(pts[:, :2], 1, axis=0)
        hi = np.percentile(pts[:, :2], 99, axis=0)
        xy = (lo + hi) / 2
        return (float(xy[0]), float(xy[1]), float(np.percentile(pts[:, 2], 2))), 0.0

    def _held(self, grasp: np.ndarray, width: float) -> str | None:
        o = self.options
        if not 0.6 * o.cube_size_m <= width <= o.cube_size_m + 0.008:
            return None
        best, best_d = None, o.hold_distance_m
        for name, obj in self._memory.items():
            if name == BIN_ID:
                continue
            d = float(np.linalg.norm(np.asarray(obj.position_m) - grasp))
            if d < best_d:
                best, best_d = name, d
        return best
