"""Benchmark the SimpleTool-style decoder against the JSON-grammar baseline, and the
base model against base + the shipped LoRA adapter.

  rtagent bench decoder [--limit N] [--sets robot,voice,heldout,bfcl_simple,...]
                        [--model-name NAME | --model PATH]
                        [--schedules sequential,parallel] [--lora PATH | --no-lora]
                        [--no-baseline] [--n-threads N] [--json OUT]

Same model, same prompts, same cases, all decoders loaded at once and run case
by case in turn (so load changes hit all of them alike), after one warm-up
decode per set (warm prefix cache). Per decoder: p50/p95 latency, forward passes
per answer, tokens sampled vs the same calls as JSON (compression), exact-match
and right-tool accuracy, and p50 for calls with three numeric arguments
(move_to / plan_path); then the ratios against the baseline.

The adapter column: the first simpletool schedule again with the LoRA adapter
(``--lora``; default: the one shipped for this model), scored per set against
the same decoder without it: exact match and right tool on the in-domain eval
sets (robot, voice; never seen in training) and on ``heldout``, requests the
tune data generator builds only from held-out phrasings and values (seed 0),
and p50 latency (target: at most +10%).

``bfcl_simple``, ``bfcl_multiple``, ``bfcl_parallel``, ``bfcl_parallel_multiple``: the
Berkeley Function Calling Leaderboard's cases (:mod:`models.evalsets.bfcl`; the
``bfcl-eval`` package's data, Apache-2.0), each with its own tools, scored by BFCL's AST
match: an external yardstick the project did not write and never trains or tunes on.
Per set and decoder: exact (AST for BFCL), right tool, p50 and its ratio to the baseline.

llama.cpp's OpenMP threads spin briefly at each barrier before they sleep (this
process has the cores to itself; see ``models.llama_backend.wait_policy``): run with
OMP_WAIT_POLICY=PASSIVE to measure as the demos' decision processes run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any

from demos.bench.args import json_output, lora_choice, model_options

if TYPE_CHECKING:
    from models.evalsets.tally import Tally


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=30,
                        help="cases per set, spread evenly over it (default 30)")
    parser.add_argument("--sets", default="robot,voice,heldout",
                        help="eval sets, comma-separated: robot, voice, compound (several calls "
                        "per request), heldout (generated held-out phrasings over both tool sets), "
                        "bfcl_simple, bfcl_multiple, bfcl_parallel, bfcl_parallel_multiple (the BFCL "
                        "benchmark's)")
    model_options(parser, embedded_names=True, threads=True)  # --lora: the adapter column
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the JSON-grammar baseline (only simpletool, base vs adapter)")
    parser.add_argument("--schedules", default="sequential,parallel",
                        help="simpletool schedules to run (auto picks by measurement)")
    json_output(parser, "the figures (a row per case and decoder)")


def run(args: argparse.Namespace) -> int:
    from models.artifacts import describe_gguf
    from models.decoder import DecodeContext, DecodeError
    from models.evalsets.bfcl import CATEGORIES, load_bfcl, model_output
    from models.evalsets.bfcl_check import ast_match
    from models.evalsets.score import EVALSETS, load_cases
    from models.evalsets.tally import Tally, decode_case, heldout_cases, spread
    from models.factory import make_decoder
    from models.llama_backend import wait_policy
    from models.resolve import resolve_model
    from realtime.errors import ConfigError
    from speculation.workloads import SPEC_FILES, load_specs

    wait_policy("spin")  # one process with the cores to itself (before any model loads)
    tool_files = dict(SPEC_FILES)
    bfcl_sets = {f"bfcl_{c}": c for c in CATEGORIES}
    names = [*EVALSETS, "heldout", *bfcl_sets]
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    if not sets or any(s not in names for s in sets):
        raise ConfigError(f"--sets: expected names from {names}, got {args.sets!r}")
    tools = {s: load_specs(s) for s in tool_files}
    cases: dict[str, list[tuple[Any, list[Any]]]] = {}
    judges: dict[tuple[str, str], Any] = {}  # BFCL's AST match, per case
    for s in sets:
        if s in bfcl_sets:
            loaded = load_bfcl(bfcl_sets[s], args.limit)
            cases[s] = [(b.case, list(b.tools)) for b in loaded]
            for b in loaded:
                judges[s, b.case.id] = _bfcl_judge(b, ast_match, model_output)
        else:
            cases[s] = (heldout_cases(args.limit, tool_files) if s == "heldout"
                        else [(c, tools[c.toolset_in(s)])
                              for c in spread(load_cases(s), args.limit)])
    plain = resolve_model(args.model or args.model_name, lora=None)
    path = plain.gguf
    choice = lora_choice(args)
    with_lora = None if choice is None else resolve_model(path, choice)
    lora = with_lora.adapter if with_lora is not None else None
    common = {"n_threads": args.n_threads, "n_gpu_layers": args.n_gpu_layers}
    decoders: dict[str, Any] = {}
    if not args.no_baseline:
        decoders["baseline"] = make_decoder("baseline", plain, **common)
    for sched in [s.strip() for s in args.schedules.split(",") if s.strip()]:
        dec = make_decoder("simpletool", plain, schedule=sched, **common)
        decoders[f"simpletool/{dec.schedule}" if sched != "auto" else "simpletool/auto"] = dec
    base_name = next((n for n in decoders if n.startswith("simpletool")), None)
    adapter_name = None
    if with_lora is not None and lora is not None and base_name is not None:
        adapter_name = f"{base_name}+lora"
        decoders[adapter_name] = make_decoder("simpletool", with_lora,
                                              schedule=decoders[base_name].schedule, **common)
    tallies = {name: Tally() for name in decoders}
    rows: list[dict[str, Any]] = []  # one per case and decoder (for A/B comparisons)
    per_set = {(name, s): Tally() for name in decoders for s in sets}
    loaded = plain.run_file.path
    run_as = describe_gguf(loaded).quantization if loaded != path else None
    print(f"model {path.name}{f' (run as {run_as})' if run_as else ''}, "
          f"adapter {lora.name if lora else 'none'}, threads {args.n_threads or 'default'}, "
          f"{sum(len(c) for c in cases.values())} cases ({', '.join(sets)})", file=sys.stderr)
    try:
        for s in sets:
            warm, warm_tools = cases[s][0]
            for dec in decoders.values():  # warm the prefix cache and any lazy set-up
                with contextlib.suppress(DecodeError):
                    dec.decode(DecodeContext(warm.messages, enums=warm.enums), warm_tools)
            for i, (case, case_tools) in enumerate(cases[s]):
                ctx = DecodeContext(case.messages, enums=case.enums)
                for name, dec in decoders.items():
                    row = decode_case(dec, ctx, case, case_tools, (tallies[name], per_set[name, s]),
                                      judges.get((s, case.id)))
                    rows.append({"set": s, "id": case.id, "decoder": name, **row})
                print(f"\r{s} {i + 1}/{len(cases[s])}", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
    finally:
        for dec in decoders.values():
            dec.close()
    summary = {name: t.summary() for name, t in tallies.items()}
    sets_summary = {f"{name}@{s}": t.summary() for (name, s), t in per_set.items()}
    _print(summary)
    _print_sets(list(decoders), sets, per_set)
    if adapter_name and base_name:
        _print_adapter(base_name, adapter_name, sets, {k: v for k, v in per_set.items()})
    if args.json:
        args.json.write_text(json.dumps({"model": path.name, "run_as": run_as,
                                         "adapter": lora.name if lora else None, "sets": sets,
                                         "limit": args.limit, "results": summary,
                                         "per_set": sets_summary, "cases": rows}, indent=2))
    return 0


def _bfcl_judge(b: Any, ast_match: Any, model_output: Any) -> Any:
    names = sorted(next(iter(a)) for a in b.answers)

    def judge(calls: list[dict[str, Any]]) -> tuple[bool, bool]:
        ok = ast_match(b.category, b.functions, model_output(calls), b.answers)[0]
        return ok, sorted(c["name"] for c in calls) == names
    return judge


def _print_sets(names: list[str], sets: list[str], per_set: dict[tuple[str, str], Tally]) -> None:
    """Per set, every decoder: exact (BFCL: AST match), right tool, p50 and p50 ratio."""
    print("\nper set (exact: BFCL's AST match on bfcl_*; ratio: baseline p50 / p50):")
    print(f"{'set':22} {'decoder':28} {'cases':>5} {'exact':>7} {'tool':>7} {'err':>4} "
          f"{'p50 ms':>8} {'ratio':>6}")
    for s in sets:
        base = per_set[names[0], s].summary() if names[0] == "baseline" else None
        for name in names:
            r = per_set[name, s].summary()
            ratio = (base["p50_ms"] / r["p50_ms"] if base is not None and r["p50_ms"]
                     else float("nan"))
            print(f"{s:22} {name:28} {r['cases']:5d} {r['exact']:7.1%} {r['tool']:7.1%} "
                  f"{r['errors']:4d} {r['p50_ms']:8.1f} {ratio:6.2f}")


def _print_adapter(base: str, adapter: str, sets: list[str],
                   per_set: dict[tuple[str, str], Tally]) -> None:
    print(f"\nbase vs base + LoRA adapter ({base}, same cases):")
    print(f"{'set':10} {'cases':>5} {'exact base':>11} {'exact lora':>11} {'tool base':>10} "
          f"{'tool lora':>10} {'p50 base':>9} {'p50 lora':>9} {'p50 ratio':>9}")
    for s in sets:
        b, a = per_set[base, s].summary(), per_set[adapter, s].summary()
        ratio = a["p50_ms"] / b["p50_ms"] if b["p50_ms"] else float("nan")
        print(f"{s:10} {b['cases']:5d} {b['exact']:11.1%} {a['exact']:11.1%} {b['tool']:10.1%} "
              f"{a['tool']:10.1%} {b['p50_ms']:9.1f} {a['p50_ms']:9.1f} {ratio:9.2f}")
    print("targets with the adapter: in-domain >= 95% right tool, >= 90% exact; p50 ratio <= 1.10")


def _print(summary: dict[str, dict[str, Any]]) -> None:
    head = (f"{'decoder':22} {'p50 ms':>8} {'p95 ms':>8} {'p50 3num':>9} {'passes':>7} "
            f"{'sampled':>8} {'json':>6} {'compr':>6} {'exact':>6} {'tool':>6} {'err':>4}")
    print(head)
    for name, r in summary.items():
        print(f"{name:22} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['p50_3num_ms']:9.1f} "
              f"{r['passes_per_answer']:7.1f} {r['sampled_per_answer']:8.1f} "
              f"{r['json_per_answer']:6.1f} {r['compression']:6.2f} {r['exact']:6.1%} "
              f"{r['tool']:6.1%} {r['errors']:4d}")
    base = summary.get("baseline")
    for name, r in summary.items():
        if base is None or name == "baseline":
            continue
        speed = base["p50_ms"] / r["p50_ms"] if r["p50_ms"] else float("nan")
        print(f"{name}: p50 {speed:.2f}x lower than baseline (target >= 5x), compression "
              f"{r['compression']:.2f}x (target >= 4x), exact {r['exact']:.1%} vs baseline "
              f"{base['exact']:.1%}, 3-number p50 {r['p50_3num_ms']:.0f} ms (target <= 300)")
    print("note: timings depend on machine load; rerun on a quiet machine for reported figures")
