"""Streaming voice activity detection and endpointing with Silero VAD.

faster-whisper ships Silero VAD v6 as ONNX (``faster_whisper.vad``); its
``get_speech_timestamps`` needs the whole clip, so :class:`StreamingVad` runs
the same ONNX session window by window (512 samples = 32 ms, with the 64-sample
context and LSTM state carried over), giving the same probabilities as the
batch function while audio arrives.

Endpointing: speech *starts* once ``min_speech_ms`` of speech has been heard
(so a click does not start an utterance or a barge-in); the utterance *ends*
after ``silence_ms`` of silence, or at ``max_utterance_s``, or earlier when the
caller decides so (:meth:`StreamingVad.end_now`, in a silence). Events carry media
sample positions and ``t_ns`` stamps taken from the chunks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from audio.errors import AudioError, SpeechModelError
from audio.sources import SAMPLE_RATE_HZ, AudioChunk

__all__ = ["SpeechEnd", "SpeechStart", "StreamingVad", "VadEvent", "VadOptions", "segment"]

WINDOW = 512  # samples per Silero decision at 16 kHz (32 ms)
_CONTEXT = 64
_NS_PER_SAMPLE = 1e9 / SAMPLE_RATE_HZ


@dataclass(frozen=True)
class VadOptions:
    """Endpointing settings.

    threshold: speech probability at or above which a window is speech (0..1).
    neg_threshold: probability below which a window is silence while in speech
        (None: threshold - 0.15); values between keep the current state.
    silence_ms: silence that ends an utterance.
    min_speech_ms: speech needed before an utterance starts; shorter bursts are ignored.
    pre_roll_ms: audio kept before the detected start (Silero reacts a little late).
    post_roll_ms: audio kept after the last speech window.
    max_utterance_s: an utterance is cut here even without silence.
    """

    threshold: float = 0.5
    neg_threshold: float | None = None
    silence_ms: float = 400.0
    min_speech_ms: float = 160.0
    pre_roll_ms: float = 200.0
    post_roll_ms: float = 150.0
    max_utterance_s: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise AudioError(f"expected threshold in (0, 1), got {self.threshold}")
        if self.neg_threshold is not None and not 0 <= self.neg_threshold <= self.threshold:
            raise AudioError(f"expected neg_threshold in [0, threshold], got {self.neg_threshold}")
        for name in ("silence_ms", "min_speech_ms", "pre_roll_ms", "post_roll_ms"):
            value = getattr(self, name)
            if not 0 <= value <= 10_000:
                raise AudioError(f"expected {name} in 0..10000 ms, got {value}")
        if not 0.5 <= self.max_utterance_s <= 120:
            raise AudioError(f"expected max_utterance_s in 0.5..120, got {self.max_utterance_s}")

    @property
    def off_threshold(self) -> float:
        return self.neg_threshold if self.neg_threshold is not None else max(
            self.threshold - 0.15, 0.01)


@dataclass(frozen=True)
class SpeechStart:
    """Speech confirmed. ``start_sample``: where it began (media samples since the stream began)."""

    start_sample: int
    t_ns: int  # stamp of the sample where speech began
    detected_t_ns: int  # stamp of the end of the chunk that confirmed it


@dataclass(frozen=True)
class SpeechEnd:
    """End of utterance. ``audio``: the utterance with pre- and post-roll, 16 kHz float32."""

    audio: np.ndarray
    start_sample: int
    end_sample: int  # last speech sample (before post-roll)
    end_t_ns: int  # stamp of the last speech sample
    detected_t_ns: int  # stamp of the end of the chunk whose silence ended it
    forced: bool = False  # cut at max_utterance_s rather than by silence
    early: bool = False  # ended before silence_ms by :meth:`StreamingVad.end_now`


VadEvent = SpeechStart | SpeechEnd


def _load_session() -> Any:
    try:
        from faster_whisper.vad import get_vad_model

        return get_vad_model().session
    except Exception as exc:  # onnxruntime missing or the asset damaged
        raise SpeechModelError(f"cannot load Silero VAD from faster-whisper: {exc}") from exc


class StreamingVad:
    """Feed :class:`AudioChunk` objects in order; get :data:`VadEvent` objects out."""

    def __init__(self, options: VadOptions | None = None) -> None:
        self.options = options or VadOptions()
        self._session = _load_session()
        ms = SAMPLE_RATE_HZ / 1000
        self._pre = int(self.options.pre_roll_ms * ms)
        self._post = int(self.options.post_roll_ms * ms)
        self._min_speech = int(self.options.min_speech_ms * ms)
        self._silence = int(self.options.silence_ms * ms)
        self._max = int(self.options.max_utterance_s * SAMPLE_RATE_HZ)
        self.reset()

    def reset(self) -> None:
        """Forget all audio and state (a new stream)."""
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._ctx = np.zeros(_CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)  # < one window, not yet scored
        self._samples = 0  # samples scored so far
        self._stamps: deque[tuple[int, int]] = deque(maxlen=4096)  # (sample index, t_ns) anchors
        self._history: deque[np.ndarray] = deque()  # recent audio for pre-roll and utterance
        self._history_start = 0
        self._in_speech = False  # hysteresis state
        self._speech_start = -1  # first speech sample of the candidate/confirmed utterance
        self._last_speech = -1
        self._confirmed = False
        self.last_probability = 0.0

    @property
    def samples_seen(self) -> int:
        """Samples scored so far (media position of the end of the last window)."""
        return self._samples

    def stamp(self, sample: int) -> int:
        """The ``t_ns`` of media sample ``sample``, from the chunks' stamps."""
        return self._stamp(sample)

    @property
    def active(self) -> bool:
        """True between a SpeechStart and its SpeechEnd."""
        return self._confirmed

    @property
    def last_speech_sample(self) -> int:
        """Media position just after the last speech window (-1: none yet)."""
        return self._last_speech

    @property
    def silence_samples(self) -> int:
        """Samples of silence since the last speech window of an active utterance (0 while
        speech goes on or no utterance is active)."""
        if not self._confirmed or self._in_speech:
            return 0
        return self._samples - self._last_speech

    def end_now(self) -> SpeechEnd | None:
        """End the active utterance now, in a silence shorter than ``silence_ms``, when
        something else (the transcript, say) tells that the user has finished; ``None``
        when no utterance is active or speech goes on."""
        if not self.silence_samples:
            return None
        return replace(self._end(self._samples, forced=False), early=True)

    def current_audio(self) -> np.ndarray:
        """The utterance heard so far (with pre-roll), for partial transcripts; empty if none."""
        if not self._confirmed:
            return np.zeros(0, np.float32)
        return self._slice(self._speech_start - self._pre, self._samples)

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Score whole windows of ``samples`` (len a multiple of 512), carrying state."""
        x = samples.reshape(-1, WINDOW)
        ctx = np.concatenate([self._ctx[None], x[:-1, -_CONTEXT:]], axis=0)
        out, self._h, self._c = self._session.run(
            None, {"input": np.concatenate([ctx, x], axis=1), "h": self._h, "c": self._c})
        self._ctx = x[-1, -_CONTEXT:].copy()
        return np.asarray(out, np.float32).reshape(-1)

    def feed(self, chunk: AudioChunk) -> list[VadEvent]:
        samples = np.asarray(chunk.samples, np.float32)
        if samples.ndim != 1:
            raise AudioError(f"expected mono samples (1-D), got shape {samples.shape}")
        chunk_start = self._samples + len(self._pending)
        self._stamps.append((chunk_start, chunk.t_ns))
        self._pending = np.concatenate([self._pending, samples])
        n = len(self._pending) // WINDOW * WINDOW
        if n == 0:
            return []
        block, self._pending = self._pending[:n], self._pending[n:]
        self._history.append(block)
        probs = self.probabilities(block)
        events: list[VadEvent] = []
        for i, p in enumerate(probs):
            events.extend(self._step(float(p), self._samples + i * WINDOW))
        self._samples += n
        self._trim_history()
        return events

    def flush(self) -> list[VadEvent]:
        """End of stream: close an open utterance (if it was long enough)."""
        if not self._confirmed:
            return []
        return [self._end(self._samples, forced=True)]

    def _step(self, p: float, pos: int) -> list[VadEvent]:
        self.last_probability = p
        o = self.options
        if p >= o.threshold or (self._in_speech and p >= o.off_threshold):
            if not self._in_speech and self._speech_start < 0:
                self._speech_start = pos
            self._in_speech = True
            self._last_speech = pos + WINDOW
        else:
            self._in_speech = False
        end = pos + WINDOW
        if self._speech_start < 0:
            return []
        if not self._confirmed:
            if self._last_speech - self._speech_start >= self._min_speech and self._in_speech:
                self._confirmed = True
                return [SpeechStart(self._speech_start, self._stamp(self._speech_start),
                                    self._stamp(end))]
            if not self._in_speech and end - self._last_speech >= self._silence:
                self._speech_start = -1  # a burst too short to count
            return []
        if not self._in_speech and end - self._last_speech >= self._silence:
            return [self._end(end, forced=False)]
        if end - self._speech_start >= self._max:
            return [self._end(end, forced=True)]
        return []

    def _end(self, detected: int, *, forced: bool) -> SpeechEnd:
        last = self._last_speech if not forced else detected
        audio = self._slice(self._speech_start - self._pre, min(last + self._post, self._samples
                                                                + WINDOW))
        ev = SpeechEnd(audio, self._speech_start, last, self._stamp(last), self._stamp(detected),
                       forced)
        self._confirmed = False
        self._in_speech = False if not forced else self._in_speech
        self._speech_start = detected if forced and self._in_speech else -1
        return ev

    def _stamp(self, sample: int) -> int:
        anchor_sample, anchor_ns = self._stamps[0]
        for s, t in reversed(self._stamps):
            if s <= sample:
                anchor_sample, anchor_ns = s, t
                break
        return int(anchor_ns + (sample - anchor_sample) * _NS_PER_SAMPLE)

    def _slice(self, start: int, stop: int) -> np.ndarray:
        if not self._history:
            return np.zeros(0, np.float32)
        audio = np.concatenate(list(self._history))
        lo = max(0, start - self._history_start)
        return audio[lo:max(lo, stop - self._history_start)].copy()

    def _trim_history(self) -> None:
        keep_from = self._samples - self._pre - WINDOW
        if self._speech_start >= 0:
            keep_from = min(keep_from, self._speech_start - self._pre)
        while self._history and self._history_start + len(self._history[0]) < keep_from:
            self._history_start += len(self._history.popleft())


def segment(chunks: Iterable[AudioChunk], options: VadOptions | None = None,
            vad: StreamingVad | None = None) -> Iterator[VadEvent]:
    """Run a VAD over a finite chunk stream, flushing at the end."""
    v = vad or StreamingVad(options)
    for chunk in chunks:
        yield from v.feed(chunk)
    yield from v.flush()
