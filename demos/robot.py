"""The robot demo: a simulated Franka Panda arm that follows instructions.

Five processes linked by ZeroMQ — sim (PyBullet, 240 Hz physics), camera
(draws the sim's poses), perception (objects from camera images), decision (a
deadline loop at --hz running the agent: SimpleTool-style decoder, speculative
executor, parallel tool calls) and actuation (IK, limits, watchdog) — started
and watched by a supervisor.

  rtagent robot                                   three tasks from the suite
  rtagent robot "put the red cube in the bin"     your own instruction(s)
  rtagent robot --task bin-red-0 --task stack-blue-green-1
  rtagent robot -i                                type instructions, one per line
  rtagent robot "stack the blue cube on the red one" --expect "on(blue_cube, red_cube)"

--expect PRED (one per instruction, in order) is checked on the simulator's own
state when the instruction is done: inside(a, bin), on(a, b|table), held(a),
height(a) > m, distance(a, b) < m, moved(a, left|right|forward|back|up|down, m)
(since the instruction started; forward = away from the arm's base, left = the
arm's left), unmoved(a), at_home(), pointing_at(a), gripper_at(x, y, z), with
and / or / not and parentheses; distances in metres or with cm/mm. A bad
predicate is refused before anything starts; one that does not hold makes the
exit status 1.

At the end it prints a summary: success (for a failed check, each term's
value), task time, decisions, decoder latency p50/p95, speculation hits and
time saved, loop lateness p99 and deadline misses. --json writes it all (each
step's predicate and term values, and the final world state: object poses,
what the gripper holds, joint positions); --record writes an animated GIF from
the camera; --trace PATH writes a Chrome trace / Perfetto JSON of every process
(ticks, messages, decodes, tool calls served from speculation or run
directly), which `rtagent report PATH` turns into an HTML report (or open it
in ui.perfetto.dev).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

DEFAULT_TASKS = ("bin-red_cube-s0", "stack-blue_cube-on-yellow_cube-s1", "point-green_cube-s2")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("instructions", nargs="*", help="instructions to carry out, in order")
    parser.add_argument("--expect", action="append", default=[], metavar="PRED",
                        help="what should be true after an instruction, e.g. "
                             "'on(blue_cube, red_cube) and not held(blue_cube)'; one per "
                             "instruction, in order, checked by the simulator")
    parser.add_argument("--task", action="append", default=[], metavar="ID",
                        help="a task from the suite (scene seed + success check); repeatable. "
                             "`--task list` lists them")
    parser.add_argument("-i", "--interactive", action="store_true", help="read instructions from stdin")
    parser.add_argument("--seed", type=int, default=0, help="scene seed for free instructions (default 0)")
    parser.add_argument("--hz", type=float, default=16.0, help="decision loop rate, 10..16 (default 16)")
    parser.add_argument("--no-speculation", action="store_true", help="run tools only when called")
    parser.add_argument("--no-foresight", action="store_true",
                        help="decode each instruction only when the previous one is done (by "
                             "default the next is decoded while a motion runs, on the world it "
                             "should leave, and kept if perception then agrees)")
    parser.add_argument("--decoder", default="simpletool", help="simpletool (default) or baseline")
    parser.add_argument("--model", metavar="PATH", help="a GGUF model (default: embedded SmolLM2-135M)")
    parser.add_argument("--lora", metavar="PATH", help="a llama.cpp LoRA adapter (default: the shipped one)")
    parser.add_argument("--no-lora", action="store_true", help="decode with the base model only")
    parser.add_argument("--camera-noise", action="store_true",
                        help="a camera with sensor noise (colour, depth, dropouts) and a light "
                             "that changes every frame")
    parser.add_argument("--gui", action="store_true", help="show the PyBullet window (needs a display)")
    parser.add_argument("--fifo", action=argparse.BooleanOptionalAction, default=True,
                        help="run the decision and physics loops SCHED_FIFO if permitted (default "
                             "on; the summary says whether it was)")
    parser.add_argument("--json", metavar="PATH", help="write the run's figures as JSON")
    parser.add_argument("--record", metavar="PATH.gif", help="write an animated GIF from the sim camera")
    parser.add_argument("--trace", metavar="PATH", help="write a Chrome trace / Perfetto JSON of every "
                        "process (then: rtagent report PATH)")
    parser.add_argument("--turn-timeout-s", type=float, default=90.0,
                        help="give up on an instruction after this long (default 90)")


def _steps(args: argparse.Namespace) -> list[Any]:
    from demos.robot_session import Step
    from realtime.errors import ConfigError
    from sim_envs.tabletop.predicates import parse
    from sim_envs.tabletop.tasks import get_task

    if args.expect and len(args.expect) != len(args.instructions):
        raise ConfigError(f"--expect: got {len(args.expect)} for {len(args.instructions)} "
                          "instruction(s); give one --expect per instruction, in order")
    for text in args.expect:
        parse(text)  # a bad predicate is refused here, before any process starts
    expects = args.expect or [None] * len(args.instructions)
    steps = [Step(text, seed=args.seed if i == 0 else None, expect=expect)
             for i, (text, expect) in enumerate(zip(args.instructions, expects, strict=True))]
    for task_id in args.task:
        task = get_task(task_id)
        steps.append(Step(task.instruction, task.id, task.seed))
    if args.interactive:
        print("instructions, one per line (Ctrl-D to finish):", file=sys.stderr)
        steps += [Step(line.strip()) for line in sys.stdin if line.strip()]
    if not steps:
        steps = [Step(get_task(t).instruction, t, get_task(t).seed) for t in DEFAULT_TASKS]
    return steps


def summarize(result: Any) -> dict[str, Any]:
    """The figures a user wants at the end of a run."""
    steps = [s.to_json() for s in result.steps]
    checked = [s for s in result.steps if s.success is not None]
    decodes = [d for s in result.steps if s.turn for d in s.turn.get("decode_ms", [])]
    stats = result.stats or {}
    loop = stats.get("loop", {})
    spec = stats.get("speculation", {})
    lat = loop.get("lateness_us", {}) or {}

    def pct(xs: list[float], q: float) -> float | None:
        return round(statistics.quantiles(xs, n=100)[q - 1], 1) if len(xs) >= 2 else (
            round(xs[0], 1) if xs else None)

    return {
        "steps": steps,
        "ok": sum(s.ok for s in result.steps), "total": len(result.steps),
        "success": sum(bool(s.success) for s in checked), "checked": len(checked),
        "task_s_mean": round(statistics.mean([s.task_s for s in result.steps]), 2) if steps else None,
        "decisions": len(decodes),
        "foreseen": sum(bool(s.turn and s.turn.get("foreseen")) for s in result.steps),
        "foreseen_discarded": sum(bool(s.turn and s.turn.get("foreseen") is False)
                                  for s in result.steps),
        "decode_ms_p50": pct(decodes, 50), "decode_ms_p95": pct(decodes, 95),
        "speculation": {k: spec.get(k) for k in ("hits", "joins", "launched", "dry_runs",
                                                 "latency_saved_s", "writes_executed") if k in spec},
        "loop": {"hz": loop.get("hz"), "ticks": loop.get("ticks"),
                 "fifo": any(s["name"] == "fifo" and s["applied"]
                             for s in stats.get("hardening", [])),
                 "lateness_p99_us": _round(lat.get("p99")), "lateness_max_us": _round(lat.get("max")),
                 "deadline_misses": loop.get("deadline_misses")},
        "error": result.error,
        "world": result.world,
        "sim": _counters(result, "sim", ("ticks", "deadline_misses", "dropped_ms")),
        "camera": _counters(result, "camera", ("frames", "frames_reused", "render_ms_max")),
    }


def _counters(result: Any, process: str, names: tuple[str, ...]) -> dict[str, Any]:
    """A process's last heartbeat counters (the sim's loop misses, the camera's frames)."""
    report = result.supervisor.processes.get(process, {}) if result.supervisor else {}
    last = report.get("last_counters", {})
    return {n: last.get(n) for n in names}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="rtagent robot")
    for col in ("instruction", "calls", "result", "time"):
        table.add_column(col)
    for s in summary["steps"]:
        calls = ", ".join(c["name"] + "(" + ", ".join(f"{k}={v}" for k, v in c["arguments"].items())
                          + ")" for c in (s["turn"] or {}).get("calls", [])) or "-"
        verdict = ("success" if s["success"] else "FAILED") if s["success"] is not None else (
            "done" if s["ok"] else "failed")
        if s["expect"] and not s["success"]:  # which terms held, which did not
            verdict += " (" + ", ".join(
                f"{t['term']}: {str(t['value']).lower()}"
                + (f" [{t['measured']:g}]" if t.get("measured") is not None else "")
                for t in s["expect"]["terms"]) + ")"
        table.add_row(s["instruction"], calls, verdict + (f": {s['error']}" if s["error"] else ""),
                      f"{s['task_s']:.1f} s")
    console = Console()
    console.print(table)
    loop, spec = summary["loop"], summary["speculation"]
    sim, cam = summary["sim"], summary["camera"]
    console.print(
        f"tasks: {summary['success']}/{summary['checked']} succeeded (checked by the simulator), "
        f"{summary['ok']}/{summary['total']} carried out; mean task time {summary['task_s_mean']} s\n"
        f"decisions: {summary['decisions']}, decoder latency p50 {summary['decode_ms_p50']} ms, "
        f"p95 {summary['decode_ms_p95']} ms; decoded while the previous motion ran: "
        f"{summary['foreseen']} kept, {summary['foreseen_discarded']} discarded\n"
        f"speculation: {spec.get('hits', 0)} hits + {spec.get('joins', 0)} joins of "
        f"{spec.get('launched', 0)} launched ({spec.get('dry_runs', 0)} dry runs), "
        f"{spec.get('latency_saved_s', 0):.3f} s saved, speculative writes {spec.get('writes_executed', 0)}\n"
        f"loop: {loop['ticks']} ticks at {loop['hz']} Hz, SCHED_FIFO {'on' if loop['fifo'] else 'off'}, "
        f"lateness p99 {loop['lateness_p99_us']} µs, "
        f"max {loop['lateness_max_us']} µs, deadline misses {loop['deadline_misses']}\n"
        f"sim: {sim['ticks']} ticks, deadline misses {sim['deadline_misses']}, "
        f"{sim['dropped_ms']} ms of physics dropped; camera: {cam['frames']} frames "
        f"({cam['frames_reused']} unchanged, not redrawn), render max {cam['render_ms_max']} ms")
    if summary["error"]:
        console.print(f"[red]error:[/] {summary['error']}")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from demos.robot_session import RobotSession, save_gif
    from realtime.errors import ConfigError
    from realtime.trace_run import TraceRun
    from sim_envs.tabletop.config import RobotDemoConfig
    from sim_envs.tabletop.tasks import task_suite

    if args.task == ["list"]:
        for t in task_suite():
            print(f"{t.id:28s} seed {t.seed}  {t.instruction}")
        return 0
    if not 10.0 <= args.hz <= 16.0:
        raise ConfigError(f"--hz: expected 10..16, got {args.hz}")
    cfg = RobotDemoConfig(
        seed=args.seed, hz=args.hz, gui=args.gui, decoder=args.decoder, model=args.model,
        lora=None if args.no_lora else (args.lora or "default"),
        speculation=not args.no_speculation, foresight=not args.no_foresight, fifo=args.fifo,
        camera_noise=args.camera_noise)
    steps = _steps(args)  # refuses a bad --expect before anything starts
    console = Console(stderr=True)
    status = console.status("starting the sim, camera, perception, actuation and decision processes…")
    status.start()

    def on_status(s: dict[str, Any]) -> None:
        status.update(f"[bold]{s['instruction']}[/]  {s['elapsed_s']:.1f} s  skill "
                      f"{s.get('skill') or '-'}:{s.get('phase') or '-'}  tick {s['tick']}  "
                      f"misses {s['misses']}")

    def on_step(r: Any) -> None:
        console.log(f"{r.step.instruction!r}: {'ok' if r.ok else 'failed'}"
                    + (f", success={r.success}" if r.success is not None else "")
                    + f" in {r.task_s:.1f} s")

    with TraceRun(args.trace, run="rtagent robot", config=cfg.to_json()) as trace:
        session = RobotSession(cfg, steps, turn_timeout_s=args.turn_timeout_s,
                               record_every_s=0.2 if args.record else 0.0,
                               on_status=on_status, on_step=on_step,
                               env=trace.env(), tracer=trace.tracer)
        try:
            result = session.run()
        finally:
            status.stop()
        trace.write(error=result.error)
        if (written := trace.describe()) is not None:
            console.log(written)
    summary = summarize(result)
    summary["supervisor"] = result.supervisor.processes if result.supervisor else {}
    _print_summary(summary)
    if args.json:
        Path(args.json).write_text(json.dumps({**summary, "stats": result.stats}, indent=1))
    if args.record and result.frames:
        console.log(f"wrote {save_gif(result.frames, args.record)} ({len(result.frames)} frames)")
    unmet = [s for s in result.steps if s.step.expect is not None and not s.success]
    return 0 if result.error is None and summary["ok"] == summary["total"] and not unmet else 1
