"""Benchmark the SimpleTool-style decoder against the JSON-grammar baseline.

  rtagent bench decoder [--limit N] [--sets robot,voice] [--model-name NAME | --model PATH]
                        [--schedules sequential,parallel] [--n-threads N] [--json OUT]

Same model, same prompts, same cases, all decoders loaded at once and run case
by case in turn (so load changes hit all of them alike), after one warm-up
decode per set (warm prefix cache). Per decoder: p50/p95 latency, forward passes
per answer, tokens sampled vs the same calls as JSON (compression), exact-match
and right-tool accuracy, and p50 for calls with three numeric arguments
(move_to / plan_path); then the ratios against the baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=30, help="cases per set (default 30)")
    parser.add_argument("--sets", default="robot,voice", help="eval sets, comma-separated")
    parser.add_argument("--model", help="GGUF path (default: the embedded default model)")
    parser.add_argument("--model-name", help="embedded model: smollm2-135m or gemma3-270m")
    parser.add_argument("--lora", help="llama.cpp LoRA adapter GGUF for both decoders")
    parser.add_argument("--schedules", default="sequential,parallel",
                        help="simpletool schedules to run (auto picks by measurement)")
    parser.add_argument("--n-threads", type=int, help="CPU threads (default: usable cores)")
    parser.add_argument("--n-gpu-layers", type=int, default=0, help="layers on the GPU (-1: all)")
    parser.add_argument("--json", type=Path, help="also write the figures here")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


class _Tally:
    def __init__(self) -> None:
        from models.evalsets.score import Score

        self.lat: list[float] = []
        self.lat3: list[float] = []
        self.passes: list[int] = []
        self.sampled = 0
        self.json_tokens = 0
        self.score = Score()

    def summary(self) -> dict[str, Any]:
        n = max(1, len(self.passes))
        return {
            "cases": self.score.cases, "errors": self.score.errors,
            "p50_ms": _pct(self.lat, 0.5), "p95_ms": _pct(self.lat, 0.95),
            "p50_3num_ms": _pct(self.lat3, 0.5), "n_3num": len(self.lat3),
            "passes_per_answer": sum(self.passes) / n,
            "sampled_per_answer": self.sampled / n, "json_per_answer": self.json_tokens / n,
            "compression": self.json_tokens / self.sampled if self.sampled else float("nan"),
            "exact": self.score.exact_rate, "tool": self.score.tool_rate,
        }


def _three_numeric(expected: Any) -> bool:
    return (expected is not None and len(expected) == 1
            and expected[0]["name"] in ("move_to", "plan_path"))


def run(args: argparse.Namespace) -> int:
    from control.tools import load_tool_specs
    from models.artifacts import resolve_gguf
    from models.decoder import DecodeContext, DecodeError, make_decoder
    from models.evalsets.score import load_cases
    from realtime.errors import ConfigError

    root = Path(__file__).resolve().parents[1]
    tool_files = {"robot": root / "sim_envs/robot_tools.json",
                  "voice": root / "audio/voice_tools.json"}
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    if not sets or any(s not in tool_files for s in sets):
        raise ConfigError(f"--sets: expected names from {sorted(tool_files)}, got {args.sets!r}")
    tools = {s: load_tool_specs(json.loads(tool_files[s].read_text())) for s in sets}
    cases = {s: load_cases(s, args.limit) for s in sets}
    path = resolve_gguf(args.model, name=args.model_name)
    common = {"n_threads": args.n_threads, "n_gpu_layers": args.n_gpu_layers,
              "lora_path": args.lora}
    decoders: dict[str, Any] = {"baseline": make_decoder("baseline", path, **common)}
    for sched in [s.strip() for s in args.schedules.split(",") if s.strip()]:
        dec = make_decoder("simpletool", path, schedule=sched, **common)
        decoders[f"simpletool/{dec.schedule}" if sched != "auto" else "simpletool/auto"] = dec
    tallies = {name: _Tally() for name in decoders}
    print(f"model {path.name}, threads {args.n_threads or 'default'}, "
          f"{sum(len(c) for c in cases.values())} cases ({', '.join(sets)})", file=sys.stderr)
    try:
        for s in sets:
            warm = cases[s][0]
            for dec in decoders.values():  # warm the prefix cache and any lazy set-up
                with contextlib.suppress(DecodeError):
                    dec.decode(DecodeContext(warm.messages, enums=warm.enums), tools[s])
            for i, case in enumerate(cases[s]):
                ctx = DecodeContext(case.messages, enums=case.enums)
                for name, dec in decoders.items():
                    t = tallies[name]
                    try:
                        res = dec.decode(ctx, tools[s])
                    except DecodeError:
                        t.score.add(case.expected or [], None)
                        continue
                    t.lat.append(res.latency_ms)
                    if _three_numeric(case.expected):
                        t.lat3.append(res.latency_ms)
                    t.passes.append(res.forward_passes)
                    t.sampled += res.sampled_tokens
                    t.json_tokens += res.json_tokens
                    t.score.add(case.expected or [], [c.to_json() for c in res.calls])
                print(f"\r{s} {i + 1}/{len(cases[s])}", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
    finally:
        for dec in decoders.values():
            dec.close()
    summary = {name: t.summary() for name, t in tallies.items()}
    _print(summary)
    if args.json:
        args.json.write_text(json.dumps({"model": path.name, "sets": sets, "limit": args.limit,
                                         "results": summary}, indent=2))
    return 0


def _print(summary: dict[str, dict[str, Any]]) -> None:
    head = (f"{'decoder':22} {'p50 ms':>8} {'p95 ms':>8} {'p50 3num':>9} {'passes':>7} "
            f"{'sampled':>8} {'json':>6} {'compr':>6} {'exact':>6} {'tool':>6} {'err':>4}")
    print(head)
    for name, r in summary.items():
        print(f"{name:22} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['p50_3num_ms']:9.1f} "
              f"{r['passes_per_answer']:7.1f} {r['sampled_per_answer']:8.1f} "
              f"{r['json_per_answer']:6.1f} {r['compression']:6.2f} {r['exact']:6.1%} "
              f"{r['tool']:6.1%} {r['errors']:4d}")
    base = summary["baseline"]
    for name, r in summary.items():
        if name == "baseline":
            continue
        speed = base["p50_ms"] / r["p50_ms"] if r["p50_ms"] else float("nan")
        print(f"{name}: p50 {speed:.2f}x lower than baseline (target >= 5x), compression "
              f"{r['compression']:.2f}x (target >= 4x), exact {r['exact']:.1%} vs baseline "
              f"{base['exact']:.1%}, 3-number p50 {r['p50_3num_ms']:.0f} ms (target <= 300)")
    print("note: timings depend on machine load; rerun on a quiet machine for reported figures")
