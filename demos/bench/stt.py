"""Speech benchmark: Whisper with a fitted vs the full 30 s encoder window, VAD
cost and endpoint delay, streaming (partials overlapping the end-of-speech
wait) vs transcribe-after-endpoint, and espeak-ng time to first audio.

Utterances are the spoken request set (audio/voice_requests.jsonl, espeak-ng,
several voices and speeds), generated into --dir. Figures are wall-clock on
this machine; the ratios compare runs made in the same process.

  rtagent bench stt [--limit N] [--streaming N] [--requests JSONL] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from demos.bench.args import request_set_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    request_set_options(parser)
    parser.add_argument("--streaming", type=int, default=8,
                        help="real-time streaming runs on the first N utterances (0 = skip)")
    parser.add_argument("--margin-ms", type=float, default=500.0, help="fitted-window margin")
    parser.add_argument("--threads", type=int, default=2, help="Whisper cpu_threads")
    parser.add_argument("--requests", metavar="JSONL", help="the utterances to speak (default: the "
                        "voice request set; audio/stt_heldout_requests.jsonl holds 50 other ones)")
    parser.add_argument("--biased", action="store_true", help="also the fitted window with Whisper "
                        "biased: the demo's fixed prompt, and the home's live vocabulary")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _speech_bounds(x: np.ndarray) -> tuple[int, int]:
    loud = np.nonzero(np.abs(x) > 0.01)[0]
    return (int(loud[0]), int(loud[-1])) if len(loud) else (0, 0)


def _batch(stt: Any, items: list[tuple[Any, np.ndarray]]) -> dict[str, Any]:
    from audio.wer import wer

    stt.transcribe(items[0][1])  # warm-up
    rows = []
    for req, x in items:
        t0 = time.perf_counter()
        t = stt.transcribe(x)
        rows.append({"id": req.id, "ms": 1000 * (time.perf_counter() - t0), "text": t.text,
                     "frames": t.window_frames, "encode_ms": t.encode_ms, "decode_ms": t.decode_ms})
    ms = [r["ms"] for r in rows]
    return {"p50_ms": _pct(ms, 50), "p90_ms": _pct(ms, 90), "mean_ms": statistics.fmean(ms),
            "encode_p50_ms": _pct([r["encode_ms"] for r in rows], 50),
            "wer": wer((req.text, r["text"]) for (req, _), r in zip(items, rows, strict=True)),
            "rows": rows}


def _streaming(stt: Any, items: list[tuple[Any, np.ndarray]], partials: bool) -> dict[str, Any]:
    from audio.sources import SAMPLE_RATE_HZ, ArraySource, PacedSource
    from audio.streaming import StreamingOptions, StreamingTranscriber
    from audio.stt import Transcript
    from audio.vad import SpeechEnd, StreamingVad
    from audio.wer import wer

    opts = StreamingOptions(partial_interval_ms=300.0 if partials else 0.0,
                            reuse_partial=partials)
    lat, endpoint, pairs, reused, npartials = [], [], [], 0, 0
    for req, x in items:
        lead = np.zeros(SAMPLE_RATE_HZ // 2, np.float32)
        audio = np.concatenate([lead, x, np.zeros(SAMPLE_RATE_HZ, np.float32)])
        _, last = _speech_bounds(audio)
        st = StreamingTranscriber(stt, StreamingVad(), opts)
        start_ns = None
        final = None
        for ev in st.run(PacedSource(ArraySource(audio))):
            if start_ns is None:
                start_ns = st.vad.stamp(0)
            if isinstance(ev, SpeechEnd):
                endpoint.append((ev.detected_t_ns - st.vad.stamp(last)) / 1e6)
            if isinstance(ev, Transcript):
                npartials += not ev.final
                if ev.final and final is None:
                    final = ev
        reused += st.reused_partials
        st.close()
        if final is not None:
            lat.append((final.ready_t_ns - st.vad.stamp(last)) / 1e6)
            pairs.append((req.text, final.text))
        else:
            pairs.append((req.text, ""))
    return {"final_after_speech_p50_ms": _pct(lat, 50), "final_after_speech_p90_ms": _pct(lat, 90),
            "endpoint_after_speech_p50_ms": _pct(endpoint, 50), "wer": wer(pairs),
            "finals_from_partials": reused, "partials": npartials, "n": len(items)}


def _vad_cost(items: list[tuple[Any, np.ndarray]]) -> dict[str, Any]:
    from audio.vad import WINDOW, StreamingVad

    vad = StreamingVad()
    x = np.concatenate([x for _, x in items[:10]])
    x = x[:len(x) // WINDOW * WINDOW]
    t0 = time.perf_counter()
    for i in range(0, len(x), WINDOW):
        vad.probabilities(x[i:i + WINDOW])
    per = 1000 * (time.perf_counter() - t0) / (len(x) // WINDOW)
    return {"window_ms": 32.0, "compute_per_window_ms": per, "real_time_factor": per / 32.0}


def _tts() -> dict[str, Any]:
    from audio.tts import EspeakTts

    tts = EspeakTts()
    replies = ["Okay, the kitchen lights are off.",
               "In Paris it is 12 degrees and sunny, with a high of 15.",
               "You have four events today. Stand-up meeting at nine, lunch with Anna at half "
               "past twelve, the dentist at three, and football practice at half past six."]
    first, whole = [], []
    for text in replies * 3:
        t0 = time.perf_counter()
        for i, _ in enumerate(tts.stream(text)):
            if i == 0:
                first.append(1000 * (time.perf_counter() - t0))
        whole.append(1000 * (time.perf_counter() - t0))
    return {"first_audio_p50_ms": _pct(first, 50), "whole_reply_p50_ms": _pct(whole, 50)}


def run(args: argparse.Namespace) -> int:
    from audio.sources import read_wav
    from audio.stt import SttOptions, WhisperStt
    from audio.utterances import load_requests, write_utterances

    reqs = load_requests(args.requests)
    if args.limit:
        reqs = reqs[:args.limit]
    items = [(r, read_wav(p).samples) for r, p in write_utterances(Path(args.dir), reqs)]
    fit = WhisperStt(SttOptions(window="fit", margin_ms=args.margin_ms, cpu_threads=args.threads))
    full = WhisperStt(SttOptions(window="full", cpu_threads=args.threads))
    out: dict[str, Any] = {"n": len(items), "threads": args.threads,
                           "audio_s_mean": statistics.fmean(len(x) / 16000 for _, x in items)}
    out["full"] = _batch(full, items)
    out["fit"] = _batch(fit, items)
    out["speedup_fit_vs_full"] = out["full"]["p50_ms"] / out["fit"]["p50_ms"]
    if args.biased:
        from audio.vocabulary import stt_prompt
        from sim_envs.home.store import HomeStore
        from sim_envs.home.tools import STT_PROMPT

        for name, prompt in (("fixed prompt", STT_PROMPT),
                             ("live vocabulary", stt_prompt(**HomeStore().vocabulary()))):
            opts = SttOptions(window="fit", margin_ms=args.margin_ms, cpu_threads=args.threads,
                              initial_prompt=prompt)
            out[f"fit, {name}"] = {**_batch(WhisperStt(opts), items), "prompt": prompt}
    out["vad"] = _vad_cost(items)
    if args.streaming:
        some = items[:args.streaming]
        out["stream_after_endpoint"] = _streaming(fit, some, partials=False)
        out["stream_overlapped"] = _streaming(fit, some, partials=True)
    out["tts"] = _tts()
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"{out['n']} espeak-ng utterances, mean {out['audio_s_mean']:.2f} s, "
          f"Whisper tiny.en int8, {args.threads} threads")
    for name in ("full", "fit", "fit, fixed prompt", "fit, live vocabulary"):
        if name not in out:
            continue
        r = out[name]
        print(f"  {name:4s} window: p50 {r['p50_ms']:6.0f} ms  p90 {r['p90_ms']:6.0f} ms  "
              f"encode p50 {r['encode_p50_ms']:5.0f} ms  WER {100 * r['wer']:5.1f}%")
    print(f"  fitted window is {out['speedup_fit_vs_full']:.1f}x faster (p50), "
          f"WER {100 * out['fit']['wer']:.1f}% vs {100 * out['full']['wer']:.1f}%")
    v = out["vad"]
    print(f"  VAD: {v['compute_per_window_ms']:.2f} ms per 32 ms window "
          f"(real-time factor {v['real_time_factor']:.3f})")
    if args.streaming:
        a, b = out["stream_after_endpoint"], out["stream_overlapped"]
        print(f"  streaming, {a['n']} utterances in real time: end of speech -> endpoint "
              f"p50 {b['endpoint_after_speech_p50_ms']:.0f} ms")
        print(f"    final transcript after end of speech: p50 {b['final_after_speech_p50_ms']:.0f} ms "
              f"with overlapped partials ({b['finals_from_partials']}/{b['n']} finals reused a "
              f"partial) vs {a['final_after_speech_p50_ms']:.0f} ms transcribing after the endpoint "
              f"(WER {100 * b['wer']:.1f}% vs {100 * a['wer']:.1f}%)")
    t = out["tts"]
    print(f"  TTS espeak-ng: first audio p50 {t['first_audio_p50_ms']:.0f} ms, whole reply "
          f"p50 {t['whole_reply_p50_ms']:.0f} ms")
    return 0
