"""Objects' pixels from an RGB-D image alone: colour classes, then connected components.

Each pixel is classified by hue, saturation and value (red, green, blue, yellow
cubes; the magenta bin; anything else: none). Neighbouring pixels (4-connected)
of one class whose depths differ by less than ``depth_jump_m`` form a
component; an object is its class's largest component plus the smaller ones
close enough to it in 3-D to be parts of it (a cube cut in two by a finger, a
bin cut by the cubes in it). Nothing here reads the renderer's segmentation.

The components are computed on runs (stretches of one class along an image
row), joined down the rows by label propagation — vectorised, a few ms a frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from realtime.errors import ConfigError
from sim_envs.tabletop.camera import CameraFrame, deproject

__all__ = ["COLOUR_CLASSES", "SegmentationOptions", "connected_components", "hue_sat_val",
           "object_pixels"]

# name -> (colour word, hue ranges in degrees)
COLOUR_CLASSES: dict[str, tuple[str, tuple[tuple[float, float], ...]]] = {
    "red_cube": ("red", ((0.0, 20.0), (340.0, 360.0))),
    "yellow_cube": ("yellow", ((35.0, 75.0),)),
    "green_cube": ("green", ((90.0, 160.0),)),
    "blue_cube": ("blue", ((200.0, 260.0),)),
    "bin": ("magenta", ((270.0, 330.0),)),
}


@dataclass(frozen=True)
class SegmentationOptions:
    min_saturation: float = 0.45
    min_value: float = 0.12
    depth_jump_m: float = 0.03
    """Neighbours further apart in depth than this are not one surface."""
    min_part_px: int = 4
    """Smaller components are noise, never parts of an object."""
    part_radius_m: Mapping[str, float] | None = None
    """How far (horizontally, between centroids) a smaller component may lie from the
    largest to be part of the same object; default: 6 cm for a cube, 25 cm for the bin."""

    def __post_init__(self) -> None:
        if not 0.0 < self.depth_jump_m <= 1.0:
            raise ConfigError(f"depth_jump_m: expected 0..1, got {self.depth_jump_m}")
        if self.min_part_px < 1:
            raise ConfigError(f"min_part_px: expected >= 1, got {self.min_part_px}")

    def radius_m(self, name: str) -> float:
        if self.part_radius_m and name in self.part_radius_m:
            return self.part_radius_m[name]
        return 0.25 if name == "bin" else 0.06


def hue_sat_val(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def colour_pixels(rgb: np.ndarray, o: SegmentationOptions) -> tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray]:
    """Rows, columns and hues of the saturated, bright-enough pixels."""
    # Cheap pre-filter (a grey pixel has max - min channel near 0), then HSV on the rest.
    r, g, b = (rgb[..., i] for i in range(3))
    spread = np.maximum(np.maximum(r, g), b).astype(np.int16) - np.minimum(np.minimum(r, g), b)
    rows, cols = np.nonzero(spread >= int(255 * o.min_saturation * o.min_value))
    h, s, v = hue_sat_val(rgb[rows, cols])
    ok = (s >= o.min_saturation) & (v >= o.min_value)
    return rows[ok], cols[ok], h[ok]


def class_map(frame: CameraFrame, o: SegmentationOptions) -> np.ndarray:
    """(H, W) int8: the index into :data:`COLOUR_CLASSES` of each pixel, -1 for none
    (also where the depth is missing)."""
    rows, cols, h = colour_pixels(frame.rgb, o)
    classes = np.full(frame.rgb.shape[:2], -1, dtype=np.int8)
    for k, (_, (_, ranges)) in enumerate(COLOUR_CLASSES.items()):
        sel = np.logical_or.reduce([(h >= lo) & (h < hi) for lo, hi in ranges])
        classes[rows[sel], cols[sel]] = k
    classes[~(frame.depth_m > 0)] = -1  # a sensor's dropouts carry no depth (0)
    return classes


def connected_components(classes: np.ndarray, depth_m: np.ndarray,
                         depth_jump_m: float) -> np.ndarray:
    """(H, W) int32 labels: 4-connected pixels of one class (>= 0) with a depth step
    below ``depth_jump_m`` share a label; -1 where the class is -1."""
    height, width = classes.shape
    valid = classes >= 0
    same_right = (valid[:, 1:] & (classes[:, 1:] == classes[:, :-1])
                  & (np.abs(depth_m[:, 1:] - depth_m[:, :-1]) < depth_jump_m))
    # A run starts at a valid pixel not joined to its left neighbour.
    starts = valid.copy()
    starts[:, 1:] &= ~same_right
    run = np.cumsum(starts.ravel()).reshape(height, width) - 1  # run id of each valid pixel
    n_runs = int(starts.sum())
    labels = np.full((height, width), -1, dtype=np.int32)
    if n_runs == 0:
        return labels
    same_down = (valid[1:] & (classes[1:] == classes[:-1])
                 & (np.abs(depth_m[1:] - depth_m[:-1]) < depth_jump_m))
    a, b = run[:-1][same_down], run[1:][same_down]
    pairs = np.unique(np.stack([a, b], axis=1), axis=0) if a.size else np.zeros((0, 2), int)
    root = np.arange(n_runs)
    while pairs.size:  # label propagation with pointer jumping: a few passes
        low = np.minimum(root[pairs[:, 0]], root[pairs[:, 1]])
        before = root.copy()
        np.minimum.at(root, pairs[:, 0], low)
        np.minimum.at(root, pairs[:, 1], low)
        root = root[root]
        if np.array_equal(root, before):
            break
    labels[valid] = root[run[valid]]
    return labels


def object_pixels(frame: CameraFrame, o: SegmentationOptions | None = None,
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Rows and columns of each object found in ``frame`` (only the objects found)."""
    o = o or SegmentationOptions()
    classes = class_map(frame, o)
    labels = connected_components(classes, frame.depth_m, o.depth_jump_m)
    rows, cols = np.nonzero(labels >= 0)
    if rows.size == 0:
        return {}
    ids, inverse, sizes = np.unique(labels[rows, cols], return_inverse=True, return_counts=True)
    comp_class = np.zeros(ids.size, dtype=np.int8)
    comp_class[inverse] = classes[rows, cols]  # (one class per component)
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for k, name in enumerate(COLOUR_CLASSES):
        mine = np.nonzero((comp_class == k) & (sizes >= o.min_part_px))[0]
        if mine.size == 0:
            continue
        biggest = mine[np.argmax(sizes[mine])]
        keep = [biggest]
        if mine.size > 1:
            centre = _centroid(frame, rows[inverse == biggest], cols[inverse == biggest])
            for c in mine:
                if c != biggest:
                    other = _centroid(frame, rows[inverse == c], cols[inverse == c])
                    if np.linalg.norm(other[:2] - centre[:2]) < o.radius_m(name):
                        keep.append(c)
        sel = np.isin(inverse, keep)
        found[name] = (rows[sel], cols[sel])
    return found


def _centroid(frame: CameraFrame, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return np.asarray(deproject(frame, rows, cols).mean(axis=0))
