"""A virtual ALSA microphone and speaker, so PyAudio opens a real device without hardware.

:func:`create_virtual_audio` writes an ``asound.conf`` that defines

- ``rtagent_mic``: capture through ALSA's ``file`` plugin over a ``null`` PCM;
  every read returns the next frames of a raw 16-bit file (``load_mic`` fills it);
- ``rtagent_speaker``: playback through the ``file`` plugin; every frame played
  is appended to a raw 16-bit file (``read_speaker`` reads it back);
- ``default``: the two together.

Both are wrapped in ``plug`` (format and channel conversion). The microphone's
file is 16 kHz: open it at 16 kHz, as :class:`audio.capture.PyAudioSource` does
(with ``plug`` converting the rate of a ``null``-clocked capture, reads stall).
PortAudio reads the ALSA configuration when ``pyaudio.PyAudio()`` is created (``Pa_Initialize``), so call
:meth:`VirtualAudio.activate` (it sets ``ALSA_CONFIG_PATH``) first; the file
replaces the system configuration, so only these devices are visible.

The ``null`` PCM has no clock: capture and playback run as fast as they are
read or written. Pace on our side (``PacedSource``) when real time matters.
After the end of the input file ALSA returns stale frames, so capture exactly
``load_mic``'s returned duration (``CaptureOptions.max_duration_s``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.errors import AudioError
from audio.resample import resample
from audio.sources import SAMPLE_RATE_HZ, read_wav

__all__ = ["MIC", "SPEAKER", "VirtualAudio", "create_virtual_audio", "virtual_audio"]

MIC = "rtagent_mic"
SPEAKER = "rtagent_speaker"

_CONF = """\
# Written by rtagent (audio/alsa_virtual.py): a virtual microphone and speaker.
# The file/null plugins are inline so that only the two devices are listed.
pcm.{mic} {{
    type plug
    slave {{
        pcm {{
            type file
            slave.pcm {{ type null }}
            file "/dev/null"
            infile "{mic_path}"
            format "raw"
        }}
        format S16_LE
        rate {mic_rate}
        channels 1
    }}
    hint {{ show on description "rtagent virtual microphone (reads {mic_path})" }}
}}
pcm.{speaker} {{
    type plug
    slave {{
        pcm {{
            type file
            slave.pcm {{ type null }}
            file "{speaker_path}"
            format "raw"
        }}
        format S16_LE
        rate {speaker_rate}
        channels 1
    }}
    hint {{ show on description "rtagent virtual speaker (writes {speaker_path})" }}
}}
pcm.!default {{
    type asym
    capture.pcm "{mic}"
    playback.pcm "{speaker}"
}}
"""


@dataclass(frozen=True)
class VirtualAudio:
    """The files behind one virtual microphone/speaker pair."""

    config_path: Path
    mic_path: Path
    speaker_path: Path
    mic_rate_hz: int
    speaker_rate_hz: int
    mic_device: str = MIC
    speaker_device: str = SPEAKER

    def activate(self) -> str | None:
        """Point ALSA at this configuration; returns the previous ``ALSA_CONFIG_PATH``."""
        previous = os.environ.get("ALSA_CONFIG_PATH")
        os.environ["ALSA_CONFIG_PATH"] = str(self.config_path)
        return previous

    def load_mic(self, audio: np.ndarray | str | Path, *, lead_silence_s: float = 0.0,
                 tail_silence_s: float = 0.5) -> float:
        """Make the microphone play ``audio`` (16 kHz float samples or a WAV path) next.

        Returns the seconds of audio now queued (silence included): capture that much.
        Takes effect for streams opened after the call.
        """
        if lead_silence_s < 0 or tail_silence_s < 0:
            raise AudioError(f"expected silences >= 0 s, got {lead_silence_s}, {tail_silence_s}")
        x = read_wav(audio).samples if isinstance(audio, str | Path) else np.asarray(audio)
        x = np.concatenate([np.zeros(int(lead_silence_s * SAMPLE_RATE_HZ), np.float32),
                            x.astype(np.float32),
                            np.zeros(int(tail_silence_s * SAMPLE_RATE_HZ), np.float32)])
        x = resample(x, SAMPLE_RATE_HZ, self.mic_rate_hz)
        pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2")
        # Past the end of its file ALSA's file plugin returns stale frames, so keep a
        # guard of silence beyond what we tell the caller to capture.
        guard = np.zeros(self.mic_rate_hz, "<i2")
        tmp = self.mic_path.with_suffix(".tmp")
        tmp.write_bytes(pcm.tobytes() + guard.tobytes())
        tmp.replace(self.mic_path)
        return len(pcm) / self.mic_rate_hz

    def read_speaker(self) -> np.ndarray:
        """Everything played to the speaker so far, float32 at ``speaker_rate_hz``."""
        if not self.speaker_path.exists():
            return np.zeros(0, np.float32)
        data = self.speaker_path.read_bytes()
        return np.frombuffer(data[:len(data) // 2 * 2], "<i2").astype(np.float32) / 32768.0

    def clear_speaker(self) -> None:
        self.speaker_path.write_bytes(b"")


def create_virtual_audio(directory: str | Path, *, speaker_rate_hz: int = 22050) -> VirtualAudio:
    """Write the configuration and empty device files under ``directory``."""
    d = Path(directory).resolve()
    d.mkdir(parents=True, exist_ok=True)
    if not 8000 <= speaker_rate_hz <= 192000:
        raise AudioError(f"expected a speaker rate in 8000..192000 Hz, got {speaker_rate_hz}")
    va = VirtualAudio(d / "asound.conf", d / "mic.raw", d / "speaker.raw",
                      SAMPLE_RATE_HZ, speaker_rate_hz)
    for path in (va.mic_path, va.speaker_path):
        if '"' in str(path) or "\n" in str(path):
            raise AudioError(f"cannot use {path} in an ALSA config; choose a plain directory")
    va.config_path.write_text(_CONF.format(
        mic=MIC, speaker=SPEAKER, mic_path=va.mic_path, speaker_path=va.speaker_path,
        mic_rate=SAMPLE_RATE_HZ, speaker_rate=speaker_rate_hz))
    va.mic_path.write_bytes(b"")
    va.speaker_path.write_bytes(b"")
    return va


@contextlib.contextmanager
def virtual_audio(directory: str | Path, **rates: int) -> Iterator[VirtualAudio]:
    """Create and activate a virtual device pair; restore ``ALSA_CONFIG_PATH`` afterwards."""
    va = create_virtual_audio(directory, **rates)
    previous = va.activate()
    try:
        yield va
    finally:
        if previous is None:
            os.environ.pop("ALSA_CONFIG_PATH", None)
        else:
            os.environ["ALSA_CONFIG_PATH"] = previous
