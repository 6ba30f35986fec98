"""Echo suppression: the assistant's own reply, heard back by the microphone, taken out.

On a real speaker the microphone hears the reply being played; fed to the VAD
as it is, it starts an utterance (a barge-in on itself) and gets transcribed
as a request. :class:`EchoCanceller` keeps the *reference*, the samples the
speaker was given and when, and for each microphone chunk:

1. looks for the delay (0 .. ``max_delay_ms``: the devices' buffers and the
   air) at which the chunk best follows the reference (normalised
   cross-correlation, by FFT); a delay found with a close fit
   (``lock_correlation``) in two of the last three such chunks becomes *the*
   echo path's delay (one found once is chance: the reply's own voice is
   periodic, and another voice fits it somewhere now and then);
2. at that delay (give or take ``lag_slack`` samples), where the chunk follows
   the reference at all (``min_correlation``), subtracts its
   least-squares-scaled copy: what is left is the user's voice (talking over
   the reply), or near silence when there is none;
3. passes any other chunk through as it is (nothing played, no echo path found
   yet, or a user much louder than the echo, who then barges in as before).

One delay and one gain per chunk: enough for a loopback or a close speaker
(the virtual ALSA devices, a headset's sidetone); a reverberant room needs an
adaptive filter (a limit said here, not hidden).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio.errors import AudioError
from audio.sources import SAMPLE_RATE_HZ

__all__ = ["EchoCanceller", "EchoOptions", "EchoStats"]


@dataclass(frozen=True)
class EchoOptions:
    """max_delay_ms: the longest speaker -> microphone delay looked for; history_ms: how
    much reference is kept; lock_correlation: the fit that makes a delay a candidate for
    the echo path; min_correlation: how closely a chunk must follow the reference at that
    delay for it to be taken out; lag_slack: samples either side of the delay looked at;
    min_reference_rms: quieter reference is none."""

    max_delay_ms: float = 400.0
    history_ms: float = 2000.0
    lock_correlation: float = 0.7
    min_correlation: float = 0.3
    lag_slack: int = 2
    min_reference_rms: float = 1e-3

    def __post_init__(self) -> None:
        if not 0 < self.max_delay_ms < self.history_ms <= 60_000:
            raise AudioError(f"expected 0 < max_delay_ms < history_ms <= 60000, got "
                             f"{self.max_delay_ms}, {self.history_ms}")
        if not 0 < self.min_correlation <= self.lock_correlation < 1:
            raise AudioError(f"expected 0 < min_correlation <= lock_correlation < 1, got "
                             f"{self.min_correlation}, {self.lock_correlation}")
        if not 0 <= self.lag_slack <= 160:
            raise AudioError(f"expected lag_slack in 0..160 samples, got {self.lag_slack}")


@dataclass
class EchoStats:
    chunks: int = 0  # microphone chunks processed
    with_reference: int = 0  # ... while something had been played within max_delay_ms
    cancelled: int = 0  # ... from which the reply was taken out

    def to_json(self) -> dict[str, int]:
        return dict(vars(self))


class EchoCanceller:
    """``add_reference(samples, t_ns)`` as the speaker plays; ``process(mic, t_ns)`` per
    microphone chunk (16 kHz float32; ``t_ns``: the time of the first sample, one clock)."""

    def __init__(self, options: EchoOptions | None = None) -> None:
        self.options = options or EchoOptions()
        self.delay = int(self.options.max_delay_ms * SAMPLE_RATE_HZ / 1000)
        self.keep = int(self.options.history_ms * SAMPLE_RATE_HZ / 1000)
        self._origin_ns: int | None = None
        self._base = 0  # absolute index of self._ref[0]
        self._ref = np.zeros(0, np.float32)
        self.lag: int | None = None  # the echo path's delay (samples), once found
        self._candidates: list[int] = []  # delays of the last close fits
        self.stats = EchoStats()

    def _index(self, t_ns: int) -> int:
        if self._origin_ns is None:
            self._origin_ns = t_ns
        return round((t_ns - self._origin_ns) * SAMPLE_RATE_HZ / 1e9)

    def add_reference(self, samples: np.ndarray, t_ns: int) -> None:
        """``samples`` (16 kHz) began playing at ``t_ns``."""
        x = np.asarray(samples, np.float32)
        start = self._index(t_ns)
        end = start + len(x)
        if not len(self._ref):
            self._base = start
        if start < self._base:  # older than what is kept: drop its front
            x, start = x[self._base - start:], self._base
        top = self._base + len(self._ref)
        if end > top:
            self._ref = np.concatenate([self._ref, np.zeros(end - top, np.float32)])
        self._ref[start - self._base:end - self._base] = x
        if len(self._ref) > self.keep:
            cut = len(self._ref) - self.keep
            self._ref, self._base = self._ref[cut:], self._base + cut

    def _window(self, a: int, b: int) -> np.ndarray:
        """Reference samples of absolute indices [a, b) (zeros where none)."""
        out = np.zeros(b - a, np.float32)
        lo, hi = max(a, self._base), min(b, self._base + len(self._ref))
        if lo < hi:
            out[lo - a:hi - a] = self._ref[lo - self._base:hi - self._base]
        return out

    def process(self, mic: np.ndarray, t_ns: int) -> np.ndarray:
        """The chunk with the reply's echo taken out (or as it is, see the module doc)."""
        x = np.asarray(mic, np.float32)
        self.stats.chunks += 1
        n = len(x)
        if not n or self._origin_ns is None:
            return x
        start = self._index(t_ns)
        window = self._window(start - self.delay, start + n)  # reference that can echo here
        if float(np.sqrt(np.mean(window * window))) < self.options.min_reference_rms:
            return x
        self.stats.with_reference += 1
        corr, energy = self._correlate(window, x)
        mic_norm = float(np.linalg.norm(x))
        if mic_norm == 0.0:
            return x
        ncc = corr / (mic_norm * np.sqrt(np.maximum(energy, 1e-12)))
        best = int(np.argmax(ncc))
        if ncc[best] >= self.options.lock_correlation:
            self._candidate(self.delay - best)
        if self.lag is None:
            return x
        at = self.delay - self.lag
        lo, hi = max(0, at - self.options.lag_slack), min(len(ncc), at + self.options.lag_slack + 1)
        if lo >= hi:
            return x
        k = lo + int(np.argmax(ncc[lo:hi]))
        if ncc[k] < self.options.min_correlation or energy[k] <= 0:
            return x
        gain = corr[k] / energy[k]
        self.stats.cancelled += 1
        return (x - gain * window[k:k + n]).astype(np.float32)

    def _candidate(self, lag: int) -> None:
        """A close fit at ``lag``: the echo path's delay once two of the last three agree."""
        self._candidates = [*self._candidates[-2:], lag]
        slack = self.options.lag_slack
        agreeing = [c for c in self._candidates if abs(c - lag) <= slack]
        if len(agreeing) >= 2:
            self.lag = lag

    @staticmethod
    def _correlate(window: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """corr[k] = sum_i window[k + i] x[i] and the energy of window[k:k + n], per k."""
        n, m = len(x), len(window)
        size = 1 << (m + n - 1).bit_length()
        spec = np.fft.rfft(window, size) * np.conj(np.fft.rfft(x, size))
        corr = np.fft.irfft(spec, size)[:m - n + 1]
        c = np.concatenate([[0.0], np.cumsum(window.astype(np.float64) ** 2)])
        energy = c[n:] - c[:-n]
        return corr, energy
