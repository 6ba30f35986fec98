"""Audio sources: everything that yields float32 mono 16 kHz chunks stamped with ``t_ns``.

One protocol, :class:`AudioSource` (iterate :class:`AudioChunk`, ``close()``),
and a registry of implementations:

- ``"array"``: samples already in memory (16 kHz float32);
- ``"wav"``: a WAV file (8/16/24/32-bit PCM or 32/64-bit float, any rate and
  channel count) converted to 16 kHz mono, as fast as it is read;
- ``"paced_wav"``: the same, released in real time (one chunk per chunk
  duration on an injected clock), as a microphone would deliver it;
- ``"pyaudio"``: live capture through PyAudio from a device chosen by index or
  name (see :mod:`audio.capture`).

``open_source("wav", path=...)`` builds one by name; ``register_source`` adds more.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audio.chunks import SAMPLE_RATE_HZ, AudioChunk, AudioSource
from audio.errors import AudioError, AudioFormatError
from audio.resample import pcm_to_float, resample, to_mono

__all__ = [
    "SAMPLE_RATE_HZ",
    "AudioChunk",
    "AudioSource",
    "ArraySource",
    "PacedSource",
    "WavAudio",
    "WavFileSource",
    "open_source",
    "read_wav",
    "register_source",
    "write_wav",
]

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


@dataclass(frozen=True)
class WavAudio:
    """A decoded WAV file: ``samples`` float32 mono at 16 kHz plus what the file held."""

    samples: np.ndarray
    file_rate_hz: int
    file_channels: int
    file_sample_width: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE_HZ


def _chunks(data: bytes, path: Path) -> Iterator[tuple[bytes, int, bytes]]:
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]
        yield cid, size, body
        pos += 8 + size + (size & 1)


def read_wav(path: str | Path) -> WavAudio:
    """Read a WAV file and convert it to float32 mono 16 kHz.

    Raises :class:`AudioFormatError` naming the problem for an empty, truncated,
    non-WAV or unsupported file, and :class:`AudioError` if it cannot be opened.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise AudioError(f"audio file not found: {p}; check the path") from None
    except OSError as exc:
        raise AudioError(f"cannot read audio file {p}: {exc.strerror}") from exc
    if not data:
        raise AudioFormatError(f"{p} is empty (0 bytes); record or generate the audio again")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError(
            f"{p} is not a WAV file (expected a 'RIFF'...'WAVE' header, got {data[:12]!r}); "
            "convert it, e.g. `sox in.mp3 -r 16000 -c 1 out.wav`"
        )
    fmt = None
    for cid, size, body in _chunks(data, p):
        if cid == b"fmt ":
            if len(body) < 16:
                raise AudioFormatError(f"{p} is truncated inside its 'fmt ' header")
            fmt = struct.unpack_from("<HHIIHH", body)
            if fmt[0] == _EXTENSIBLE and len(body) >= 26:
                fmt = (struct.unpack_from("<H", body, 24)[0], *fmt[1:])
        elif cid == b"data":
            if fmt is None:
                raise AudioFormatError(f"{p} has audio data before its 'fmt ' header")
            if len(body) < size:
                raise AudioFormatError(
                    f"{p} is truncated: its header promises {size} bytes of audio, "
                    f"the file holds {len(body)}; re-export the file"
                )
            return _decode(p, fmt, body)
    if fmt is None:
        raise AudioFormatError(f"{p} is truncated or damaged: no 'fmt ' header found")
    raise AudioFormatError(f"{p} is truncated or damaged: no 'data' chunk found")


def _decode(p: Path, fmt: tuple[int, ...], body: bytes) -> WavAudio:
    tag, channels, rate, _, block_align, bits = fmt
    if tag not in (_PCM, _FLOAT):
        raise AudioFormatError(
            f"{p} uses WAV encoding {tag:#x}; expected PCM (1) or float (3); "
            "convert with `sox in.wav -e signed -b 16 out.wav`"
        )
    width = bits // 8
    if channels < 1 or rate < 1000 or bits % 8 or block_align != channels * width:
        raise AudioFormatError(
            f"{p} has an inconsistent header ({channels} channels, {rate} Hz, {bits} bits, "
            f"block {block_align} bytes)"
        )
    if not body:
        raise AudioFormatError(f"{p} contains no audio (0 samples)")
    body = body[:len(body) - len(body) % block_align]
    interleaved = pcm_to_float(body, width, float_format=tag == _FLOAT)
    mono = to_mono(interleaved, channels)
    mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
    samples = np.clip(resample(mono, rate, SAMPLE_RATE_HZ), -1.0, 1.0)
    return WavAudio(samples.astype(np.float32), rate, channels, width)


def write_wav(path: str | Path, samples: np.ndarray, rate_hz: int = SAMPLE_RATE_HZ) -> Path:
    """Write float samples in [-1, 1] as 16-bit mono PCM."""
    import wave

    p = Path(path)
    pcm = (np.clip(np.asarray(samples, np.float32), -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(pcm.tobytes())
    return p


def _check_chunk_ms(chunk_ms: float) -> int:
    if not 1 <= chunk_ms <= 1000:
        raise AudioFormatError(f"expected chunk_ms in 1..1000, got {chunk_ms}")
    return max(1, round(SAMPLE_RATE_HZ * chunk_ms / 1000))


class ArraySource:
    """16 kHz float32 samples already in memory, as chunks (media-time ``t_ns``)."""

    def __init__(self, samples: np.ndarray, *, chunk_ms: float = 32.0, start_ns: int = 0) -> None:
        x = np.asarray(samples, np.float32)
        if x.ndim != 1:
            raise AudioFormatError(f"expected mono samples (1-D), got shape {x.shape}")
        self.samples = x
        self.chunk_samples = _check_chunk_ms(chunk_ms)
        self.start_ns = start_ns

    def __iter__(self) -> Iterator[AudioChunk]:
        x, n = self.samples, self.chunk_samples
        for seq, i in enumerate(range(0, len(x), n)):
            yield AudioChunk(x[i:i + n], self.start_ns + i * 1_000_000_000 // SAMPLE_RATE_HZ, seq)

    def close(self) -> None:
        pass


class WavFileSource:
    """A WAV file as chunks, delivered as fast as they are read.

    ``t_ns`` is media time: ``start_ns`` plus the chunk's offset in the file.
    """

    def __init__(self, path: str | Path, *, chunk_ms: float = 32.0, start_ns: int = 0) -> None:
        self.audio = read_wav(path)
        self.chunk_samples = _check_chunk_ms(chunk_ms)
        self.start_ns = start_ns

    def __iter__(self) -> Iterator[AudioChunk]:
        x, n = self.audio.samples, self.chunk_samples
        for seq, i in enumerate(range(0, len(x), n)):
            yield AudioChunk(x[i:i + n], self.start_ns + i * 1_000_000_000 // SAMPLE_RATE_HZ, seq)

    def close(self) -> None:
        pass

    def __enter__(self) -> WavFileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PacedSource:
    """Releases another source's chunks in real time, as a microphone would.

    Each chunk is held until ``start + its media offset`` on the injected clock
    (``now_ns``/``sleep_s``) and is restamped with the time it was released.
    """

    def __init__(
        self,
        inner: AudioSource,
        *,
        now_ns: Callable[[], int] = time.monotonic_ns,
        sleep_s: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self._now_ns = now_ns
        self._sleep_s = sleep_s

    def __iter__(self) -> Iterator[AudioChunk]:
        start = self._now_ns()
        media_ns = 0
        for chunk in self.inner:
            media_ns += len(chunk.samples) * 1_000_000_000 // SAMPLE_RATE_HZ
            wait_ns = start + media_ns - self._now_ns()  # a chunk exists once its last sample does
            if wait_ns > 0:
                self._sleep_s(wait_ns / 1e9)
            yield AudioChunk(chunk.samples, self._now_ns() - len(chunk.samples)
                             * 1_000_000_000 // SAMPLE_RATE_HZ, chunk.seq)

    def close(self) -> None:
        self.inner.close()


SourceFactory = Callable[..., AudioSource]
SOURCES: dict[str, SourceFactory] = {}


def register_source(name: str) -> Callable[[SourceFactory], SourceFactory]:
    """Decorator: make a source factory available to :func:`open_source` as ``name``."""

    def deco(factory: SourceFactory) -> SourceFactory:
        if name in SOURCES:
            raise AudioError(f"audio source {name!r} is registered twice")
        SOURCES[name] = factory
        return factory

    return deco


def open_source(name: str, **kwargs: Any) -> AudioSource:
    """Build the source registered as ``name`` (``wav``, ``paced_wav``, ``pyaudio``)."""
    try:
        factory = SOURCES[name]
    except KeyError:
        raise AudioError(
            f"unknown audio source {name!r}; known: {', '.join(sorted(SOURCES))}"
        ) from None
    return factory(**kwargs)


register_source("wav")(WavFileSource)
register_source("array")(ArraySource)


@register_source("paced_wav")
def _paced_wav(path: str | Path, *, chunk_ms: float = 32.0, **clock: Any) -> PacedSource:
    return PacedSource(WavFileSource(path, chunk_ms=chunk_ms), **clock)


@register_source("pyaudio")
def _pyaudio(device: int | str | None = None, *, chunk_ms: float = 32.0,
             max_duration_s: float | None = None, **kw: Any) -> AudioSource:
    from audio.capture import CaptureOptions, PyAudioSource  # PyAudio only when asked for

    return PyAudioSource(CaptureOptions(device, chunk_ms, max_duration_s), **kw)
