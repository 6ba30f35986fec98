"""Spoken replies with espeak-ng, streamed to a sink, with barge-in.

:class:`EspeakTts` runs ``espeak-ng --stdout`` and yields 16-bit PCM as the
engine produces it (espeak-ng writes sentence by sentence), so playback starts
before the whole reply is synthesised. :class:`SpeechPlayer` plays it to a
sink in chunks of ``chunk_ms``: :class:`PyAudioSink` (an output device, e.g.
the virtual speaker) or :class:`WavSink` (a file). ``stop()`` (barge-in) is
checked before every chunk, so playback halts within one chunk and the player
reports what was actually played.

Sinks without a clock (a file, ALSA's null device) would take a reply in a
few milliseconds; with ``pace=True`` the player releases chunks in real time,
so barge-in behaves as it would on a loudspeaker.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from audio.errors import AudioDeviceError, AudioError, SpeechModelError

__all__ = ["EspeakTts", "Playback", "PyAudioSink", "SpeechPlayer", "TtsOptions", "WavSink"]

_HEADER = 44  # espeak-ng writes a canonical 44-byte header with a streaming size


@dataclass(frozen=True)
class TtsOptions:
    """voice: espeak-ng voice (``espeak-ng --voices``), e.g. "en-us", "en-gb+f3".
    words_per_min: speaking speed, 80..450.
    pitch: 0..99.
    chunk_ms: playback granularity; barge-in stops within one chunk.
    pace: release chunks in real time even if the sink does not block.
    """

    voice: str = "en-us"
    words_per_min: int = 175
    pitch: int = 50
    chunk_ms: float = 20.0
    pace: bool = True

    def __post_init__(self) -> None:
        if not 80 <= self.words_per_min <= 450:
            raise AudioError(f"expected words_per_min in 80..450, got {self.words_per_min}")
        if not 0 <= self.pitch <= 99:
            raise AudioError(f"expected pitch in 0..99, got {self.pitch}")
        if not 5 <= self.chunk_ms <= 500:
            raise AudioError(f"expected chunk_ms in 5..500, got {self.chunk_ms}")
        if not self.voice or any(c.isspace() for c in self.voice) or self.voice.startswith("-"):
            raise AudioError(f"expected an espeak-ng voice name like 'en-us', got {self.voice!r}")


class EspeakTts:
    """Text to 16-bit mono PCM with the espeak-ng command-line engine."""

    def __init__(self, options: TtsOptions | None = None, *, executable: str = "espeak-ng") -> None:
        self.options = options or TtsOptions()
        exe = shutil.which(executable)
        if exe is None:
            raise SpeechModelError(f"{executable} not found; install it (`apt-get install espeak-ng`)")
        self.executable = exe
        self.rate_hz = 22050
        self._proc: subprocess.Popen[bytes] | None = None

    def _command(self, text: str, voice: str | None, words_per_min: int | None) -> list[str]:
        o = self.options
        return [self.executable, "--stdout", "-v", voice or o.voice,
                "-s", str(words_per_min or o.words_per_min), "-p", str(o.pitch), "--", text]

    def stream(self, text: str, *, voice: str | None = None, words_per_min: int | None = None,
               block_bytes: int = 4096) -> Iterator[bytes]:
        """PCM blocks (int16 little-endian mono at ``rate_hz``) as espeak-ng produces them."""
        if not text.strip():
            return
        proc = subprocess.Popen(self._command(text, voice, words_per_min),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._proc = proc
        assert proc.stdout is not None
        try:
            header = proc.stdout.read(_HEADER)
            if len(header) < _HEADER or header[:4] != b"RIFF":
                err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
                raise SpeechModelError(f"espeak-ng produced no audio for voice "
                                       f"{voice or self.options.voice!r}: {err or 'no output'}")
            self.rate_hz = struct.unpack_from("<I", header, 24)[0]
            while block := proc.stdout.read1(block_bytes):
                yield block
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
            if proc.stderr:
                proc.stderr.close()

    def synthesize(self, text: str, **kw: Any) -> np.ndarray:
        """The whole reply as float32 samples at ``rate_hz``."""
        data = b"".join(self.stream(text, **kw))
        return np.frombuffer(data[:len(data) // 2 * 2], "<i2").astype(np.float32) / 32768.0

    def to_wav(self, text: str, path: str | Path, **kw: Any) -> Path:
        """Speak ``text`` into a 16-bit mono WAV file at ``rate_hz``."""
        data = b"".join(self.stream(text, **kw))
        p = Path(path)
        with wave.open(str(p), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.rate_hz)
            w.writeframes(data[:len(data) // 2 * 2])
        return p


class AudioSink(Protocol):
    def write(self, pcm: bytes) -> None: ...

    def close(self) -> None: ...


class WavSink:
    """Writes played audio to a 16-bit mono WAV file."""

    def __init__(self, path: str | Path, rate_hz: int = 22050) -> None:
        self.path = Path(path)
        self._w = wave.open(str(self.path), "wb")  # noqa: SIM115 (closed by close())
        self._w.setnchannels(1)
        self._w.setsampwidth(2)
        self._w.setframerate(rate_hz)

    def write(self, pcm: bytes) -> None:
        self._w.writeframes(pcm)

    def close(self) -> None:
        self._w.close()


class PyAudioSink:
    """An output device opened through PyAudio (index or name; None = default)."""

    def __init__(self, device: int | str | None = None, rate_hz: int = 22050, *, pa: Any = None) -> None:
        import pyaudio

        from audio.capture import find_device, open_pyaudio

        self._owns_pa = pa is None
        self._pa = pa if pa is not None else open_pyaudio()
        try:
            self.device_index = find_device(self._pa, device, direction="output")
            self._stream = self._pa.open(format=pyaudio.paInt16, channels=1, rate=rate_hz,
                                         output=True, output_device_index=self.device_index)
        except OSError as exc:
            self.close()
            raise AudioDeviceError(f"cannot open output device {device!r} at {rate_hz} Hz: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def write(self, pcm: bytes) -> None:
        self._stream.write(pcm)

    def close(self) -> None:
        stream = getattr(self, "_stream", None)
        if stream is not None:
            stream.stop_stream()  # lets what was written drain to the device
            stream.close()
            self._stream = None
        if self._owns_pa and self._pa is not None:
            self._pa.terminate()
            self._pa = None


@dataclass(frozen=True)
class Playback:
    """What a ``play`` call actually did."""

    text: str
    samples_played: int
    rate_hz: int
    stopped: bool  # True when stop() cut it short
    first_audio_ms: float  # from play() to the first chunk handed to the sink (real clock)
    duration_ms: float  # wall time of the call

    @property
    def played_ms(self) -> float:
        return 1000.0 * self.samples_played / self.rate_hz


class SpeechPlayer:
    """Speaks text to a sink; ``stop()`` from any thread halts it within one chunk."""

    def __init__(self, tts: EspeakTts, sink: AudioSink, *,
                 now_s: Callable[[], float] = time.perf_counter,
                 sleep_s: Callable[[float], None] = time.sleep) -> None:
        self.tts = tts
        self.sink = sink
        self._stop = threading.Event()
        self._now_s = now_s
        self._sleep_s = sleep_s
        self._thread: threading.Thread | None = None
        self.last: Playback | None = None

    def stop(self) -> None:
        """Barge-in: stop the current reply before its next chunk."""
        self._stop.set()

    @property
    def speaking(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def play(self, text: str) -> Playback:
        """Speak ``text`` and block until done or stopped."""
        self._stop.clear()
        t0 = self._now_s()
        chunk_bytes = 2 * max(1, int(self.tts.rate_hz * self.tts.options.chunk_ms / 1000))
        played = 0
        first = -1.0
        buf = b""
        stopped = False
        stream = self.tts.stream(text)
        try:
            for block in stream:
                buf += block
                while len(buf) >= chunk_bytes or (buf and not block):
                    if self._stop.is_set():
                        stopped = True
                        break
                    piece, buf = buf[:chunk_bytes], buf[chunk_bytes:]
                    played = self._write(piece, played, t0)
                    if first < 0:
                        first = self._now_s() - t0
                if stopped:
                    break
            if buf and not stopped and not self._stop.is_set():
                played = self._write(buf, played, t0)
                if first < 0:
                    first = self._now_s() - t0
            stopped = stopped or self._stop.is_set()
        finally:
            stream.close()  # kills espeak-ng if we stopped early
        self.last = Playback(text, played, self.tts.rate_hz, stopped, 1000 * max(first, 0.0),
                             1000 * (self._now_s() - t0))
        return self.last

    def _write(self, piece: bytes, played: int, t0: float) -> int:
        self.sink.write(piece)
        played += len(piece) // 2
        if self.tts.options.pace:  # hold until the audio written so far has been heard
            ahead = t0 + played / self.tts.rate_hz - self._now_s()
            if ahead > 0:
                self._sleep_s(ahead)
        return played

    def start(self, text: str) -> threading.Thread:
        """Speak in a background thread (``stop()`` to barge in, ``wait()`` for the result)."""
        if self.speaking:
            raise AudioError("already speaking; stop() or wait() first")
        self._stop.clear()
        self._thread = threading.Thread(target=self.play, args=(text,), name="tts", daemon=True)
        self._thread.start()
        return self._thread

    def wait(self, timeout_s: float | None = None) -> Playback | None:
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self.last

    def close(self) -> None:
        self.stop()
        self.wait(5.0)
        self.sink.close()
