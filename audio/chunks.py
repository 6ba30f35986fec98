"""The unit every audio source yields: :class:`AudioChunk` (float32 mono at 16 kHz,
stamped with the monotonic time of its first sample), and the :class:`AudioSource`
protocol. Below :mod:`audio.sources` and :mod:`audio.capture`, which both make them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["SAMPLE_RATE_HZ", "AudioChunk", "AudioSource"]

SAMPLE_RATE_HZ = 16000  # every source delivers this rate, mono, float32


@dataclass(frozen=True)
class AudioChunk:
    """``samples``: float32 mono at 16 kHz; ``t_ns``: monotonic time of the first sample."""

    samples: np.ndarray
    t_ns: int
    seq: int

    @property
    def duration_ms(self) -> float:
        return 1000.0 * len(self.samples) / SAMPLE_RATE_HZ


@runtime_checkable
class AudioSource(Protocol):
    """Yields :class:`AudioChunk` until the audio ends (or forever, for a microphone)."""

    def __iter__(self) -> Iterator[AudioChunk]: ...

    def close(self) -> None: ...
