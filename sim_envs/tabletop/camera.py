"""A fixed pinhole camera over the table: RGB, metric depth and segmentation.

The projection is PyBullet's OpenGL one; the pinhole intrinsics (fx, fy, cx,
cy in pixels) are read off it, and :func:`deproject` turns pixels with depth
back into world points using only those intrinsics and the camera pose.

:class:`CameraNoise` makes the frames more like a real RGB-D sensor's (off by
default): Gaussian colour noise, depth noise growing with the square of the
distance, pixels without depth (0), and a light that changes direction,
strength and tint from frame to frame (with shadows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pybullet as pb

from realtime.errors import ConfigError

__all__ = ["Camera", "CameraFrame", "CameraNoise", "CameraOptions", "Intrinsics", "deproject"]


@dataclass(frozen=True)
class CameraNoise:
    """Sensor imperfections; every field 0 / False (the default) gives the renderer's frame."""

    rgb_std: float = 0.0
    """Colour noise, in 8-bit levels (per channel, per pixel)."""
    depth_std_at_1m_m: float = 0.0
    """Depth noise at 1 m; it grows with the square of the depth, as for structured
    light and stereo sensors."""
    depth_dropout: float = 0.0
    """Fraction of pixels with no depth (reported as 0)."""
    lighting: bool = False
    """A random light each frame: direction over the table, ambient/diffuse strength
    and tint, with shadows."""
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rgb_std <= 64.0:
            raise ConfigError(f"rgb_std: expected 0..64 levels, got {self.rgb_std}")
        if not 0.0 <= self.depth_std_at_1m_m <= 0.05:
            raise ConfigError(f"depth_std_at_1m_m: expected 0..0.05 m, got {self.depth_std_at_1m_m}")
        if not 0.0 <= self.depth_dropout < 0.5:
            raise ConfigError(f"depth_dropout: expected 0..0.5, got {self.depth_dropout}")

    @classmethod
    def realistic(cls, seed: int = 0) -> CameraNoise:
        """About a consumer RGB-D camera indoors: 3 levels of colour noise, 1.5 mm of
        depth noise at 1 m (3 mm at this camera's 1.3 m), 1% dropouts, varying light."""
        return cls(rgb_std=3.0, depth_std_at_1m_m=0.0015, depth_dropout=0.01, lighting=True,
                   seed=seed)

    @property
    def enabled(self) -> bool:
        return bool(self.rgb_std or self.depth_std_at_1m_m or self.depth_dropout or self.lighting)


@dataclass(frozen=True)
class CameraOptions:
    """Where the camera is and what it sees."""

    width_px: int = 320
    """Image width; 320x240 renders in ~10-20 ms on a CPU with the low-poly arm."""
    height_px: int = 240
    fov_deg: float = 50.0
    """Vertical field of view."""
    near_m: float = 0.1
    far_m: float = 3.0
    eye_m: tuple[float, float, float] = (1.25, 0.0, 0.85)
    """Camera position (world = robot base frame): in front of the table, looking back."""
    target_m: tuple[float, float, float] = (0.42, 0.0, 0.0)
    """The point the optical axis passes through."""
    noise: CameraNoise = field(default_factory=CameraNoise)

    def __post_init__(self) -> None:
        if not (32 <= self.width_px <= 1920 and 24 <= self.height_px <= 1080):
            raise ConfigError(f"camera size: expected 32..1920 x 24..1080 px, "
                              f"got {self.width_px}x{self.height_px}")
        if not 10.0 <= self.fov_deg <= 120.0:
            raise ConfigError(f"fov_deg: expected 10..120, got {self.fov_deg}")
        if not 0 < self.near_m < self.far_m:
            raise ConfigError(f"near_m/far_m: expected 0 < near < far, "
                              f"got {self.near_m}, {self.far_m}")


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels (pixel centres at integer + 0.5)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width_px: int
    height_px: int


@dataclass(frozen=True)
class CameraFrame:
    """One frame. ``depth_m`` is the distance along the optical axis, in metres."""

    rgb: np.ndarray  # (H, W, 3) uint8
    depth_m: np.ndarray  # (H, W) float32
    segmentation: np.ndarray  # (H, W) int32, one id per body (an instance mask)
    intrinsics: Intrinsics
    cam_to_world: np.ndarray  # (4, 4) float64, OpenGL camera axes (looks along -z)
    sim_time_s: float = 0.0


class Camera:
    """Fixed camera: matrices computed once, frames captured from a PyBullet client."""

    def __init__(self, options: CameraOptions | None = None) -> None:
        self.options = o = options or CameraOptions()
        self.view = pb.computeViewMatrix(o.eye_m, o.target_m, (0, 0, 1))
        self.projection = pb.computeProjectionMatrixFOV(
            o.fov_deg, o.width_px / o.height_px, o.near_m, o.far_m)
        world_to_cam = np.asarray(self.view, dtype=np.float64).reshape(4, 4).T
        self.cam_to_world = np.linalg.inv(world_to_cam)
        proj = np.asarray(self.projection, dtype=np.float64).reshape(4, 4).T
        self.intrinsics = Intrinsics(
            fx=float(proj[0, 0] * o.width_px / 2), fy=float(proj[1, 1] * o.height_px / 2),
            cx=o.width_px / 2, cy=o.height_px / 2, width_px=o.width_px, height_px=o.height_px)
        self.rng = np.random.default_rng(o.noise.seed)

    def _light(self) -> dict[str, object]:
        """A random light (direction from above the table, strength, tint), or the default."""
        if not self.options.noise.lighting:
            return {}
        rng = self.rng
        azimuth, elevation = rng.uniform(0, 2 * np.pi), rng.uniform(np.radians(35), np.radians(85))
        direction = [float(np.cos(elevation) * np.cos(azimuth)),
                     float(np.cos(elevation) * np.sin(azimuth)), float(np.sin(elevation))]
        return {"lightDirection": direction, "shadow": 1,
                "lightColor": [float(c) for c in rng.uniform(0.85, 1.0, 3)],
                "lightAmbientCoeff": float(rng.uniform(0.4, 0.75)),
                "lightDiffuseCoeff": float(rng.uniform(0.25, 0.55)),
                "lightSpecularCoeff": float(rng.uniform(0.0, 0.1))}

    def capture(self, client: int, sim_time_s: float = 0.0) -> CameraFrame:
        o = self.options
        _, _, rgba, zbuf, seg = pb.getCameraImage(
            o.width_px, o.height_px, self.view, self.projection,
            renderer=pb.ER_TINY_RENDERER, physicsClientId=client, **self._light())
        rgba = np.asarray(rgba, dtype=np.uint8).reshape(o.height_px, o.width_px, 4)
        zbuf = np.asarray(zbuf, dtype=np.float32).reshape(o.height_px, o.width_px)
        seg = np.asarray(seg, dtype=np.int32).reshape(o.height_px, o.width_px)
        n, f = o.near_m, o.far_m
        depth = (f * n / (f - (f - n) * zbuf)).astype(np.float32)  # OpenGL depth -> metres
        # Segmentation packs (link + 1) << 24 | body; keep the body (an instance id).
        seg = np.where(seg >= 0, seg & ((1 << 24) - 1), -1).astype(np.int32)
        rgb = np.ascontiguousarray(rgba[..., :3])
        if o.noise.enabled:
            rgb, depth = self._noisy(rgb, depth)
        return CameraFrame(rgb, depth, seg, self.intrinsics, self.cam_to_world, sim_time_s)

    def _noisy(self, rgb: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, rng = self.options.noise, self.rng
        if n.rgb_std:
            rgb = np.clip(rgb + rng.normal(0.0, n.rgb_std, rgb.shape), 0, 255).astype(np.uint8)
        if n.depth_std_at_1m_m:
            depth = (depth + rng.normal(0.0, 1.0, depth.shape).astype(np.float32)
                     * np.float32(n.depth_std_at_1m_m) * depth * depth)
        if n.depth_dropout:
            depth = np.where(rng.random(depth.shape) < n.depth_dropout, np.float32(0), depth)
        return rgb, depth.astype(np.float32)


def deproject(frame: CameraFrame, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """World points (N, 3) of pixels ``(rows, cols)`` from depth, intrinsics and camera pose."""
    k = frame.intrinsics
    d = frame.depth_m[rows, cols].astype(np.float64)
    x = (cols + 0.5 - k.cx) / k.fx * d
    y = -(rows + 0.5 - k.cy) / k.fy * d  # image rows go down, camera y goes up
    pts = np.stack([x, y, -d, np.ones_like(d)], axis=0)  # OpenGL camera looks along -z
    world: np.ndarray = (frame.cam_to_world @ pts)[:3].T
    return world
