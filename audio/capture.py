"""PyAudio capture and device lookup.

``PyAudioSource`` opens an input device by index or by name (exact, then
substring), reads 16-bit frames in chunks and converts them to float32 mono
16 kHz. It asks the device for 16 kHz mono first and falls back to the
device's own rate and channel count, converting in numpy.

PortAudio reads the ALSA configuration when PyAudio is created, so set
``ALSA_CONFIG_PATH`` (see :mod:`audio.alsa_virtual`) before calling
:func:`open_pyaudio`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from audio.chunks import SAMPLE_RATE_HZ, AudioChunk
from audio.errors import AudioDeviceError, AudioError
from audio.resample import Resampler, pcm_to_float, to_mono

__all__ = ["CaptureOptions", "PyAudioSource", "find_device", "list_devices", "open_pyaudio"]


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence C-level chatter (ALSA, JACK probing) while PortAudio initialises."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def open_pyaudio() -> Any:
    """A ``pyaudio.PyAudio`` instance (PortAudio initialised quietly)."""
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    try:
        import pyaudio
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise AudioDeviceError("PyAudio is not installed; `pip install pyaudio`") from exc
    with _quiet_stderr():
        return pyaudio.PyAudio()


def list_devices(pa: Any) -> list[dict[str, Any]]:
    """Every device PortAudio sees: index, name, input/output channels, default rate."""
    out = []
    for i in range(pa.get_device_count()):
        d = pa.get_device_info_by_index(i)
        out.append({"index": i, "name": d["name"], "inputs": int(d["maxInputChannels"]),
                    "outputs": int(d["maxOutputChannels"]), "rate_hz": int(d["defaultSampleRate"])})
    return out


def find_device(pa: Any, device: int | str | None, *, direction: str) -> int:
    """Index of the ``direction`` ("input"/"output") device named or numbered by ``device``."""
    key = "inputs" if direction == "input" else "outputs"
    devices = [d for d in list_devices(pa) if d[key] > 0]
    listing = ", ".join(f"{d['index']}: {d['name']}" for d in devices) or "none"
    if device is None:
        try:
            info = (pa.get_default_input_device_info() if direction == "input"
                    else pa.get_default_output_device_info())
        except OSError:
            raise AudioDeviceError(
                f"no default {direction} audio device; pass one by index or name "
                f"(available {direction}s: {listing})"
            ) from None
        return int(info["index"])
    if isinstance(device, int) or (isinstance(device, str) and device.isdigit()):
        idx = int(device)
        if any(d["index"] == idx for d in devices):
            return idx
        raise AudioDeviceError(f"no {direction} audio device with index {idx}; "
                               f"available {direction}s: {listing}")
    for match in (lambda d: d["name"] == device, lambda d: device.lower() in d["name"].lower()):
        found = [d for d in devices if match(d)]
        if found:
            return int(found[0]["index"])
    raise AudioDeviceError(f"no {direction} audio device named {device!r}; "
                           f"available {direction}s: {listing}")


@dataclass(frozen=True)
class CaptureOptions:
    """How to capture.

    device: index or name (exact, else substring) of the input; None = default.
    chunk_ms: audio per chunk, 1..1000 ms.
    max_duration_s: stop after this much audio (None = until closed); use it for
        a virtual device that plays a file, whose end PortAudio cannot see.
    """

    device: int | str | None = None
    chunk_ms: float = 32.0
    max_duration_s: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_ms <= 1000:
            raise AudioError(f"expected chunk_ms in 1..1000, got {self.chunk_ms}")
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            raise AudioError(f"expected max_duration_s > 0 or None, got {self.max_duration_s}")


class PyAudioSource:
    """Live capture from a PyAudio input device, as 16 kHz mono float32 chunks."""

    def __init__(self, options: CaptureOptions | None = None, *,
                 now_ns: Callable[[], int] = time.monotonic_ns, pa: Any = None) -> None:
        import pyaudio

        self.options = options or CaptureOptions()
        self._now_ns = now_ns
        self._owns_pa = pa is None
        self._pa = pa if pa is not None else open_pyaudio()
        self._stream: Any = None
        try:
            self.device_index = find_device(self._pa, self.options.device, direction="input")
            info = self._pa.get_device_info_by_index(self.device_index)
            self.device_name = str(info["name"])
            self.rate_hz, self.channels = self._pick_format(info, pyaudio.paInt16)
            self._frames = max(1, round(self.rate_hz * self.options.chunk_ms / 1000))
            try:
                self._stream = self._pa.open(
                    format=pyaudio.paInt16, channels=self.channels, rate=self.rate_hz,
                    input=True, input_device_index=self.device_index,
                    frames_per_buffer=self._frames)
            except OSError as exc:
                raise AudioDeviceError(
                    f"cannot open input device {self.device_name!r} at {self.rate_hz} Hz, "
                    f"{self.channels} channel(s): {exc}; is another program using it?"
                ) from exc
        except BaseException:
            self.close()
            raise
        self._resampler = Resampler(self.rate_hz, SAMPLE_RATE_HZ)

    def _pick_format(self, info: dict[str, Any], fmt: int) -> tuple[int, int]:
        for rate, ch in ((SAMPLE_RATE_HZ, 1), (int(info["defaultSampleRate"]), 1),
                         (int(info["defaultSampleRate"]), min(2, int(info["maxInputChannels"])))):
            try:
                if self._pa.is_format_supported(rate, input_device=self.device_index,
                                                input_channels=ch, input_format=fmt):
                    return rate, ch
            except ValueError:
                continue
        raise AudioDeviceError(f"input device {info['name']!r} accepts neither 16 kHz mono "
                               f"nor its default {int(info['defaultSampleRate'])} Hz")

    def __iter__(self) -> Iterator[AudioChunk]:
        if self._stream is None:
            raise AudioDeviceError("capture stream is closed")
        limit = self.options.max_duration_s
        total = 0
        seq = 0
        while limit is None or total < limit * self.rate_hz:
            frames = self._frames if limit is None else min(
                self._frames, int(limit * self.rate_hz) - total)
            try:
                data = self._stream.read(frames, exception_on_overflow=False)
            except OSError as exc:
                raise AudioDeviceError(f"reading from {self.device_name!r} failed: {exc}") from exc
            now = self._now_ns()
            total += frames
            samples = self._resampler(to_mono(pcm_to_float(data, 2), self.channels))
            if len(samples):
                dur_ns = len(samples) * 1_000_000_000 // SAMPLE_RATE_HZ
                yield AudioChunk(samples, now - dur_ns, seq)
                seq += 1

    def close(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.stop_stream()
            self._stream.close()
            self._stream = None
        if self._owns_pa and self._pa is not None:
            self._pa.terminate()
            self._pa = None

    def __enter__(self) -> PyAudioSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

