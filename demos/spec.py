"""Speculative tool execution: mine patterns, generate workloads, replay episodes.

  rtagent spec mine TRACES.jsonl -o PATTERNS.json
      mine PASTE-style patterns (context -> tool, argument derivations,
      success probability, support) from recorded episodes

  rtagent spec mine --recorded [--demo robot|voice] [-o PATTERNS.json]
      mine the calls the live demos recorded (their trace store in the cache dir,
      speculation/trace_store.py) into the library they load at start

  rtagent spec generate robot|voice -o DIR [--episodes 300]
      write realistic robot or voice episodes as DIR/train.jsonl and DIR/test.jsonl
  rtagent spec generate families -o DIR [--seed 0] [--family-train 300] [--family-test 150]
      write a random tool set (DIR/tools.json), training episodes of the training
      families (DIR/train.jsonl) and test episodes of every family, held-out ones
      included (DIR/test-FAMILY.jsonl); replay one with --tools/--train/--test

  rtagent spec replay --tools TOOLS.json --train TRAIN.jsonl --test TEST.jsonl --out REPORT.json
  rtagent spec replay --workload robot|voice --out REPORT.json
      replay the test episodes (each line {"id", "steps": [{"name", "arguments",
      "result", "tool_ms", "think_ms"}]}) with and without speculation on a
      virtual clock, through the real speculative executor, and report task time
      (mean, p50, p95, p99), its reduction, hit rates, waste and divergence, beside
      the perfect-predictor bounds; as a table, REPORT.json and a PNG plot.
      Works with any JSON tool specs that carry x-effect/x-speculation/x-resources.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from realtime.errors import ConfigError
from speculation.report_view import plot, print_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="spec_command", metavar="ACTION", required=True)
    m = sub.add_parser("mine", help="mine a pattern library from traces")
    m.add_argument("traces", type=Path, nargs="?", help="episodes as JSONL")
    m.add_argument("--recorded", action="store_true",
                   help="mine what the live demos recorded (instead of a file)")
    m.add_argument("--demo", choices=("robot", "voice"), help="with --recorded: this demo's only")
    m.add_argument("-o", "--out", type=Path,
                   help="pattern library (JSON); with --recorded: default the one the demo loads")
    m.add_argument("--min-support", type=int, default=None,
                   help="occurrences a context needs (default 2; recorded runs: 1)")
    m.add_argument("--show", type=int, default=15, help="print this many top patterns")
    g = sub.add_parser("generate", help="write a robot, voice or procedural workload as files")
    g.add_argument("workload", choices=["robot", "voice", "families"])
    g.add_argument("-o", "--out", type=Path, required=True, help="directory for the files")
    add_workload_options(g)
    add_family_options(g)
    r = sub.add_parser("replay", help="replay episodes with and without speculation")
    r.add_argument("--tools", type=Path, help="tool specs (JSON list with x- metadata)")
    r.add_argument("--train", type=Path, help="training episodes (JSONL)")
    r.add_argument("--test", type=Path, help="test episodes (JSONL)")
    r.add_argument("--workload", choices=["robot", "voice"],
                   help="generate this workload instead of reading --tools/--train/--test")
    add_workload_options(r)
    r.add_argument("--out", type=Path, default=Path("spec-report.json"), help="report JSON")
    r.add_argument("--plot", type=Path, help="PNG plot (default: REPORT with .png)")
    add_replay_options(r)


def add_workload_options(p: argparse.ArgumentParser) -> None:
    """How a generated workload is sized and split (also `rtagent bench spec`)."""
    p.add_argument("--episodes", type=int, default=300, help="episodes to generate")
    p.add_argument("--train-fraction", type=float, default=2 / 3, help="share for training")
    p.add_argument("--seed", type=int, default=0)


def add_family_options(p: argparse.ArgumentParser) -> None:
    """How the procedural family workloads are sized (``--seed`` picks the tool set)."""
    p.add_argument("--family-train", type=int, default=300,
                   help="training episodes (of the training families)")
    p.add_argument("--family-test", type=int, default=150, help="test episodes per family")
    p.add_argument("--kinds-per-family", type=int, default=2,
                   help="variants of each family on the tool set (tools, indices, constants)")


def family_split_from(args: argparse.Namespace, seed: int) -> Any:
    from speculation.families import family_split

    if args.family_train < 1 or args.family_test < 1 or args.kinds_per_family < 1:
        raise ConfigError(f"expected --family-train, --family-test and --kinds-per-family >= 1, "
                          f"got {args.family_train}, {args.family_test}, "
                          f"{args.kinds_per_family}")
    return family_split(seed, train_episodes=args.family_train, test_episodes=args.family_test,
                        per_family=args.kinds_per_family)


def add_replay_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--predictors", default="pattern,draft,combined",
                   help="comma-separated: pattern, draft, combined")
    p.add_argument("--top-k", type=int, default=3, help="predictions launched after each call")
    p.add_argument("--max-concurrency", type=int, default=4, help="speculative runs at once")
    p.add_argument("--max-depth", type=int, default=2, help="steps ahead to prepare")
    p.add_argument("--draft-epochs", type=int, default=150, help="draft model training epochs")
    p.add_argument("--no-online", action="store_true", help="do not learn from test episodes")


def split_workload(name: str, episodes: int, fraction: float, seed: int) -> tuple[list[Any], ...]:
    from speculation.workloads import WORKLOADS

    if episodes < 2 or not 0.0 < fraction < 1.0:
        raise ConfigError(f"expected --episodes >= 2 and 0 < --train-fraction < 1, "
                          f"got {episodes} and {fraction}")
    eps = WORKLOADS[name](episodes, seed)
    n = max(1, min(len(eps) - 1, round(len(eps) * fraction)))
    return eps[:n], eps[n:]


def replay_report(specs: Any, train: Any, test: Any, args: argparse.Namespace, label: str
                  ) -> dict[str, Any]:
    from speculation.evaluate import evaluate
    from speculation.executor import SpeculationOptions

    opts = SpeculationOptions(top_k=args.top_k, max_concurrency=args.max_concurrency,
                              max_depth=args.max_depth)
    names = [n.strip() for n in args.predictors.split(",") if n.strip()]
    return evaluate(specs, train, test, predictors=names, options=opts,
                    online=not args.no_online, draft_epochs=args.draft_epochs, label=label,
                    progress=lambda m: print(f"  {label}: {m}", flush=True))


def run(args: argparse.Namespace) -> int:
    if args.spec_command == "mine":
        return _mine(args)
    if args.spec_command == "generate" and args.workload == "families":
        from speculation.families import HELD_OUT_FAMILIES, write_files

        paths = write_files(family_split_from(args, args.seed), args.out)
        print(f"wrote {len(paths)} files to {args.out}: tools.json, train.jsonl (training "
              f"families), test-FAMILY.jsonl per family (held out: "
              f"{', '.join(HELD_OUT_FAMILIES)})")
        return 0
    if args.spec_command == "generate":
        from speculation.traces import save_jsonl

        train, test = split_workload(args.workload, args.episodes, args.train_fraction, args.seed)
        args.out.mkdir(parents=True, exist_ok=True)
        save_jsonl(train, args.out / "train.jsonl")
        save_jsonl(test, args.out / "test.jsonl")
        print(f"wrote {len(train)} training and {len(test)} test episodes to {args.out}")
        return 0
    return _replay(args)


def _mine(args: argparse.Namespace) -> int:
    from speculation.patterns import PatternLibrary
    from speculation.traces import load_jsonl

    if args.recorded:
        return _mine_recorded(args)
    if args.traces is None or args.out is None:
        raise ConfigError("spec mine needs TRACES.jsonl and -o PATTERNS.json "
                          "(or --recorded: what the live demos recorded)")
    episodes = load_jsonl(args.traces)
    lib = PatternLibrary(min_support=args.min_support or 2)
    steps = lib.update(episodes)
    lib.save(args.out)
    _show(lib, args.show)
    print(f"mined {len(episodes)} episodes ({steps} calls) -> {args.out}")
    return 0


def _mine_recorded(args: argparse.Namespace) -> int:
    from speculation.live import LIVE_MIN_SUPPORT
    from speculation.trace_store import library_path, mine_recorded, save_library, spec_dir

    if args.traces is not None:
        raise ConfigError("--recorded mines the demos' own store; give no TRACES file with it")
    demos = [args.demo] if args.demo else ["robot", "voice"]
    if args.out is not None and len(demos) > 1:
        raise ConfigError("-o with --recorded needs --demo robot or --demo voice")
    found = 0
    for demo in demos:
        where = spec_dir(demo)
        lib, read = mine_recorded(where, min_support=args.min_support or LIVE_MIN_SUPPORT)
        if not read.calls:
            print(f"{demo}: nothing recorded in {where} yet (run `rtagent {demo}` first)")
            continue
        found += 1
        out = args.out or library_path(where)
        if args.out is None:
            save_library(lib, where)
        else:
            lib.save(out)
        _show(lib, args.show)
        print(f"{demo}: mined {len(read.episodes)} recorded episodes ({read.calls} calls in "
              f"{read.files} files, {read.skipped_lines} unreadable lines skipped) -> {out}")
    return 0 if found else 1


def _show(lib: Any, n: int) -> None:
    pats = sorted(lib.patterns(), key=lambda p: -p.probability * p.support)
    print(f"{len(pats)} patterns; the {min(n, len(pats))} strongest:")
    for p in pats[:n]:
        args_text = ", ".join(f"{k} {v}" for k, v in p.arguments.items())
        print(f"  {p.context:48s} -> {p.tool}({args_text})  p={p.probability:.2f} "
              f"n={p.support}")


def _replay(args: argparse.Namespace) -> int:
    from speculation.traces import load_jsonl
    from speculation.workloads import load_specs

    if args.workload:
        specs = load_specs(args.workload)
        train, test = split_workload(args.workload, args.episodes, args.train_fraction, args.seed)
        label = args.workload
    else:
        if not (args.tools and args.train and args.test):
            raise ConfigError("replay needs --tools, --train and --test (or --workload robot|voice)")
        if not args.tools.is_file():
            raise ConfigError(f"tool specs not found: {args.tools}")
        specs = load_specs(str(args.tools))
        train, test = load_jsonl(args.train), load_jsonl(args.test)
        known = {s.name for s in specs}
        missing = sorted({s.name for e in [*train, *test] for s in e.steps} - known)
        if missing:
            raise ConfigError(f"episodes call tools not in {args.tools}: {missing}")
        label = args.test.stem
    report = replay_report(specs, train, test, args, label)
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    png = args.plot or args.out.with_suffix(".png")
    plot([report], png)
    print_table(report)
    print(f"report: {args.out}  plot: {png}")
    return 0
