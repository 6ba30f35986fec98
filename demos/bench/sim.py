"""Measure the simulator side: physics steps/s, camera render and perception time
per frame (with perception error against ground truth) at several image sizes,
perception's detection rate and position error over scripted tasks with a clean
and a noisy camera, IK time, and a scripted pick-and-place episode's speed
against real time.

Baselines measured in the same run: real time (240 physics steps per second,
one sim second per wall second) and the stock high-poly Panda visuals for the
render time. `--suite` also runs every task of the suite with its expected
tool calls (the upper bound an agent can reach) and reports the success rate.

  rtagent bench sim [--suite] [--seeds N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from demos.bench.args import json_output

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, default=4,
                        help="scenes per measurement (default 4)")
    parser.add_argument("--suite", action="store_true",
                        help="also run the whole task suite, scripted (a few minutes)")
    json_output(parser)


def _pct(xs: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def _physics(seeds: int) -> dict[str, float]:
    from sim_envs.tabletop.scene import TabletopScene

    with TabletopScene() as scene:
        scene.reset(seed=0)
        n = 240 * 2 * seeds
        t = time.perf_counter()
        scene.step(n)
        wall = time.perf_counter() - t
    return {"steps_per_s": n / wall, "realtime_factor": n / wall / 240.0}


def _render(seeds: int) -> list[dict[str, Any]]:
    import numpy as np

    from sim_envs.tabletop.camera import CameraOptions
    from sim_envs.tabletop.kinematics import PandaKinematics
    from sim_envs.tabletop.perception import Perception
    from sim_envs.tabletop.scene import CUBE_IDS, SceneOptions, TabletopScene

    rows = []
    kin = PandaKinematics()
    sizes = [(160, 120, True), (240, 180, True), (320, 240, True), (640, 480, True),
             (320, 240, False)]
    for w, h, low in sizes:
        opts = SceneOptions(lowpoly_visuals=low, camera=CameraOptions(width_px=w, height_px=h))
        render_ms, perc_ms, errs = [], [], []
        with TabletopScene(opts) as scene:
            perception = Perception(kinematics=kin)
            for seed in range(seeds):
                scene.reset(seed=seed)
                perception.reset()
                for _ in range(3):
                    t0 = time.perf_counter()
                    frame = scene.render()
                    t1 = time.perf_counter()
                    world = perception.update(frame, scene.joint_state())
                    t2 = time.perf_counter()
                    render_ms.append((t1 - t0) * 1e3)
                    perc_ms.append((t2 - t1) * 1e3)
                for c in CUBE_IDS:
                    if c in world.objects:
                        errs.append(float(np.linalg.norm(world.position(c)
                                                         - scene.object_position(c))) * 1e3)
        rows.append({"size": f"{w}x{h}", "arm_visuals": "low-poly" if low else "stock",
                     "render_ms_p50": _pct(render_ms, 50), "render_ms_p95": _pct(render_ms, 95),
                     "perception_ms_p50": _pct(perc_ms, 50),
                     "position_error_mm_p50": _pct(errs, 50),
                     "position_error_mm_max": max(errs) if errs else float("nan")})
    kin.close()
    return rows


def _ik(seeds: int) -> dict[str, float]:
    import numpy as np

    from sim_envs.tabletop.kinematics import PandaKinematics, top_down_quat

    rng = np.random.default_rng(0)
    times, errs = [], []
    with PandaKinematics() as kin:
        for _ in range(50 * seeds):
            p = np.array([rng.uniform(0.3, 0.65), rng.uniform(-0.35, 0.35),
                          rng.uniform(0.03, 0.45)])
            t = time.perf_counter()
            sol = kin.ik(p, top_down_quat(float(rng.uniform(-0.7, 0.7))), kin.home)
            times.append((time.perf_counter() - t) * 1e3)
            errs.append(sol.position_error_m * 1e3)
    return {"ik_ms_p50": _pct(times, 50), "ik_ms_p95": _pct(times, 95),
            "ik_error_mm_p50": _pct(errs, 50), "ik_error_mm_p95": _pct(errs, 95)}


def _scripted(tasks: list[Any]) -> list[tuple[Any, float]]:
    """Each task run scripted (its expected calls) on one robot: (result, wall s) pairs."""
    from sim_envs.tabletop.robot import LocalRobot
    from sim_envs.tabletop.scripted import run_scripted

    runs = []
    with LocalRobot() as robot:
        for task in tasks:
            t = time.perf_counter()
            res = run_scripted(robot, task)
            runs.append((res, time.perf_counter() - t))
    return runs


def _episode(seeds: int) -> dict[str, float]:
    from sim_envs.tabletop.tasks import task_suite

    tasks = [t for t in task_suite(tuple(range(seeds))) if t.id.startswith("bin-")][:seeds]
    runs = _scripted(tasks)
    sim = sum(res.sim_time_s for res, _ in runs)
    wall = sum(wall_s for _, wall_s in runs)
    return {"episodes": len(tasks), "succeeded": sum(res.success for res, _ in runs),
            "sim_s": sim, "wall_s": wall, "realtime_factor": sim / wall}


def _suite() -> dict[str, Any]:
    from sim_envs.tabletop.tasks import task_suite

    results = [{**res.to_json(), "wall_s": round(wall_s, 2)}
               for res, wall_s in _scripted(task_suite())]
    ok = sum(r["success"] for r in results)
    return {"tasks": len(results), "succeeded": ok, "success_rate": ok / len(results),
            "sim_s_mean": sum(r["sim_time_s"] for r in results) / len(results),
            "failed": [r["task"] for r in results if not r["success"]], "results": results}


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    seeds = max(1, int(args.seeds))
    figures: dict[str, Any] = {}

    def measured(key: str, status: str, measure: Callable[[], Any]) -> Any:
        with console.status(status):
            figures[key] = measure()
        return figures[key]

    p = measured("physics", "physics...", lambda: _physics(seeds))
    console.print(f"physics: {p['steps_per_s']:,.0f} steps/s at 240 Hz = "
                  f"{p['realtime_factor']:.1f}x real time")
    camera = measured("camera", "camera and perception...", lambda: _render(seeds))
    table = Table("size", "arm visuals", "render p50 ms", "render p95 ms", "perception p50 ms",
                  "error p50 mm", "error max mm", title="camera frame -> world state")
    for r in camera:
        table.add_row(r["size"], r["arm_visuals"], f"{r['render_ms_p50']:.1f}",
                      f"{r['render_ms_p95']:.1f}", f"{r['perception_ms_p50']:.1f}",
                      f"{r['position_error_mm_p50']:.1f}", f"{r['position_error_mm_max']:.1f}")
    console.print(table)
    stock = next(r for r in camera if r["arm_visuals"] == "stock")
    low = next(r for r in camera if r["size"] == "320x240" and r is not stock)
    console.print(f"low-poly arm visuals render {stock['render_ms_p50'] / low['render_ms_p50']:.1f}x"
                  " faster than the stock meshes at 320x240")
    from sim_envs.tabletop.perception_check import perception_figures, perception_table

    console.print(perception_table(measured("perception", "perception from pixels, clean and noisy "
                                            "camera...", lambda: perception_figures(seeds))))
    k = measured("ik", "IK...", lambda: _ik(seeds))
    console.print(f"IK (own model): p50 {k['ik_ms_p50']:.2f} ms, p95 {k['ik_ms_p95']:.2f} ms; "
                  f"error p50 {k['ik_error_mm_p50']:.2f} mm, p95 {k['ik_error_mm_p95']:.2f} mm")
    e = measured("episode", "scripted pick-and-place episodes...", lambda: _episode(seeds))
    console.print(f"pick-and-place (render + perceive + skill + IK + physics every tick): "
                  f"{e['succeeded']}/{e['episodes']} ok, {e['sim_s']:.1f} s sim in "
                  f"{e['wall_s']:.1f} s wall = {e['realtime_factor']:.2f}x real time")
    if args.suite:
        s = measured("suite", "task suite (scripted)...", _suite)
        console.print(f"task suite, scripted: {s['succeeded']}/{s['tasks']} "
                      f"({s['success_rate']:.0%}), mean {s['sim_s_mean']:.1f} s sim per task; "
                      f"failed: {', '.join(s['failed']) or 'none'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
        console.print(f"figures written to {args.json}")
    return 0
