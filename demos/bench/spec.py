"""Speculative execution benchmark: the robot and voice workloads end to end.

Generates both workloads (train/test split), mines patterns and trains the
draft model on the training episodes, and replays the test episodes through
the real speculative executor on a virtual clock: without speculation (the
baseline), with each predictor (pattern, draft, combined) alone, and with a
perfect predictor (the bound), in pre-execution and think-ahead modes. Prints
a table per workload and the issue's targets; writes JSON reports and a plot.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from demos import spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out-dir", type=Path, default=Path("spec-bench"),
                        help="where the reports and the plot go")
    parser.add_argument("--workloads", default="robot,voice", help="comma-separated")
    spec.add_workload_options(parser)
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
        spec.print_table(report)
        reports.append(report)
    spec.plot(reports, args.out_dir / "spec.png")
    print(f"reports and plot in {args.out_dir}/")
    return 0
