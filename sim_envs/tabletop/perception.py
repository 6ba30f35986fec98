"""Perception: camera frames + joint states -> a world state.

Objects are found in the *images*: each pixel is classified by hue and
saturation (red, green, blue, yellow cubes; the magenta bin), pixels of one
colour are grouped into connected components of the colour and depth images
(:mod:`sim_envs.tabletop.segmentation`; ``grouping="instance_mask"`` groups them
by the renderer's instance mask instead, for comparison), and their 3-D points
come from the metric depth, the pinhole intrinsics and the camera pose
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

from realtime.errors import ConfigError
from sim_envs.tabletop.camera import CameraFrame, deproject
from sim_envs.tabletop.kinematics import PandaKinematics
from sim_envs.tabletop.scene import BIN_ID, CUBE_SIZE_M, JointState
from sim_envs.tabletop.segmentation import (
    COLOUR_CLASSES,
    SegmentationOptions,
    colour_pixels,
    object_pixels,
)

__all__ = ["GripperState", "ObjectState", "Perception", "PerceptionOptions", "WorldState"]

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
    grouping: str = "pixels"
    """``pixels``: connected components of the colour and depth images (what a real
    camera allows); ``instance_mask``: the renderer's ground-truth instance mask."""
    segmentation: SegmentationOptions = field(default_factory=SegmentationOptions)
    cube_size_m: float = CUBE_SIZE_M
    hold_distance_m: float = 0.045
    """A cube this close to the grasp point, with the fingers stopped on it, is held."""
    object_hysteresis_m: float = 0.004
    """A seen object's reported position changes only when it moved more than this
    (pixel noise does not churn the world state or its version)."""
    gripper_version_m: float = 0.005
    """The world's ``version`` changes when the grasp point moved more than this."""

    def __post_init__(self) -> None:
        if self.grouping not in ("pixels", "instance_mask"):
            raise ConfigError(f"grouping: expected 'pixels' or 'instance_mask', "
                              f"got {self.grouping!r}")


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


def _fits_cube(pts: np.ndarray, centre: np.ndarray, yaw: float, half: float,
               tol_m: float = 0.005) -> bool:
    """Whether every point lies on or in the cube at ``centre``, turned by ``yaw``."""
    c, s = np.cos(yaw), np.sin(yaw)
    d = pts - centre
    local = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], axis=1)
    return bool(np.all(np.abs(local) <= half + tol_m))


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
        groups = (object_pixels(frame, o.segmentation) if o.grouping == "pixels"
                  else _by_instance_mask(frame, o.segmentation))
        for name, (colour, _) in COLOUR_CLASSES.items():
            rows, cols = groups.get(name, (np.zeros(0, int), np.zeros(0, int)))
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

    def _cube_pose(self, pts: np.ndarray,
                   last: ObjectState | None) -> tuple[tuple[float, float, float], float]:
        half = self.options.cube_size_m / 2
        z_top = float(np.percentile(pts[:, 2], 97))
        top = pts[pts[:, 2] > z_top - 0.006]
        if len(top) >= 8 and np.ptp(top[:, 0]) >= half and np.ptp(top[:, 1]) >= half:
            xy, yaw = _min_area_rect(top[:, :2])
            return (float(xy[0]), float(xy[1]), z_top - half), float(yaw)
        # A partial view (the arm hides most of the cube): if what is seen still fits
        # inside the cube where it was last seen, it has not moved; else the footprint.
        if last is not None and _fits_cube(pts, np.asarray(last.position_m), last.yaw_rad, half):
            return last.position_m, last.yaw_rad
        xy = (pts[:, :2].min(axis=0) + pts[:, :2].max(axis=0)) / 2
        return (float(xy[0]), float(xy[1]), z_top - half), float(last.yaw_rad if last else 0.0)

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


def _by_instance_mask(frame: CameraFrame, o: SegmentationOptions,
                      ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each colour's pixels on its most common body of the renderer's instance mask."""
    rows, cols, h = colour_pixels(frame.rgb, o)
    found = {}
    for name, (_, ranges) in COLOUR_CLASSES.items():
        sel = np.logical_or.reduce([(h >= lo) & (h < hi) for lo, hi in ranges])
        r, c = rows[sel], cols[sel]
        r, c = r[frame.depth_m[r, c] > 0], c[frame.depth_m[r, c] > 0]  # no depth: no point
        if r.size:
            ids, counts = np.unique(frame.segmentation[r, c], return_counts=True)
            keep = frame.segmentation[r, c] == ids[np.argmax(counts)]
            found[name] = (r[keep], c[keep])
    return found
