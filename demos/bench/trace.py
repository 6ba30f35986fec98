"""Tracing overhead: a decision-like process with tracing on vs off, same run.

Each round starts the same worker twice, each time in a fresh process: once
with tracing off (no tracer enabled, no socket opened) and once with it on
(every event published over ZeroMQ to a real TraceCollector in this process,
as `--trace` does in the demos); the order alternates between rounds. A
worker runs, for --seconds on the real clock:

- the real DeadlineLoop at --hz (16), every tick a realistic body: a 7-joint
  damped least-squares step in numpy (the kind of work a skill does), one
  Command published on a real ZeroMQ socket, and with tracing on the tick
  spans (TickTracer) and one message span per tick;
- on an agent thread (uvloop), recorded robot episodes replayed on the real
  clock (think and tool times scaled by --time-scale) through the real
  SpeculativeExecutor (patterns mined from other episodes), traced with the
  speculation hooks: tool runs, agent calls, counters, turns.

Printed per configuration (all rounds pooled): loop lateness p50/p99/max,
tick execution time p50/p99, deadline misses and overruns, task time of the
replayed episodes (mean/p95, over the episodes every run finished) and trace
events sent/dropped, then the on/off ratios. --trace PATH keeps the traced
runs' trace (`rtagent report PATH`). The default run (4 rounds of 10 s)
takes about 2 minutes; tails (p99, max) vary between runs on a shared machine,
so the p99 of every run is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from demos.bench.args import hz_option, json_output, trace_output

CONFIGS = ("off", "on")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="run time of each worker (default 10)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="rounds of off + on, order alternating (default 4)")
    hz_option(parser, "loop")
    parser.add_argument("--time-scale", type=float, default=0.25,
                        help="factor on the episodes' think and tool times (default 0.25)")
    parser.add_argument("--flush-ms", type=float, default=20.0,
                        help="how often the trace sink's thread sends queued events (default 20; "
                             "0: each event sent where it is recorded, inside the tick)")
    parser.add_argument("--seed", type=int, default=0)
    json_output(parser)
    trace_output(parser, "the traced runs")


# --------------------------------------------------------------------------- figures
def _pct(xs: Sequence[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarize(runs: Sequence[dict[str, Any]], episodes: int | None = None) -> dict[str, Any]:
    """Pool the workers' results of one configuration; task times over the first
    ``episodes`` episodes of each run (the same episodes in every run)."""
    late = [x for r in runs for x in r["lateness_us"]]
    execs = [x for r in runs for x in r["exec_us"]]
    tasks = [x for r in runs for x in r["task_s"][:episodes]]
    return {
        "runs": len(runs), "ticks": sum(r["ticks"] for r in runs),
        "lateness_p50_us": _pct(late, 50), "lateness_p99_us": _pct(late, 99),
        "lateness_max_us": max(late) if late else None,
        "exec_p50_us": _pct(execs, 50), "exec_p99_us": _pct(execs, 99),
        "deadline_misses": sum(r["deadline_misses"] for r in runs),
        "overruns": sum(r["overruns"] for r in runs),
        "episodes": len(tasks),
        "task_s_mean": sum(tasks) / len(tasks) if tasks else None,
        "task_s_p95": _pct(tasks, 95),
        "events_sent": sum(r["events_sent"] for r in runs),
        "events_dropped": sum(r["events_dropped"] for r in runs),
        "speculative_hits": sum(r["hits"] for r in runs),
    }


RATIOS = ("lateness_p50_us", "lateness_p99_us", "exec_p50_us", "exec_p99_us",
          "task_s_mean", "task_s_p95")


def figures(results: dict[str, list[dict[str, Any]]], collector: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """Per-configuration figures and on/off ratios from the workers' results."""
    # Every run replays the same episodes in the same order; compare the ones that
    # every run finished (a run's last episode may be cut by the end of its time).
    done = [len(r["task_s"]) for c in CONFIGS for r in results.get(c, [])]
    common = min(done) if done else 0
    per = {c: summarize(results.get(c, []), common) for c in CONFIGS}
    ratios: dict[str, float | None] = {}
    for k in RATIOS:
        a, b = per["on"][k], per["off"][k]
        ratios[k] = a / b if a is not None and b else None
    return {"configs": per, "ratios_on_off": ratios, "collector": collector or {}}


# --------------------------------------------------------------------------- front-end
def _worker(config: str, r: int, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    spec = {"seconds": args.seconds, "hz": args.hz, "time_scale": args.time_scale,
            "seed": args.seed, "process": f"bench r{r}", "flush_ms": args.flush_ms}
    full = {k: v for k, v in os.environ.items() if k != "RTAGENT_TRACE_ENDPOINT"}
    full.update(env)
    proc = subprocess.run([sys.executable, "-m", "demos.bench.trace", "worker", json.dumps(spec)],
                          env=full, capture_output=True, text=True,
                          timeout=args.seconds + 120, check=False)
    if proc.returncode != 0:
        from realtime.errors import RtAgentError

        raise RtAgentError(f"bench trace worker ({config}, round {r}) failed with "
                           f"{proc.returncode}: {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"config": config, "round": r, **out}


def measure(args: argparse.Namespace, on_run: Any = None) -> dict[str, Any]:
    """Run every round; returns :func:`figures` plus the raw runs."""
    from realtime.trace_run import TraceRun

    results: dict[str, list[dict[str, Any]]] = {c: [] for c in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="rtagent-bench-trace-") as tmp:
        path = Path(args.trace) if args.trace else Path(tmp) / "bench.trace.json"
        with TraceRun(path, run="rtagent bench trace") as trace:
            for r in range(args.rounds):
                order = CONFIGS if r % 2 == 0 else CONFIGS[::-1]
                for config in order:
                    got = _worker(config, r, args, trace.env() if config == "on" else {})
                    results[config].append(got)
                    if on_run is not None:
                        on_run(got)
            trace.write(seconds=args.seconds, rounds=args.rounds)
            collector = trace.summary()
    out = figures(results, {k: collector.get(k) for k in ("events_kept", "collector_dropped",
                                                          "received", "trace_senders")})
    out["trace"] = str(path) if args.trace else None
    out["runs"] = [{**{k: v for k, v in r.items() if k not in ("lateness_us", "exec_us")},
                    "lateness_p99_us": _pct(r["lateness_us"], 99)}
                   for c in CONFIGS for r in results[c]]
    return out


def _f(x: Any, nd: int = 1) -> str:
    return "-" if x is None else f"{x:,.{nd}f}"


def print_figures(out: dict[str, Any], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rtagent bench trace: {args.rounds} rounds x {args.seconds:g} s "
                        f"at {args.hz:g} Hz, tracing off vs on")
    for col in ("tracing", "ticks", "lateness p50/p99/max µs", "tick exec p50/p99 µs",
                "misses", "overruns", "episodes", "task s mean/p95", "events sent/dropped"):
        table.add_column(col)
    for c in CONFIGS:
        s = out["configs"][c]
        table.add_row(c, str(s["ticks"]),
                      f"{_f(s['lateness_p50_us'])} / {_f(s['lateness_p99_us'])} / "
                      f"{_f(s['lateness_max_us'])}",
                      f"{_f(s['exec_p50_us'])} / {_f(s['exec_p99_us'])}",
                      str(s["deadline_misses"]), str(s["overruns"]), str(s["episodes"]),
                      f"{_f(s['task_s_mean'], 3)} / {_f(s['task_s_p95'], 3)}",
                      f"{s['events_sent']:,} / {s['events_dropped']:,}")
    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(table)
    for c in CONFIGS:  # tails vary from run to run on a shared machine: show each
        p99 = [_f(r["lateness_p99_us"], 0) for r in out["runs"] if r["config"] == c]
        console.print(f"lateness p99 per run, tracing {c}: {', '.join(p99)} µs")
    ratio = out["ratios_on_off"]
    console.print("on/off: " + ", ".join(f"{k} {_f(v, 3)}x" for k, v in ratio.items()))
    col = out["collector"]
    console.print(f"collector: {col.get('events_kept', 0):,} events kept, "
                  f"{col.get('collector_dropped', 0)} dropped"
                  + (f"; trace: {out['trace']} (`rtagent report {out['trace']}`)"
                     if out["trace"] else ""))


def run(args: argparse.Namespace) -> int:
    from realtime.errors import ConfigError

    if args.seconds <= 0 or args.rounds < 1 or args.time_scale <= 0:
        raise ConfigError("expected --seconds > 0, --rounds >= 1, --time-scale > 0; got "
                          f"{args.seconds}, {args.rounds}, {args.time_scale}")
    out = measure(args)
    print_figures(out, args)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        from demos.bench.trace_worker import main

        raise SystemExit(main(json.loads(sys.argv[2])))
    print("usage: python -m demos.bench.trace worker SPEC_JSON (or: rtagent bench trace)",
          file=sys.stderr)
    raise SystemExit(2)
