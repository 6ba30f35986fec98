"""Speculative execution benchmark: the robot and voice workloads end to end, and with
--families procedural workloads split by family.

Generates both workloads (train/test split), mines patterns and trains the
draft model on the training episodes, and replays the test episodes through
the real speculative executor on a virtual clock: without speculation (the
baseline), with each predictor (pattern, draft, combined) alone, and with a
perfect predictor (the bound), in pre-execution and think-ahead modes. Prints
a table per workload and the issue's targets; writes JSON reports and a plot.

With --families it also draws a random tool set (per --worlds), trains on
episodes of the training families only and replays test episodes of every
family: the held-out families' shapes never occur in training (the
predictors learn them online, from the test episodes already replayed, as a
deployment would). Prints a table per family, a summary with a row per
family, and the targets on the held-out families: the combined predictor's
share of the bound, top-1 and overhead (think-ahead mode).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from demos import spec
from speculation.report_view import plot, print_table

FAMILY_TARGETS = {"fraction_of_bound": 0.8, "top1": 0.5, "overhead_core_s_per_s_saved": 0.02}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out-dir", type=Path, default=Path("spec-bench"),
                        help="where the reports and the plot go")
    parser.add_argument("--workloads", default="robot,voice",
                        help="comma-separated (empty: none, e.g. with --families)")
    parser.add_argument("--families", action="store_true",
                        help="also train on the training families and report on all families")
    parser.add_argument("--worlds", type=int, default=1,
                        help="random tool sets for --families (seeds --seed, --seed+1, ...)")
    spec.add_workload_options(parser)
    spec.add_family_options(parser)
    spec.add_replay_options(parser)


def run(args: argparse.Namespace) -> int:
    from speculation.workloads import load_specs

    args.out_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    for name in [w.strip() for w in args.workloads.split(",") if w.strip()]:
        train, test = spec.split_workload(name, args.episodes, args.train_fraction, args.seed)
        report = spec.replay_report(load_specs(name), train, test, args, name)
        (args.out_dir / f"{name}.json").write_text(json.dumps(report, indent=1),
                                                   encoding="utf-8")
        print_table(report)
        reports.append(report)
    if reports:
        plot(reports, args.out_dir / "spec.png")
    if args.families:
        run_families(args)
    print(f"reports in {args.out_dir}/")
    return 0


def run_families(args: argparse.Namespace) -> dict[str, Any]:
    """Every family's report per world, the summaries and the targets (also as JSON)."""
    from realtime.errors import ConfigError
    from speculation.evaluate import evaluate, summarize, train_predictors
    from speculation.executor import SpeculationOptions
    from speculation.families import FAMILIES

    if args.worlds < 1:
        raise ConfigError(f"--worlds: expected >= 1, got {args.worlds}")
    names = [n.strip() for n in args.predictors.split(",") if n.strip()]
    opts = SpeculationOptions(top_k=args.top_k, max_concurrency=args.max_concurrency,
                              max_depth=args.max_depth)
    out = args.out_dir / "families"
    out.mkdir(parents=True, exist_ok=True)
    per_family: dict[str, list[dict[str, Any]]] = {f: [] for f in FAMILIES}
    for world in range(args.seed, args.seed + args.worlds):
        split = spec.family_split_from(args, world)
        training = train_predictors(split.train, names, args.draft_epochs,
                                    lambda m, w=world: print(f"  world {w}: {m}", flush=True))
        for family, test in split.tests.items():
            tag = "held out" if FAMILIES[family].held_out else "train"
            report = evaluate(split.toolset.specs(), split.train, test, predictors=names,
                              options=opts, online=not args.no_online, training=training,
                              label=f"{family} ({tag}, world {world})")
            (out / f"{family}-{world}.json").write_text(json.dumps(report, indent=1),
                                                        encoding="utf-8")
            print_table(report)
            per_family[family].append(report)
    best = "combined" if "combined" in names else names[-1]
    summary = {
        "predictor": best, "worlds": args.worlds,
        "families": {f: {**summarize(reps, best), "held_out": FAMILIES[f].held_out}
                     for f, reps in per_family.items()},
        "held_out": summarize([r for f, reps in per_family.items() if FAMILIES[f].held_out
                               for r in reps], best),
        "seen": summarize([r for f, reps in per_family.items() if not FAMILIES[f].held_out
                           for r in reps], best),
    }
    summary["targets"] = family_targets(summary["held_out"])
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print_family_summary(summary)
    return summary


def family_targets(held_out: dict[str, float]) -> dict[str, bool]:
    return {
        "fraction_of_bound>=0.8": held_out["fraction_of_bound"] >= FAMILY_TARGETS[
            "fraction_of_bound"],
        "top1>=50%": held_out["top1"] >= FAMILY_TARGETS["top1"],
        "overhead<=0.02": held_out["overhead_core_s_per_s_saved"] <= FAMILY_TARGETS[
            "overhead_core_s_per_s_saved"],
        "zero_divergence": held_out["divergent_episodes"] == 0,
        "zero_speculative_writes": held_out["spec_writes_executed"] == 0,
    }


def print_family_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"families ({summary['predictor']}, think-ahead, {summary['worlds']} "
                    "tool set(s)); held out: never in training")
    for col in ("family", "split", "of bound", "top-1", "ovh core-s/s", "diverge",
                "spec writes"):
        t.add_column(col, justify="left" if col in ("family", "split") else "right")

    def row(name: str, split: str, s: dict[str, Any]) -> None:
        t.add_row(name, split, f"{s['fraction_of_bound']:.0%}", f"{s['top1']:.0%}",
                  f"{s['overhead_core_s_per_s_saved']:.4f}", str(s["divergent_episodes"]),
                  str(s["spec_writes_executed"]))

    for name, s in summary["families"].items():
        row(name, "held out" if s["held_out"] else "train", s)
    row("all held out", "held out", summary["held_out"])
    row("all seen", "train", summary["seen"])
    console = Console(width=120)
    console.print(t)
    console.print("targets (held-out families): " + ", ".join(
        f"{k}={v}" for k, v in summary["targets"].items()))
