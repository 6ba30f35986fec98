"""Sample-format and sample-rate conversion to float32 mono, in numpy only.

:class:`Resampler` is streaming: it keeps its filter history and fractional
phase between calls, so a capture stream converted chunk by chunk gives the
same samples as the whole signal converted at once. Downsampling low-passes
first (windowed-sinc FIR at 0.9 x the new Nyquist) so speech energy above
8 kHz does not fold back into the band Whisper listens to.
"""

from __future__ import annotations

import numpy as np

from audio.errors import AudioFormatError

__all__ = ["Resampler", "pcm_to_float", "resample", "to_mono"]

_TAPS = 63  # odd: linear phase with an integer delay of 31 samples


def pcm_to_float(data: bytes, sample_width: int, *, float_format: bool = False) -> np.ndarray:
    """Interleaved little-endian PCM bytes to float32 in [-1, 1] (channels still interleaved)."""
    if float_format:
        if sample_width not in (4, 8):
            raise AudioFormatError(f"expected 32- or 64-bit float samples, got {8 * sample_width}-bit")
        return np.frombuffer(data, "<f4" if sample_width == 4 else "<f8").astype(np.float32)
    if sample_width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0
    if sample_width == 2:
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
    if sample_width == 3:
        raw = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        return ints.astype(np.float32) / float(1 << 23)
    if sample_width == 4:
        return (np.frombuffer(data, "<i4").astype(np.float64) / float(1 << 31)).astype(np.float32)
    raise AudioFormatError(f"expected 8-, 16-, 24- or 32-bit PCM samples, got {8 * sample_width}-bit")


def to_mono(interleaved: np.ndarray, channels: int) -> np.ndarray:
    """Average interleaved channels to one."""
    if channels < 1:
        raise AudioFormatError(f"expected at least 1 channel, got {channels}")
    if channels == 1:
        return interleaved.astype(np.float32, copy=False)
    usable = len(interleaved) - len(interleaved) % channels
    return interleaved[:usable].reshape(-1, channels).mean(axis=1).astype(np.float32)


def _lowpass(cutoff: float) -> np.ndarray:
    """Windowed-sinc low-pass taps; ``cutoff`` as a fraction of the sample rate (< 0.5)."""
    n = np.arange(_TAPS) - (_TAPS - 1) / 2
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.blackman(_TAPS)
    return (taps / taps.sum()).astype(np.float32)


class Resampler:
    """Streaming converter from ``src_rate_hz`` to ``dst_rate_hz`` (float32 mono)."""

    def __init__(self, src_rate_hz: int, dst_rate_hz: int = 16000) -> None:
        for name, rate in (("source", src_rate_hz), ("target", dst_rate_hz)):
            if not 1000 <= rate <= 384000:
                raise AudioFormatError(f"expected a {name} sample rate in 1000..384000 Hz, got {rate}")
        self.src_rate_hz = src_rate_hz
        self.dst_rate_hz = dst_rate_hz
        self._step = src_rate_hz / dst_rate_hz  # source samples per output sample
        self._taps = _lowpass(0.45 / self._step) if self._step > 1 else None
        self._hist = np.zeros(_TAPS - 1 if self._taps is not None else 0, np.float32)
        self._buf = np.zeros(0, np.float32)  # filtered samples not yet fully consumed
        # position of the next output sample within _buf; the FIR delays by half its length
        self._pos = float((_TAPS - 1) // 2) if self._taps is not None else 0.0

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples, np.float32)
        if self._step == 1.0:
            return x.copy()
        if self._taps is not None:  # causal FIR with history carried across calls
            ext = np.concatenate([self._hist, x])
            self._hist = ext[len(ext) - (_TAPS - 1):]
            x = np.convolve(ext, self._taps, mode="valid").astype(np.float32)
        buf = np.concatenate([self._buf, x])
        if len(buf) < 2:
            self._buf = buf
            return np.zeros(0, np.float32)
        last = len(buf) - 1  # interpolation needs a right neighbour
        count = int(np.floor((last - self._pos) / self._step)) + 1 if self._pos <= last else 0
        idx = self._pos + self._step * np.arange(count)
        out = np.interp(idx, np.arange(len(buf)), buf).astype(np.float32)
        self._pos += self._step * count
        keep = min(int(np.floor(self._pos)), len(buf) - 1)
        self._buf = buf[keep:]
        self._pos -= keep
        return out


    def flush(self) -> np.ndarray:
        """The samples still held back by the filter's delay (end of stream)."""
        if self._taps is None:
            return np.zeros(0, np.float32)
        return self(np.zeros((_TAPS - 1) // 2, np.float32))


def resample(samples: np.ndarray, src_rate_hz: int, dst_rate_hz: int = 16000) -> np.ndarray:
    """One-shot conversion of a whole signal (see :class:`Resampler`), delay-free."""
    r = Resampler(src_rate_hz, dst_rate_hz)
    out = np.concatenate([r(samples), r.flush()])
    want = int(round(len(samples) * dst_rate_hz / src_rate_hz))
    return out[:want] if len(out) > want else out
