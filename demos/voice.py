"""The voice assistant demo: listens, understands, acts through tools, answers aloud.

Three processes linked by ZeroMQ under a supervisor: perception (audio in,
Silero VAD, streaming Whisper: partial and final transcripts), decision (a
deadline loop running the agent: SimpleTool-style decoder, speculative
executor, parallel tool calls) and actuation (the SQLite home store's device
actions, spoken replies with espeak-ng; speech from the user stops a reply).

  rtagent voice --wav req1.wav --wav req2.wav    answer recorded requests (played in real time)
  rtagent voice --say "turn off the kitchen lights" --say "what's the weather in Paris"
                                                  requests spoken by espeak-ng (no microphone needed)
  rtagent voice --device "USB"                    listen on a microphone until Ctrl-C
  rtagent voice --list-devices                    the audio devices PyAudio sees

A request ends after --silence-ms of silence, or after a pause of
--early-silence-ms when the partial transcript that heard it all sounds finished
(ends in . ? !). While the user speaks, partial transcripts are decoded ahead
and read-only tools (weather, time, search, home reads) start before the end of speech;
writes (lights, timers, messages) run only once the final transcript asks for
them (--no-speculation turns this off). Each turn prints its latency breakdown
from the end of speech: final transcript, first call, first committed action
(first tool result), all results, first audio out. --json writes everything;
--trace PATH a timeline of every process for chrome://tracing, Perfetto or
`rtagent report`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("input (one of)")
    src.add_argument("--wav", action="append", default=[], metavar="FILE",
                     help="a WAV file holding one spoken request (any rate/width/channels); repeatable")
    src.add_argument("--say", action="append", default=[], metavar="TEXT",
                     help="a request spoken by espeak-ng; repeatable")
    src.add_argument("--device", metavar="NAME|INDEX", help="listen on this PyAudio input device")
    src.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    parser.add_argument("--virtual-mic", action="store_true",
                        help="play --wav/--say requests through a virtual ALSA microphone that "
                             "PyAudio opens (instead of reading the files directly)")
    parser.add_argument("--duration-s", type=float, help="with --device: stop after this long")
    parser.add_argument("--out-device", metavar="NAME|INDEX", help="speak replies on this output device")
    parser.add_argument("--out-wav", metavar="PATH", help="write the spoken replies to a WAV file")
    parser.add_argument("--no-speculation", action="store_true",
                        help="decode only the final transcript; run tools only when called")
    parser.add_argument("--json", metavar="PATH", help="write turns, latencies and stats as JSON")
    parser.add_argument("--trace", metavar="PATH", help="write a Chrome trace / Perfetto JSON of every "
                        "process (VAD, Whisper runs, ticks, decodes, tool calls direct or "
                        "speculative, replies); `rtagent report PATH` turns it into a report")
    parser.add_argument("--home", metavar="PATH", help="the home store's SQLite file (default: in memory)")
    parser.add_argument("--hz", type=float, default=16.0, help="decision loop rate (default 16)")
    parser.add_argument("--silence-ms", type=float, default=400.0,
                        help="silence that ends an utterance (default 400)")
    parser.add_argument("--early-silence-ms", type=float, default=200.0,
                        help="a pause this long ends a request whose partial transcript sounds "
                             "finished (ends in . ? !), before --silence-ms; 0 turns it off "
                             "(default 200)")
    parser.add_argument("--gap-s", type=float, default=2.5,
                        help="silence played between requests (default 2.5)")
    parser.add_argument("--decoder", default="simpletool", help="simpletool (default) or baseline")
    parser.add_argument("--model", metavar="PATH", help="a GGUF model (default: the embedded one)")
    parser.add_argument("--lora", metavar="PATH", help="a llama.cpp LoRA adapter (default: the shipped one)")
    parser.add_argument("--no-lora", action="store_true", help="decode with the base model only")
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice of the replies (default en-us)")
    parser.add_argument("--timeout-s", type=float, help="stop the whole run after this long")
    parser.add_argument("--offline", action="store_true",
                        help="weather from the deterministic offline stand-in, not Open-Meteo "
                             "(without a network the stand-in answers anyway, said once in the log)")


def _list_devices() -> int:
    from audio.capture import list_devices, open_pyaudio

    pa = open_pyaudio()
    try:
        for d in list_devices(pa):
            kinds = "/".join(k for k, n in (("in", d["inputs"]), ("out", d["outputs"])) if n)
            print(f"{d['index']:3d}  {d['name']}  ({kinds}, {d['rate_hz']} Hz)")
    finally:
        pa.terminate()
    return 0


def check_device(device: str, direction: str) -> None:
    """Raise AudioDeviceError (listing what exists) if ``device`` is not there."""
    from audio.capture import find_device, open_pyaudio

    pa = open_pyaudio()
    try:
        find_device(pa, int(device) if device.isdigit() else device, direction=direction)
    finally:
        pa.terminate()


def load_requests(wavs: list[str], says: list[str], warn: Any) -> list[Any]:
    """Checked audio for each request; a bad file is reported and skipped."""
    from audio.checks import check_samples, check_wav
    from audio.errors import AudioError
    from audio.utterances import speak

    items = []
    for path in wavs:
        try:
            item = check_wav(path)
        except AudioError as exc:
            warn(f"skipping {path}: {exc}")
            continue
        for w in item.warnings:
            warn(w)
        items.append(item)
    for i, text in enumerate(says):
        items.append(check_samples(f"say-{i + 1}: {text}", speak(text)))
    return items


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def summarize_calls(calls: Sequence[Mapping[str, Any]]) -> str:
    """``name(k=v, ...)`` for each call, for printing."""
    return "; ".join(f"{c['name']}(" + ", ".join(f"{k}={v}" for k, v in c["arguments"].items())
                     + ")" for c in calls) or "-"


def turn_line(t: dict[str, Any]) -> str:
    lat = t["latency"]
    calls = summarize_calls((t.get("turn") or {}).get("calls", []))
    spec = sum(bool(r.get("speculative")) for r in (t.get("turn") or {}).get("results", []))
    return (f"[{t.get('segment') or t['utterance']}] heard {t['text']!r} -> {calls}\n"
            f"    reply: {t['reply']!r}" + (f"  (error: {t['error']})" if t.get("error") else "") +
            f"\n    ms after end of speech: endpoint {_fmt(lat['endpoint_ms'])}, final transcript "
            f"{_fmt(lat['final_ms'])}, first call {_fmt(lat['first_call_ms'])}, first action "
            f"{_fmt(lat['first_action_ms'])}, results {_fmt(lat['results_ms'])}, first audio "
            f"{_fmt(lat['first_audio_ms'])}; lookups done at end of speech "
            f"{lat['lookups_done_at_eos']}/{lat['lookups']}, served from speculation {spec}")


def config_from_args(args: argparse.Namespace) -> Any:
    from demos.voice_session import VoiceDemoConfig

    return VoiceDemoConfig(
        device=args.device, max_duration_s=args.duration_s, pace=True,  # (a real mic never waits)
        out_device=args.out_device, out_wav=str(Path(args.out_wav).resolve()) if args.out_wav else None,
        hz=args.hz, speculation=not args.no_speculation, decoder=args.decoder, model=args.model,
        lora=None if args.no_lora else (args.lora or "default"),
        home_db=str(Path(args.home).resolve()) if args.home else None,
        silence_ms=args.silence_ms, early_silence_ms=args.early_silence_ms, voice=args.voice,
        weather="offline" if args.offline else "online")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from audio.errors import AudioError
    from demos.voice_session import VoiceSession
    from realtime.errors import ConfigError
    from realtime.trace_run import TraceRun

    if args.list_devices:
        return _list_devices()
    console = Console(stderr=True, soft_wrap=True)
    given = bool(args.wav or args.say)
    if given == bool(args.device):
        raise ConfigError("give requests (--wav FILE / --say TEXT) or a microphone (--device), "
                          "not both and not neither; `rtagent voice --list-devices` lists devices")
    if not 1.0 <= args.hz <= 100.0:
        raise ConfigError(f"--hz: expected 1..100, got {args.hz}")
    if not 0.0 <= args.early_silence_ms <= 10_000.0:
        raise ConfigError(f"--early-silence-ms: expected 0..10000 (0: off), got {args.early_silence_ms}")
    if args.device:
        check_device(args.device, "input")
    if args.out_device:
        check_device(args.out_device, "output")
    items = load_requests(args.wav, args.say, lambda w: console.print(f"[yellow]warning:[/] {w}"))
    if given and not items:
        raise AudioError("none of the requests could be used (see the warnings above)")
    cfg = config_from_args(args)
    status = console.status("starting perception, decision and actuation (loading the models)…")
    status.start()

    def on_status(s: dict[str, Any]) -> None:
        part = f" [dim]{s['partial']!r}[/]" if s.get("partial") else ""
        status.update(f"[bold]{s['state']}[/]{part}  turns {s['turns']}  tick {s['tick']}  "
                      f"deadline misses {s['misses']}")

    def on_turn(t: dict[str, Any]) -> None:
        console.print(turn_line(t), markup=False, highlight=False)

    via = None if args.device else ("mic" if args.virtual_mic else "wav")
    with TraceRun(args.trace, run="rtagent voice", config=cfg.to_json()) as trace:
        session = VoiceSession(cfg, items, via=via, gap_s=args.gap_s, on_status=on_status,
                               on_turn=on_turn, env=trace.env(), tracer=trace.tracer)
        try:
            result = session.run(timeout_s=args.timeout_s)
        finally:
            status.stop()
        trace.write(error=result.error)
        if (written := trace.describe()) is not None:
            console.print(written)
    spec = result.stats.get("speculation") or {}
    console.print(f"{len(result.turns)} turns; speculation: {spec.get('hits', 0)} hits + "
                  f"{spec.get('joins', 0)} joins of {spec.get('launched', 0)} launched, "
                  f"{spec.get('writes_blocked', 0)} writes refused, "
                  f"{spec.get('writes_executed', 0)} run ahead; barge-ins {result.barge_ins}")
    for e in result.errors:
        console.print(f"[red]input error:[/] {e}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "turns": result.turns, "segments": [s.to_json() for s in result.segments],
            "stats": result.stats, "home": result.home, "errors": result.errors,
            "supervisor": result.supervisor.processes if result.supervisor else {},
            "error": result.error}, indent=1, default=str))
    if result.error:
        print(f"rtagent voice: error: {result.error}", file=sys.stderr)
        return 1
    return 0
