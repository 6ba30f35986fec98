"""Benchmark the robot demo: the task suite with and without speculation, in one run.

Each configuration starts the four real processes once and runs every task
(scene reset by the task's seed, instruction, success checked on the
simulator's ground truth). Prints success rate, task time mean/p95, the
reduction speculation brings, decoder latency, loop lateness p99 and deadline
misses. Targets: success >= 90 % with the default model; zero deadline misses.

--trace PATH writes one Chrome trace of both configurations (process names
"speculation/decision", "direct/decision", ...); `rtagent report PATH` renders it.
--chaos SECONDS kills a random process (SIGKILL) every SECONDS meanwhile and reports
what survived (:mod:`demos.bench.chaos`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from demos.bench.args import hz_option, json_output, lora_choice, model_options, trace_output
from demos.bench.chaos import chaos_option, lines, monkey_for, robot_figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=None, help="run only the first N tasks")
    hz_option(parser)
    parser.add_argument("--only", choices=("speculation", "direct"),
                        help="run one configuration only")
    parser.add_argument("--foresight", action="store_true",
                        help="decode a queued instruction during the motion before it (off by "
                             "default: the figures are speculation's alone)")
    parser.add_argument("--spec-store", type=Path, metavar="DIR",
                        help="speculation's trace store and library (default: a new empty one, "
                             "so the run learns from itself only)")
    model_options(parser)
    parser.add_argument("--no-fifo", action="store_true",
                        help="run the decision loop SCHED_OTHER (default: SCHED_FIFO if permitted)")
    json_output(parser, "every figure")
    trace_output(parser, "every process of both configurations")
    chaos_option(parser, "sim, perception, actuation or decision")


def _pct(xs: list[float], q: int) -> float | None:
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1]


def _run(tasks: list[Any], speculation: bool, args: argparse.Namespace,
         trace: Any = None) -> dict[str, Any]:
    from rich.progress import Progress

    from demos.robot_session import RobotSession, Step
    from sim_envs.tabletop.config import RobotDemoConfig

    label = "speculation" if speculation else "direct"
    traced = trace is not None and trace.enabled
    cfg = RobotDemoConfig(hz=args.hz, speculation=speculation, model=args.model,
                          lora=lora_choice(args), fifo=not args.no_fifo, foresight=args.foresight,
                          trace_label=label if traced else "")
    step_ends: list[int] = []  # when each step ended (monotonic ns), to place the kills

    with Progress(transient=True) as progress, tempfile.TemporaryDirectory() as fresh:
        bar = progress.add_task(f"{label}: starting processes", total=len(tasks))

        def on_step(r: Any) -> None:
            step_ends.append(time.monotonic_ns())
            progress.update(bar, advance=1, description=f"{label}: {r.step.task_id}")

        # A fresh trace store per run unless --spec-store names one (the second run mines the first).
        env = {**(trace.env() if traced else {}),
               "RTAGENT_SPEC_DIR": str(args.spec_store or fresh)}
        session = RobotSession(
            cfg, [Step(t.instruction, t.id, t.seed) for t in tasks], turn_timeout_s=120,
            on_step=on_step, env=env, tracer=trace.tracer if traced else None)
        monkey = monkey_for(session, args)
        try:
            result = session.run()
        finally:
            if monkey is not None:
                monkey.stop()
    times = [s.task_s for s in result.steps]
    decodes = [d for s in result.steps if s.turn for d in s.turn.get("decode_ms", [])]
    loop = result.stats.get("loop", {})
    return {
        "config": label, "error": result.error,
        "tasks": len(result.steps), "success": sum(bool(s.success) for s in result.steps),
        "task_s_mean": statistics.mean(times) if times else None, "task_s_p95": _pct(times, 95),
        "decode_ms_p50": _pct(decodes, 50), "decode_ms_p95": _pct(decodes, 95),
        "lateness_p99_us": (loop.get("lateness_us") or {}).get("p99"),
        "lateness_max_us": (loop.get("lateness_us") or {}).get("max"),
        "deadline_misses": loop.get("deadline_misses"),
        "sim": result.supervisor.processes["sim"]["last_counters"] if result.supervisor else {},
        "fifo": any(s["name"] == "fifo" and s["applied"]
                    for s in result.stats.get("hardening", [])),
        "speculation": result.stats.get("speculation"),
        "speculation_live": result.stats.get("speculation_live"),
        "steps": [s.to_json() for s in result.steps],
        "chaos": None if monkey is None else robot_figures(
            monkey, result, step_ends, Path(session.supervisor.run_dir.path)
            if session.supervisor else None),
    }


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from realtime.trace_run import TraceRun
    from sim_envs.tabletop.tasks import task_suite

    tasks = task_suite()[: args.limit] if args.limit else task_suite()
    wanted = {"speculation": [True], "direct": [False], None: [True, False]}[args.only]
    with TraceRun(args.trace, run="rtagent bench robot") as trace:
        runs = [_run(tasks, spec, args, trace) for spec in wanted]
        trace.write(configs=[r["config"] for r in runs])
        written = trace.describe()
    table = Table(title=f"rtagent bench robot: {len(tasks)} tasks at {args.hz:g} Hz")
    for col in ("config", "success", "task s mean", "task s p95", "decode ms p50/p95",
                "lateness p99 µs", "max µs", "misses", "FIFO"):
        table.add_column(col)

    def f(x: Any, nd: int = 1) -> str:
        return "-" if x is None else f"{x:.{nd}f}"

    for r in runs:
        table.add_row(r["config"], f"{r['success']}/{r['tasks']}", f(r["task_s_mean"], 2),
                      f(r["task_s_p95"], 2), f"{f(r['decode_ms_p50'], 0)}/{f(r['decode_ms_p95'], 0)}",
                      f(r["lateness_p99_us"]), f(r["lateness_max_us"]), str(r["deadline_misses"]),
                      "on" if r["fifo"] else "off")
    console = Console()
    console.print(table)
    if len(runs) == 2 and runs[0]["task_s_mean"] and runs[1]["task_s_mean"]:
        cut = 1 - runs[0]["task_s_mean"] / runs[1]["task_s_mean"]
        spec = runs[0]["speculation"] or {}
        launched = spec.get("launched", 0)
        served = spec.get("hits", 0) + spec.get("joins", 0)
        console.print(f"speculation: task time {-cut:+.1%} vs direct (mean); "
                      f"{spec.get('hits', 0)} hits + {spec.get('joins', 0)} joins of {launched} "
                      f"launched ({served / launched if launched else 0:.0%} served), "
                      f"{spec.get('latency_saved_s', 0):.2f} s saved, speculative writes "
                      f"executed: {spec.get('writes_executed', 0)}")
    for r in runs:
        if r["error"]:
            console.print(f"[red]{r['config']}: {r['error']}[/]")
        if r["chaos"] is not None:
            console.print("\n".join(lines(r["config"], r["chaos"])), markup=False)
    if written is not None:
        console.print(written)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    return 0 if all(r["error"] is None for r in runs) else 1
