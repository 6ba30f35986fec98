"""Speech to text with faster-whisper (CTranslate2), model kept loaded.

:class:`WhisperStt` transcribes one utterance (16 kHz float32). Its speed
trick: CTranslate2's Whisper encoder accepts feature windows shorter than the
usual 30 s (3000 frames); the encoder's cost grows with the window, so
``window="fit"`` sizes it to the utterance plus ``margin_ms`` (rounded up to
``window_step_ms`` so few distinct shapes occur), but no shorter than
``min_window_ms`` (8 s: much shorter windows cost words), while ``window="full"``
always encodes 3000 frames like ``WhisperModel.transcribe``. Decoding is
greedy without timestamps. Both share every other step, so a benchmark can
compare them fairly (``rtagent bench stt``).

Backends are one-method objects (``transcribe(audio) -> Transcript``) in a
registry: ``open_stt("whisper")`` (fitted window), ``open_stt("whisper-full")``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from audio.errors import AudioError, AudioFormatError, SpeechModelError
from audio.sources import SAMPLE_RATE_HZ
from audio.wer import normalize

__all__ = [
    "STT_BACKENDS",
    "SpeechToText",
    "SttOptions",
    "Transcript",
    "WhisperStt",
    "open_stt",
    "register_stt",
    "trim_repeats",
]

HOP = 160  # samples per mel frame (10 ms)
MAX_PROMPT_TOKENS = 223  # Whisper's "previous text" budget (half its text context, less one)
FULL_FRAMES = 3000  # Whisper's 30 s window


@dataclass(frozen=True)
class SttOptions:
    """Whisper settings.

    model_path: CTranslate2 Whisper directory (None: ``models.artifacts.resolve_whisper()``,
        the bundled tiny.en).
    compute_type: CTranslate2 compute type ("int8" is fastest on CPU).
    cpu_threads: intra-op threads; set on purpose (2 here: the machine has 2 cores
        and the VAD/audio thread needs one now and then).
    window: "fit" (encoder window fitted to the utterance) or "full" (always 30 s).
    margin_ms: extra window beyond the audio when fitting.
    window_step_ms: fitted windows are rounded up to a multiple of this.
    min_window_ms: smallest fitted window. 8 s, not the utterance's 2-3 s: Whisper was
        trained on 30 s windows, and on a much shorter one tiny.en mishears more
        (measured VAD-cut, with the voice demo's prompt, on the spoken request set / the
        50 of ``stt_heldout_requests.jsonl``: WER 13.5% / 22.1% with a 1 s floor, 9.4% /
        17.4% with 8 s, for ~7 ms more per call on one thread; the full 30 s window:
        11.5% / 19.6% at ~5x the time).
    max_tokens: decoding stops after this many tokens, and after
        ``tokens_per_s`` per second of audio (+ 10): a short window invites Whisper
        to loop, and people say about 3 words (4 tokens) a second.
    no_speech_threshold: above this no-speech probability the text is dropped ("").
    initial_prompt: text given to the decoder as "previous text" (Whisper's
        ``initial_prompt``): it biases spelling and vocabulary toward the domain.
    beam_size: 1 is greedy.
    """

    model_path: str | None = None
    compute_type: str = "int8"
    cpu_threads: int = 2
    window: Literal["fit", "full"] = "fit"
    margin_ms: float = 500.0
    window_step_ms: float = 500.0
    min_window_ms: float = 8000.0
    max_tokens: int = 96
    tokens_per_s: float = 6.0
    no_speech_threshold: float = 0.6
    initial_prompt: str | None = None
    beam_size: int = 1

    def __post_init__(self) -> None:
        if self.window not in ("fit", "full"):
            raise AudioError(f"expected window 'fit' or 'full', got {self.window!r}")
        if not 1 <= self.cpu_threads <= 64:
            raise AudioError(f"expected cpu_threads in 1..64, got {self.cpu_threads}")
        for name in ("margin_ms", "window_step_ms", "min_window_ms"):
            value = getattr(self, name)
            if not 0 <= value <= 30_000:
                raise AudioError(f"expected {name} in 0..30000 ms, got {value}")
        if self.window_step_ms < 20:
            raise AudioError(f"expected window_step_ms >= 20, got {self.window_step_ms}")
        if not 1 <= self.max_tokens <= 440:
            raise AudioError(f"expected max_tokens in 1..440, got {self.max_tokens}")
        if not 0 < self.no_speech_threshold <= 1:
            raise AudioError(f"expected no_speech_threshold in (0, 1], got "
                             f"{self.no_speech_threshold}")

    def window_frames(self, n_samples: int) -> int:
        """Encoder window (mel frames, even, <= 3000) for ``n_samples`` of audio."""
        if self.window == "full":
            return FULL_FRAMES
        need = math.ceil(n_samples / HOP) + self.margin_ms / 10
        step = self.window_step_ms / 10
        frames = max(self.min_window_ms / 10, math.ceil(need / step) * step)
        return int(min(FULL_FRAMES, frames)) // 2 * 2


@dataclass(frozen=True)
class Transcript:
    """One transcription. Times in ms are measured on the real clock."""

    text: str
    final: bool = True
    audio_ms: float = 0.0
    window_frames: int = 0
    features_ms: float = 0.0
    encode_ms: float = 0.0
    decode_ms: float = 0.0
    no_speech_prob: float = 0.0
    utterance: int = 0  # which utterance of a stream (StreamingTranscriber)
    end_t_ns: int = 0  # stamp of the last audio sample transcribed
    ready_t_ns: int = 0  # stamp when the text was available
    heard_all: bool = False  # (partials) it heard all the speech so far: started in a pause

    @property
    def compute_ms(self) -> float:
        return self.features_ms + self.encode_ms + self.decode_ms


class SpeechToText(Protocol):
    def transcribe(self, audio: np.ndarray) -> Transcript: ...


class WhisperStt:
    """faster-whisper's CTranslate2 model, loaded once, driven with features we size."""

    def __init__(self, options: SttOptions | None = None) -> None:
        self.options = options or SttOptions()
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.tokenizer import Tokenizer

            from models.artifacts import resolve_whisper

            path = resolve_whisper(self.options.model_path)
            self.model_path = Path(path)
            self._model = WhisperModel(str(path), device="cpu",
                                       compute_type=self.options.compute_type,
                                       cpu_threads=self.options.cpu_threads)
        except AudioError:
            raise
        except Exception as exc:
            if type(exc).__name__.endswith(("NotFoundError", "CorruptModelError")):
                raise
            raise SpeechModelError(f"cannot load the Whisper model: {exc}") from exc
        multilingual = self._model.model.is_multilingual
        self._tok = Tokenizer(self._model.hf_tokenizer, multilingual, task="transcribe",
                              language="en" if multilingual else None)
        self.set_prompt(self.options.initial_prompt)

    def set_prompt(self, text: str | None) -> None:
        """Whisper's "previous text" from now on (None or "": none); the next
        transcription uses it (a list swapped whole: safe from another thread)."""
        prev: list[int] = []
        if text and text.strip():  # Whisper keeps at most 223 tokens of previous text
            prev = [self._tok.sot_prev, *self._tok.encode(" " + text.strip())[-MAX_PROMPT_TOKENS:]]
        self._prompt = [*prev, *self._tok.sot_sequence, self._tok.no_timestamps]
        self.prompt_text = (text or "").strip()

    @property
    def whisper(self) -> Any:
        """The underlying ``faster_whisper.WhisperModel`` (for baselines)."""
        return self._model

    def transcribe(self, audio: np.ndarray) -> Transcript:
        x = np.asarray(audio, np.float32)
        if x.ndim != 1:
            raise AudioFormatError(f"expected mono 16 kHz samples (1-D), got shape {x.shape}")
        if len(x) == 0:
            return Transcript("", window_frames=0)
        if not np.all(np.isfinite(x)):
            raise AudioFormatError("audio contains NaN or infinite samples")
        x = x[:FULL_FRAMES * HOP]
        frames = self.options.window_frames(len(x))
        max_tokens = min(self.options.max_tokens,
                         10 + int(self.options.tokens_per_s * len(x) / SAMPLE_RATE_HZ))
        t0 = time.perf_counter()
        # Pad the *audio* with silence (as Whisper was trained), then cut the features.
        padded = np.pad(x, (0, max(0, frames * HOP - len(x))))
        feats = self._model.feature_extractor(padded)[..., :-1]
        feats = np.ascontiguousarray(_pad_or_trim(feats, frames))
        t1 = time.perf_counter()
        enc = self._model.encode(feats)
        t2 = time.perf_counter()
        prompt = self._prompt  # (set_prompt may swap it meanwhile)
        res = self._model.model.generate(
            enc, [prompt], beam_size=self.options.beam_size,
            max_length=len(prompt) + max_tokens,
            return_no_speech_prob=True, suppress_blank=True)[0]
        t3 = time.perf_counter()
        ids = [t for t in res.sequences_ids[0] if t < self._tok.eot]
        text = trim_repeats(self._tok.decode(ids).strip())
        if res.no_speech_prob > self.options.no_speech_threshold:
            text = ""
        return Transcript(text, True, 1000 * len(x) / SAMPLE_RATE_HZ, frames,
                          1000 * (t1 - t0), 1000 * (t2 - t1), 1000 * (t3 - t2),
                          float(res.no_speech_prob))


def trim_repeats(text: str) -> str:
    """Cut a Whisper loop: a phrase repeated back to back keeps one copy.

    "turn off turn off turn off" -> "turn off"; a loop after a clean start
    ("what's the w-w-w-w-w") keeps the clean start and one copy; a cut-off last
    copy is dropped. Three copies of a short phrase or two of a 3+ word one count.
    """
    tokens = re.findall(r"[^\s-]+[-\s]*", text)
    keys = [" ".join(normalize(t)) for t in tokens]
    n = len(tokens)
    for start in range(n):
        for period in range(1, (n - start) // 2 + 1):
            a = keys[start:start + period]
            if not all(a):
                continue
            reps = 1
            while keys[start + reps * period:start + (reps + 1) * period] == a:
                reps += 1
            if reps >= 3 or (reps == 2 and period >= 3):
                rest = keys[start + reps * period:]
                if not rest or (len(rest) <= period and rest[:-1] == a[:len(rest) - 1]
                                and a[len(rest) - 1].startswith(rest[-1])):
                    return "".join(tokens[:start + period]).strip(" -")
    # one whole sentence, then it starts over and is cut off: "set a timer. set a"
    for k in range(2, n):
        rest = keys[k:]
        restarts = tokens[k - 1].rstrip()[-1:] in (".", "?", "!", ",") or (
            tokens[k][:1].isupper() and len(rest) >= 2)
        if restarts and len(rest) < k and rest == keys[:len(rest)] and keys[k - 1] != keys[-1]:
            return "".join(tokens[:k]).strip(" -,")
    return text


def _pad_or_trim(feats: np.ndarray, frames: int) -> np.ndarray:
    if feats.shape[-1] >= frames:
        return feats[..., :frames]
    return np.pad(feats, ((0, 0), (0, frames - feats.shape[-1])))


SttFactory = Callable[..., SpeechToText]
STT_BACKENDS: dict[str, SttFactory] = {}


def register_stt(name: str) -> Callable[[SttFactory], SttFactory]:
    def deco(factory: SttFactory) -> SttFactory:
        if name in STT_BACKENDS:
            raise AudioError(f"STT backend {name!r} is registered twice")
        STT_BACKENDS[name] = factory
        return factory

    return deco


def open_stt(name: str = "whisper", options: SttOptions | None = None, **overrides: Any
             ) -> SpeechToText:
    """Build a registered STT backend; ``overrides`` replace fields of ``options``."""
    try:
        factory = STT_BACKENDS[name]
    except KeyError:
        raise AudioError(f"unknown STT backend {name!r}; known: "
                         f"{', '.join(sorted(STT_BACKENDS))}") from None
    return factory(replace(options or SttOptions(), **overrides))


@register_stt("whisper")
def _whisper_fit(options: SttOptions) -> WhisperStt:
    return WhisperStt(replace(options, window="fit"))


@register_stt("whisper-full")
def _whisper_full(options: SttOptions) -> WhisperStt:
    return WhisperStt(replace(options, window="full"))
