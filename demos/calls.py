"""Decode tool calls for a file of queries, or for a category of the BFCL benchmark.

  rtagent calls --tools TOOLS.json --input QUERIES.jsonl [--decoder simpletool|baseline]
                [--model PATH] [--out RESULTS.jsonl]
  rtagent calls --bfcl simple|multiple|parallel|parallel_multiple [--limit N] ...

TOOLS.json is a list of OpenAI-style function specs. Each QUERIES.jsonl line is
{"id", "messages": [...], "tools"?: [...], "enums"?: {...}, "expected"?: [...]}: per-line
"tools" override the file, "enums" restrict arguments at run time (e.g. the
objects the robot sees), and "expected" calls are scored (exact match) at the end.
Each RESULTS.jsonl line is {"id", "calls": [{"name", "arguments"}], "latency_ms",
"prompt_tokens", "forward_passes", "sampled_tokens"} (or {"id", "error"}).

``--bfcl`` runs the Berkeley Function Calling Leaderboard's cases of that category
(:mod:`models.evalsets.bfcl`: the ``bfcl-eval`` package's data, Apache-2.0, held out from
everything else here), each with its own tools, scored by BFCL's AST match (each line
also has "valid" and, where not, "why"). A tool whose schema the compact format can't
decode is reported once on standard error and left out; the run goes on.

Example: rtagent calls --tools sim_envs/robot_tools.json --input models/evalsets/robot.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tools", type=Path, help="JSON list of function specs")
    parser.add_argument("--input", type=Path, help="queries, one JSON per line")
    parser.add_argument("--bfcl", choices=["simple", "multiple", "parallel", "parallel_multiple"],
                        help="instead of --input: this BFCL category (held-out external set)")
    parser.add_argument("--decoder", default="simpletool", choices=["simpletool", "baseline"])
    parser.add_argument("--model", help="GGUF path (default: the embedded default model)")
    parser.add_argument("--model-name", help="embedded model: smollm2-135m or gemma3-270m")
    parser.add_argument("--lora", help="llama.cpp LoRA adapter GGUF to apply "
                        "(default: the adapter shipped for this model, if any)")
    parser.add_argument("--no-lora", action="store_true", help="decode with the base model only")
    parser.add_argument("--out", type=Path, help="results JSONL (default: standard output)")
    parser.add_argument("--limit", type=int, help="only the first N queries (BFCL: N spread "
                        "over the category)")
    parser.add_argument("--n-threads", type=int, help="CPU threads (default: usable cores)")
    parser.add_argument("--n-gpu-layers", type=int, default=0, help="layers on the GPU (-1: all)")
    parser.add_argument("--schedule", default="auto", choices=["auto", "parallel", "sequential"],
                        help="simpletool: parallel argument heads or one sequence")
    parser.add_argument("--max-calls", type=int, default=4, help="most calls per answer")


def run(args: argparse.Namespace) -> int:
    from control.tools import load_tool_specs
    from models.callformat import split_expressible
    from models.decoder import DecodeContext, DecodeError
    from models.evalsets.bfcl import load_bfcl, model_output
    from models.evalsets.bfcl_check import ast_match
    from models.evalsets.score import Score, load_cases
    from models.factory import make_decoder
    from models.llama_backend import wait_policy
    from models.resolve import default_lora, resolve_model
    from realtime.errors import ConfigError

    wait_policy("spin")  # one process with the cores to itself (before any model loads)

    file_tools = None
    if args.tools:
        try:
            file_tools = load_tool_specs(json.loads(args.tools.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--tools: cannot read a JSON tool list from {args.tools}: {exc}") \
                from exc
    if (args.input is None) == (args.bfcl is None):
        raise ConfigError("give --input QUERIES.jsonl or --bfcl CATEGORY (one of them)")
    bfcl = {b.case.id: b for b in load_bfcl(args.bfcl, args.limit)} if args.bfcl else {}
    cases = [b.case for b in bfcl.values()] if args.bfcl else load_cases(args.input, args.limit)
    if file_tools is None and any(c.tools is None for c in cases):
        raise ConfigError("--tools is required unless every query line has its own 'tools'")
    out = args.out.open("w") if args.out else sys.stdout
    score = Score()
    options = {"schedule": args.schedule} if args.decoder == "simpletool" else {}
    model = resolve_model(args.model or args.model_name,
                          None if args.no_lora else (args.lora or default_lora(args.decoder)))
    dec = make_decoder(args.decoder, model, n_threads=args.n_threads,
                       n_gpu_layers=args.n_gpu_layers, max_calls=args.max_calls, **options)
    reported: set[str] = set()
    try:
        for case in cases:
            tools = load_tool_specs(list(case.tools)) if case.tools else file_tools
            assert tools is not None
            for reason in split_expressible(tools)[1].values():
                if reason not in reported:  # left out by the decoder; the rest still runs
                    reported.add(reason)
                    print(f"tool left out: {reason}", file=sys.stderr)
            ctx = DecodeContext(case.messages, enums=case.enums)
            try:
                res = dec.decode(ctx, tools)
            except DecodeError as exc:
                line = {"id": case.id, "error": str(exc)}
                got = None
            else:
                line = {"id": case.id, **res.to_json()}
                got = line["calls"]
            if case.id in bfcl:
                b = bfcl[case.id]
                verdict = (False, "no answer") if got is None else ast_match(
                    b.category, b.functions, model_output(got), b.answers)
                line["valid"] = verdict[0]
                if not verdict[0]:
                    line["why"] = verdict[1]
                names = sorted(next(iter(a)) for a in b.answers)
                score.add([], got, None if got is None else (
                    verdict[0], sorted(c["name"] for c in got) == names))
            elif case.expected is not None:
                score.add(case.expected, got)
            out.write(json.dumps(line) + "\n")
            out.flush()
    finally:
        dec.close()
        if args.out:
            out.close()
    if score.cases:
        what = f"BFCL {args.bfcl}: AST match" if args.bfcl else "exact match"
        print(f"{score.cases} scored: {what} {score.exact_rate:.1%}, right tools "
              f"{score.tool_rate:.1%}, errors {score.errors}", file=sys.stderr)
    return 0
