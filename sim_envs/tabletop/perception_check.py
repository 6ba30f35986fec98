"""How good perception is: its world states scored against the simulator's ground truth.

:func:`score_perception` runs suite tasks' scripted solutions (cubes picked up,
carried, stacked, dropped in the bin: occlusion by the arm included) and, at
every ``every_ticks``-th tick, compares what perception says with the truth:

- detection: an object counts as in view when the renderer's instance mask has
  at least ``PerceptionOptions.min_pixels`` of its pixels (the mask is the
  *judge* here, never perception's input); detected when perception calls it
  visible in that frame; a false detection is visible without being in view;
- position error: cube centres in 3-D, the bin's centre on the table (x, y), in mm.

``rtagent bench sim`` reports it with the camera clean and noisy
(:meth:`~sim_envs.tabletop.camera.CameraNoise.realistic`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sim_envs.tabletop.camera import CameraNoise
from sim_envs.tabletop.perception import PerceptionOptions
from sim_envs.tabletop.robot import LocalRobot, RobotOptions
from sim_envs.tabletop.scene import BIN_ID, CUBE_IDS

__all__ = ["PerceptionScore", "score_perception", "scoring_tasks"]


@dataclass
class PerceptionScore:
    grouping: str
    noise: bool
    frames: int = 0
    in_view: int = 0
    detected: int = 0
    false_detections: int = 0
    cube_errors_mm: list[float] = field(default_factory=list)
    bin_errors_mm: list[float] = field(default_factory=list)
    tasks_succeeded: int = 0
    tasks: int = 0

    @property
    def detection_rate(self) -> float:
        return self.detected / self.in_view if self.in_view else float("nan")

    def to_json(self) -> dict[str, Any]:
        def pct(xs: list[float], q: float) -> float | None:
            return round(float(np.percentile(xs, q)), 2) if xs else None

        return {"grouping": self.grouping, "noise": self.noise, "frames": self.frames,
                "detection_rate": round(self.detection_rate, 4), "in_view": self.in_view,
                "false_detections": self.false_detections,
                "cube_error_mm_p50": pct(self.cube_errors_mm, 50),
                "cube_error_mm_p95": pct(self.cube_errors_mm, 95),
                "cube_error_mm_max": pct(self.cube_errors_mm, 100),
                "bin_error_mm_p50": pct(self.bin_errors_mm, 50),
                "tasks_succeeded": self.tasks_succeeded, "tasks": self.tasks}


def scoring_tasks(n: int) -> list[Any]:
    """The first ``n`` manipulation tasks of the suite, alternating kinds."""
    from sim_envs.tabletop.tasks import task_suite

    kinds = ("bin-", "stack-", "pick-", "two-in-bin-")
    by_kind = [[t for t in task_suite() if t.id.startswith(k)] for k in kinds]
    order = [t for group in zip(*by_kind, strict=False) for t in group]
    return order[:n]


def _score_tick(robot: LocalRobot, score: PerceptionScore, min_pixels: int) -> None:
    frame, world, scene = robot.frame, robot.world, robot.scene
    if frame is None or world is None:
        return
    score.frames += 1
    ids, counts = np.unique(frame.segmentation, return_counts=True)
    pixels = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    for name in (*CUBE_IDS, BIN_ID):
        body = scene.bin if name == BIN_ID else scene.cubes[name]
        in_view = pixels.get(body, 0) >= min_pixels
        seen = world.objects.get(name)
        visible = seen is not None and seen.visible and seen.seen_s == frame.sim_time_s
        if not in_view:
            score.false_detections += int(visible)
            continue
        score.in_view += 1
        if not visible:
            continue
        score.detected += 1
        error = world.position(name) - scene.object_position(name)
        if name == BIN_ID:
            score.bin_errors_mm.append(float(np.linalg.norm(error[:2])) * 1000)
        else:
            score.cube_errors_mm.append(float(np.linalg.norm(error)) * 1000)


def score_perception(tasks: list[Any], *, grouping: str = "pixels", noise: bool = False,
                     every_ticks: int = 2) -> PerceptionScore:
    """Run ``tasks`` scripted with this perception and camera; score every few ticks."""
    from sim_envs.tabletop.scripted import run_scripted

    base = RobotOptions()
    camera = replace(base.scene.camera, noise=CameraNoise.realistic() if noise else CameraNoise())
    options = replace(base, scene=replace(base.scene, camera=camera),
                      perception=PerceptionOptions(grouping=grouping))
    score = PerceptionScore(grouping, noise)

    def hook(robot: LocalRobot) -> None:
        if robot.ticks % every_ticks == 0:
            _score_tick(robot, score, options.perception.min_pixels)

    with LocalRobot(options) as robot:
        robot.tick_hooks.append(hook)
        for task in tasks:
            result = run_scripted(robot, task)
            score.tasks += 1
            score.tasks_succeeded += int(result.success)
    return score


def perception_figures(n_tasks: int) -> list[dict[str, Any]]:
    """Pixel perception and the instance-mask baseline, each with a clean and a noisy
    camera, on the same ``n_tasks`` scripted tasks (``rtagent bench sim``)."""
    tasks = scoring_tasks(n_tasks)
    return [score_perception(tasks, grouping=g, noise=n).to_json()
            for g in ("pixels", "instance_mask") for n in (False, True)]


def perception_table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table("grouping", "camera", "detected", "false", "cube mm p50", "p95", "max",
                  "bin mm p50", "tasks ok", title="perception vs ground truth (scripted tasks)")

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    for r in rows:
        table.add_row(r["grouping"], "noisy" if r["noise"] else "clean",
                      f"{r['detection_rate']:.1%} of {r['in_view']}", str(r["false_detections"]),
                      f(r["cube_error_mm_p50"]), f(r["cube_error_mm_p95"]),
                      f(r["cube_error_mm_max"]), f(r["bin_error_mm_p50"]),
                      f"{r['tasks_succeeded']}/{r['tasks']}")
    return table
