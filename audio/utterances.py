"""Spoken test requests: text + expected tool calls, spoken by espeak-ng.

``audio/voice_requests.jsonl`` holds the request set (one JSON object a line:
``id``, ``text``, ``voice``, ``words_per_min``, ``expected`` calls in the
shape of ``control.tools.ToolCall.to_json``). It covers every voice tool,
single and multi-part requests, several espeak-ng voices and speeds; the
``rtagent bench voice`` set and the STT benchmark are built from it.

:func:`speak` turns text into 16 kHz float32 samples; :func:`write_utterances`
writes a WAV per request (plus ``index.jsonl``) into a directory, so tests
and benchmarks generate their audio at run time instead of committing it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from audio.errors import AudioError
from audio.resample import resample
from audio.sources import SAMPLE_RATE_HZ, write_wav
from audio.tts import EspeakTts, TtsOptions

__all__ = ["VoiceRequest", "load_requests", "speak", "write_utterances"]


@dataclass(frozen=True)
class VoiceRequest:
    id: str
    text: str
    voice: str = "en-us"
    words_per_min: int = 165
    expected: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> VoiceRequest:
        try:
            return cls(str(obj["id"]), str(obj["text"]), str(obj.get("voice", "en-us")),
                       int(obj.get("words_per_min", 165)), tuple(obj.get("expected", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise AudioError(f"bad voice request {json.dumps(obj)[:120]}: {exc}") from exc


def load_requests(path: str | Path | None = None) -> list[VoiceRequest]:
    """The request set (default: the packaged ``voice_requests.jsonl``)."""
    if path is None:
        text = resources.files("audio").joinpath("voice_requests.jsonl").read_text()
    else:
        text = Path(path).read_text()
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(VoiceRequest.from_json(json.loads(line)))
            except json.JSONDecodeError as exc:
                raise AudioError(f"{path or 'voice_requests.jsonl'} line {n}: {exc}") from exc
    return out


def speak(text: str, *, voice: str = "en-us", words_per_min: int = 165,
          tts: EspeakTts | None = None) -> np.ndarray:
    """``text`` spoken by espeak-ng, as 16 kHz float32 mono."""
    engine = tts or EspeakTts(TtsOptions(voice=voice, words_per_min=words_per_min))
    x = engine.synthesize(text, voice=voice, words_per_min=words_per_min)
    if not len(x):
        raise AudioError(f"espeak-ng produced no audio for {text!r} (voice {voice!r})")
    return resample(x, engine.rate_hz, SAMPLE_RATE_HZ)


def write_utterances(directory: str | Path, requests: Iterable[VoiceRequest] | None = None,
                     ) -> list[tuple[VoiceRequest, Path]]:
    """A WAV per request in ``directory`` (16 kHz mono) and an ``index.jsonl``; reuses files."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tts = EspeakTts()
    out = []
    with (d / "index.jsonl").open("w") as index:
        for r in requests if requests is not None else load_requests():
            path = d / f"{r.id}.wav"
            if not path.exists():
                write_wav(path, speak(r.text, voice=r.voice, words_per_min=r.words_per_min, tts=tts))
            index.write(json.dumps({"id": r.id, "wav": path.name, "text": r.text,
                                    "expected": list(r.expected)}) + "\n")
            out.append((r, path))
    return out
