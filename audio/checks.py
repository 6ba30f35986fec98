"""Request audio: checks with clear messages, and the layout it is played back in.

:func:`check_wav` reads a WAV file (any rate, width, channels) and refuses what
cannot be a spoken request, saying why and what to do: empty, truncated or
not a WAV (from :func:`audio.sources.read_wav`), too short, or silent; badly
clipped audio is accepted with a warning. :func:`layout` lays the accepted
requests out one after another with silence between them (so the VAD ends
each utterance and each turn can finish), and returns where each one lies, so
transcripts and turns can be matched to the request they came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audio.errors import AudioFormatError
from audio.sources import SAMPLE_RATE_HZ, read_wav

__all__ = ["CheckedAudio", "Segment", "check_samples", "check_wav", "layout"]

MIN_SPEECH_S = 0.15
SILENT_PEAK = 10 ** (-50 / 20)  # -50 dBFS
CLIP_LEVEL = 0.985
CLIP_FRACTION = 0.005


@dataclass(frozen=True)
class CheckedAudio:
    label: str
    samples: np.ndarray
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Segment:
    """One request in the played stream: seconds from the stream's first sample."""

    label: str
    start_s: float
    end_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_samples(label: str, x: np.ndarray) -> CheckedAudio:
    """Refuse too-short or silent audio; warn about clipping."""
    if len(x) < MIN_SPEECH_S * SAMPLE_RATE_HZ:
        raise AudioFormatError(f"{label} holds only {1000 * len(x) / SAMPLE_RATE_HZ:.0f} ms of "
                               f"audio; a request needs at least {1000 * MIN_SPEECH_S:.0f} ms")
    peak = float(np.max(np.abs(x)))
    if peak < SILENT_PEAK:
        level = "-inf" if peak == 0 else f"{20 * np.log10(peak):.0f}"
        raise AudioFormatError(f"{label} is silent (peak {level} dBFS); check the microphone "
                               "level or the file")
    warnings = []
    clipped = float(np.mean(np.abs(x) >= CLIP_LEVEL))
    if clipped > CLIP_FRACTION:
        warnings.append(f"{label} is clipped ({100 * clipped:.1f}% of samples at full scale); "
                        "transcription may suffer: lower the recording level")
    return CheckedAudio(label, x.astype(np.float32, copy=False), tuple(warnings))


def check_wav(path: str | Path) -> CheckedAudio:
    """Read and check one request file (see the module docstring)."""
    return check_samples(str(path), read_wav(path).samples)


def layout(items: list[CheckedAudio], *, lead_s: float = 0.5, gap_s: float = 2.5
           ) -> tuple[np.ndarray, list[Segment]]:
    """The requests in order, ``lead_s`` of silence first and ``gap_s`` after each."""
    parts: list[np.ndarray] = [np.zeros(int(lead_s * SAMPLE_RATE_HZ), np.float32)]
    segments = []
    pos = len(parts[0])
    gap = np.zeros(int(gap_s * SAMPLE_RATE_HZ), np.float32)
    for item in items:
        segments.append(Segment(item.label, pos / SAMPLE_RATE_HZ,
                                (pos + len(item.samples)) / SAMPLE_RATE_HZ))
        parts += [item.samples, gap]
        pos += len(item.samples) + len(gap)
    return np.concatenate(parts), segments
