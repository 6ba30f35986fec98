"""Voice assistant benchmark: the spoken request set through the whole demo, with and
without speculation on partial transcripts, in the same run.

Each request of audio/voice_requests.jsonl (espeak-ng, several voices and
speeds) is spoken into --dir, and the requests are played one after another
in real time (--gap-s of silence between them) to the real processes:
perception (Silero VAD, streaming Whisper tiny.en), decision (deadline loop,
SimpleTool-style decoder, speculative executor, parallel DAG calls) and
actuation (SQLite home store, espeak-ng replies). Measured per request:

- word error rate of the final transcript;
- call accuracy: the calls made equal the expected calls exactly (same tools,
  same arguments, in any order);
- latency from the end of speech (the last speech sample the VAD heard) to the
  first committed action (the first tool result) and to the first audio of the
  reply, p50 and p95; also to the endpoint and the final transcript;
- the same from the endpoint (when the VAD decided the utterance was over,
  --silence-ms after the end of speech), which no turn can start before;
- the fraction of read-only lookups whose result was already there (run ahead
  from a partial transcript) at the end of speech, and at the endpoint; and how
  high it could be: a lookup whose argument is among the request's last words
  ("what's the weather in Paris") cannot be done when the speech ends.

  rtagent bench voice [--limit N] [--gap-s S] [--via wav|mic] [--json PATH] [--trace PATH]
                      [--chaos SECONDS]

Each run gets a fresh home file (never the user's). --chaos SECONDS kills the decision
or the actuation (SIGKILL) every SECONDS while the requests are spoken and checks that
no action a turn acknowledged is missing from the home afterwards (:mod:`demos.bench.chaos`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from demos.bench.args import json_output, lora_choice, model_options, request_set_options, trace_output
from demos.bench.chaos import VOICE_VICTIMS, chaos_option, lines, monkey_for, voice_figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    request_set_options(parser)
    parser.add_argument("--every", type=int, default=1,
                        help="use every Nth request (a quick sample of every kind; default 1)")
    parser.add_argument("--gap-s", type=float, default=2.5, help="silence between requests")
    parser.add_argument("--via", choices=("wav", "mic"), default="wav",
                        help="play the stream directly (wav) or through the virtual PyAudio mic")
    parser.add_argument("--silence-ms", type=float, default=400.0, help="VAD end-of-utterance silence")
    parser.add_argument("--early-silence-ms", type=float, default=200.0,
                        help="early endpoint on a finished-sounding partial (0: off)")
    parser.add_argument("--only", choices=("spec", "plain"), help="run one mode only")
    parser.add_argument("--spec-store", type=Path, metavar="DIR",
                        help="speculation's trace store and library (default: a new empty one, "
                             "so the run learns from itself only)")
    model_options(parser)
    parser.add_argument("--requests", metavar="JSONL", help="the spoken requests (default: "
                        "audio/voice_requests.jsonl; audio/voice_open_requests.jsonl holds 49 "
                        "with cities and items no list here has, other voices and speeds)")
    json_output(parser, "every figure and turn")
    trace_output(parser, 'both modes (process names "speculation/decision", ...)')
    chaos_option(parser, "decision or actuation")


def _pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None


def _key(call: dict[str, Any]) -> str:
    """The call as what it does: "Cracow" and "Kraków", "tomorrow" and its ISO date agree."""
    from control.tools import ToolCall
    from sim_envs.home.tools import canonical_call

    c = canonical_call(call)
    return ToolCall(c["name"], c["arguments"]).key()


def said_last(text: str, call: dict[str, Any]) -> bool:
    """The call names an argument said in the request's last two words (~0.7 s of speech):
    a lookup of it cannot be done at the end of speech, when its argument is only just heard
    (a service takes 150-400 ms on top)."""
    last = re.findall(r"[a-z0-9']+", text.lower())[-2:]
    return any(w in last for v in call["arguments"].values()
               for w in re.findall(r"[a-z0-9']+", str(v).lower()))


def score(requests: list[Any], result: Any) -> dict[str, Any]:
    """Per-request rows and the aggregate figures of one session."""
    from audio.wer import wer, wer_counts
    from control.voice_latency import READ_ONLY

    by_segment: dict[str, list[dict[str, Any]]] = {}
    for t in result.turns:
        by_segment.setdefault(t.get("segment") or "?", []).append(t)
    rows = []
    for req in requests:
        turns = by_segment.get(req.id, [])
        text = " ".join(t["text"] for t in turns)
        calls = [c for t in turns for c in (t.get("turn") or {}).get("calls", [])]
        lat = turns[0]["latency"] if turns else {}
        rows.append({"id": req.id, "text": req.text, "heard": text, "turns": len(turns),
                     "wer": wer_counts(req.text, text).rate, "calls": calls,
                     "exact": sorted(map(_key, calls)) == sorted(map(_key, req.expected)),
                     "tools_ok": sorted(c["name"] for c in calls) == sorted(
                         c["name"] for c in req.expected), **lat})

    def overlapped(t: dict[str, Any]) -> bool:  # two of its calls ran at the same time
        spans = sorted((r["started_ns"], r["ended_ns"]) for r in (t.get("turn") or {}).get(
            "results", []) if r.get("started_ns"))
        return any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))

    multi = [t for t in result.turns if len((t.get("turn") or {}).get("calls", [])) > 1]
    from sim_envs.home.tools import confirm_tools

    # irreversible calls that ran without a yes (a held one answers {"held": true}; the
    # calls a yes ran are turns of their own, with negative ids)
    unconfirmed = sum(1 for t in result.turns if ((t.get("turn") or {}).get("id") or 0) > 0
                      for r in t["turn"].get("results", [])
                      if r.get("name") in confirm_tools() and r.get("ok")
                      and not (r.get("value") or {}).get("held"))

    def col(name: str) -> list[float]:
        return [r[name] for r in rows if r.get(name) is not None]

    lookups = sum(r.get("lookups", 0) for r in rows)
    expected = [(req.text, c) for req in requests for c in req.expected if c["name"] in READ_ONLY]
    out: dict[str, Any] = {
        "n": len(rows), "answered": sum(r["turns"] > 0 for r in rows),
        "split": sum(r["turns"] > 1 for r in rows),
        "early_endpoints": sum(bool(t.get("early_endpoint")) for t in result.turns),
        "wer": wer((r["text"], r["heard"]) for r in rows),
        "call_accuracy": statistics.fmean(r["exact"] for r in rows) if rows else None,
        "tool_accuracy": statistics.fmean(r["tools_ok"] for r in rows) if rows else None,
        "lookups": lookups,
        "lookups_done_at_eos": (sum(r.get("lookups_done_at_eos", 0) for r in rows) / lookups
                                if lookups else None),
        "lookups_done_at_endpoint": (sum(r.get("lookups_done_at_endpoint", 0) for r in rows)
                                     / lookups if lookups else None),
        "expected_lookups": len(expected),
        "lookups_said_last": sum(said_last(text, c) for text, c in expected),
        "multi_call_turns": len(multi), "parallel_turns": sum(map(overlapped, multi)),
        "barge_ins": result.barge_ins, "error": result.error, "stats": result.stats,
        "unconfirmed_irreversible": unconfirmed,
        # Calls served from speculation, by who launched them: "pattern" (the live pattern
        # predictor, after each call) or "explicit" (the preflight on partial transcripts).
        "served_by": dict(((result.stats or {}).get("speculation") or {}).get("served_by") or {}),
    }
    for name in ("endpoint_ms", "final_ms", "first_call_ms", "first_action_ms", "first_audio_ms",
                 "endpoint_to_first_action_ms", "endpoint_to_first_audio_ms"):
        out[f"{name}_p50"], out[f"{name}_p95"] = _pct(col(name), 50), _pct(col(name), 95)
    out["rows"] = rows
    return out


ROWS = (("word error rate", "wer", "pct"), ("call accuracy (exact)", "call_accuracy", "pct"),
        ("tool names right", "tool_accuracy", "pct"),
        ("end of speech -> endpoint p50", "endpoint_ms_p50", "ms"),
        ("end of speech -> final transcript p50", "final_ms_p50", "ms"),
        ("end of speech -> first call p50", "first_call_ms_p50", "ms"),
        ("end of speech -> first action p50", "first_action_ms_p50", "ms"),
        ("end of speech -> first action p95", "first_action_ms_p95", "ms"),
        ("end of speech -> first audio p50", "first_audio_ms_p50", "ms"),
        ("end of speech -> first audio p95", "first_audio_ms_p95", "ms"),
        ("endpoint -> first action p50", "endpoint_to_first_action_ms_p50", "ms"),
        ("endpoint -> first audio p50", "endpoint_to_first_audio_ms_p50", "ms"),
        ("lookups done at end of speech", "lookups_done_at_eos", "pct"),
        ("lookups done at the endpoint", "lookups_done_at_endpoint", "pct"))


def table(results: dict[str, dict[str, Any]]) -> str:
    modes = list(results)
    head = f"{'':40s}" + "".join(f"{m:>16s}" for m in modes) + (
        f"{'ratio':>10s}" if len(modes) == 2 else "")
    lines = [head]
    for label, key, kind in ROWS:
        vals = [results[m].get(key) for m in modes]
        cells = "".join(f"{'-':>16s}" if v is None else (
            f"{100 * v:15.1f}%" if kind == "pct" else f"{v:13.0f} ms") for v in vals)
        ratio = ""
        if len(vals) == 2 and kind == "ms" and vals[0] and vals[1]:
            ratio = f"{vals[0] / vals[1]:9.2f}x"
        lines.append(f"{label:40s}{cells}{ratio}")
    for m in modes:
        r = results[m]
        lines.append(f"{m}: {r['answered']}/{r['n']} requests answered ({r['split']} split in two, "
                     f"{r.get('early_endpoints', 0)} ended early on a finished sentence), "
                     f"{r['lookups']} read-only lookups, {r['multi_call_turns']} turns with "
                     f"several calls ({r['parallel_turns']} ran them in parallel), "
                     f"{r['barge_ins']} barge-ins, {r['unconfirmed_irreversible']} irreversible "
                     f"calls run without a yes"
                     + (f", error: {r['error']}" if r["error"] else ""))
        served = r.get("served_by") or {}
        if served:
            total = sum(served.values())
            lines.append(f"{m}: {total} calls served from speculation, "
                         f"{served.get('pattern', 0)} ({served.get('pattern', 0) / total:.0%}) "
                         f"by the pattern predictor, {served.get('explicit', 0)} by the "
                         "preflight on partial transcripts")
    some = next(iter(results.values()), None)
    if some and some.get("expected_lookups"):
        n, late = some["expected_lookups"], some["lookups_said_last"]
        lines.append(f"of the set's {n} expected lookups, {late} name an argument said in the "
                     f"request's last two words (no lookup of those can be done at the end of "
                     f"speech): at most {100 * (n - late) / n:.0f}% can")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from audio.checks import check_wav
    from audio.utterances import load_requests, write_utterances
    from demos.voice_session import VoiceDemoConfig, VoiceSession
    from realtime.trace_run import TraceRun

    reqs = load_requests(args.requests)
    reqs = reqs[::max(1, args.every)]
    if args.limit:
        reqs = reqs[:args.limit]
    items = [dataclasses.replace(check_wav(p), label=r.id)
             for r, p in write_utterances(Path(args.dir), reqs)]
    modes = {"speculation": True, "no speculation": False}
    if args.only:
        modes = {k: v for k, v in modes.items() if (v if args.only == "spec" else not v)}
    results = {}
    homes = tempfile.TemporaryDirectory(prefix="rtagent-bench-home-")  # never the user's home
    with homes, TraceRun(args.trace, run="rtagent bench voice") as trace:
        for name, speculate in modes.items():
            home = Path(homes.name) / f"{name.replace(' ', '-')}.sqlite"  # fresh for each run
            cfg = VoiceDemoConfig(speculation=speculate, silence_ms=args.silence_ms,
                                  home_db=str(home),
                                  early_silence_ms=args.early_silence_ms,
                                  model=args.model, lora=lora_choice(args),
                                  trace_label=name.replace(" ", "-") if trace.enabled else "")
            print(f"running {len(items)} requests with {name} ...", flush=True)
            with tempfile.TemporaryDirectory() as fresh:  # speculation learns from this run only
                store = {"RTAGENT_SPEC_DIR": str(args.spec_store or fresh)}
                session = VoiceSession(cfg, items, via=args.via, gap_s=args.gap_s,
                                       env={**trace.env(), **store}, tracer=trace.tracer)
                monkey = monkey_for(session, args, VOICE_VICTIMS)
                # under chaos a turn whose request was spoken to a dead decision never comes
                audio_s = sum(len(i.samples) / 16_000 + args.gap_s for i in items)
                try:
                    result = session.run(timeout_s=audio_s + 300 if monkey else None)
                finally:
                    if monkey is not None:
                        monkey.stop()
            results[name] = score(reqs, result)
            if monkey is not None:
                results[name]["chaos"] = voice_figures(monkey, result, home, Path(
                    session.supervisor.run_dir.path) if session.supervisor else None)
        trace.write(modes=list(modes))
        written = trace.describe()
    print(f"rtagent bench voice: {len(items)} spoken requests (espeak-ng, "
          f"{len({r.voice for r in reqs})} voices, {len({r.words_per_min for r in reqs})} speeds), "
          f"played in real time {'through the virtual PyAudio mic' if args.via == 'mic' else ''}")
    for name, r in results.items():
        dec = r["stats"].get("decoder") or {}
        print(f"{name}: decoder {dec.get('name')} on {dec.get('model')}, LoRA {dec.get('lora')}")
    print(table(results))
    for name, r in results.items():
        if r.get("chaos"):
            print("\n".join(lines(name, r["chaos"])))
    if written is not None:
        print(written)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0 if all(r["error"] is None for r in results.values()) else 1
