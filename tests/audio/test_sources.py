"""Audio sources: WAV decoding of every supported layout, clear errors for bad
files, the streaming resampler, paced release on a fake clock, the registry."""

from __future__ import annotations

import shutil
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from audio.errors import AudioError, AudioFormatError
from audio.resample import Resampler, resample
from audio.sources import (
    SAMPLE_RATE_HZ,
    ArraySource,
    AudioSource,
    PacedSource,
    WavFileSource,
    open_source,
    read_wav,
    write_wav,
)


def _tone(rate: int, seconds: float = 0.5, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _write_pcm(path: Path, samples: np.ndarray, rate: int, width: int, channels: int = 1) -> Path:
    x = np.repeat(samples[:, None], channels, axis=1).reshape(-1)
    if width == 1:
        data = (x * 127 + 128).astype(np.uint8).tobytes()
    elif width == 2:
        data = (x * 32767).astype("<i2").tobytes()
    elif width == 3:
        ints = (x * 8388607).astype("<i4")
        data = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
    else:
        data = (x * 2147483647).astype("<i4").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return path


def _write_float(path: Path, samples: np.ndarray, rate: int) -> Path:
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack(
        "<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@pytest.mark.parametrize(("rate", "width", "channels"), [
    (16000, 2, 1), (44100, 2, 2), (48000, 3, 1), (22050, 1, 1), (8000, 4, 2), (32000, 2, 6)])
def test_pcm_wav_of_any_layout_becomes_16k_mono(tmp_path, rate, width, channels):
    src = _tone(rate)
    audio = read_wav(_write_pcm(tmp_path / "a.wav", src, rate, width, channels))
    assert (audio.file_rate_hz, audio.file_channels, audio.file_sample_width) == (rate, channels, width)
    assert audio.samples.dtype == np.float32
    assert abs(len(audio.samples) - 0.5 * SAMPLE_RATE_HZ) <= 2
    ref = _tone(SAMPLE_RATE_HZ)[:len(audio.samples)]
    # same tone after conversion (skip the filter's start-up)
    assert np.corrcoef(audio.samples[200:], ref[200:])[0, 1] > 0.99


def test_float_wav_and_sox_written_files(tmp_path):
    audio = read_wav(_write_float(tmp_path / "f.wav", _tone(24000), 24000))
    assert abs(audio.duration_s - 0.5) < 0.01
    if shutil.which("sox"):
        out = tmp_path / "sox.wav"
        subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", "-b", "24", str(out),
                        "synth", "0.3", "sine", "300"], check=True)
        assert abs(read_wav(out).duration_s - 0.3) < 0.01


def test_bad_files_give_clear_errors(tmp_path):
    good = _write_pcm(tmp_path / "good.wav", _tone(16000), 16000, 2).read_bytes()
    cases = {
        "empty.wav": (b"", "empty"),
        "text.wav": (b"this is not audio at all", "not a WAV file"),
        "truncated.wav": (good[:len(good) // 2], "truncated"),
        "header_only.wav": (good[:30], "truncated"),
    }
    for name, (data, words) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(AudioFormatError, match=words):
            read_wav(p)
    zero = _write_pcm(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000, 2)
    with pytest.raises(AudioFormatError, match="no audio"):
        read_wav(zero)
    with pytest.raises(AudioError, match="not found"):
        read_wav(tmp_path / "missing.wav")


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_unsupported_encoding_says_how_to_convert(tmp_path):
    p = tmp_path / "ulaw.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-e", "u-law", str(p), "synth", "0.2", "sine", "300"],
                   check=True)
    with pytest.raises(AudioFormatError, match="sox"):
        read_wav(p)


def test_streaming_resampler_matches_one_shot():
    x = np.random.default_rng(1).normal(0, 0.2, 44100).astype(np.float32)
    whole = resample(x, 44100, 16000)
    r = Resampler(44100, 16000)
    pieces = np.concatenate([r(x[i:i + 1000]) for i in range(0, len(x), 1000)] + [r.flush()])
    n = min(len(whole), len(pieces))
    assert abs(len(whole) - len(pieces)) <= 12  # flush may run a few samples past the end
    np.testing.assert_allclose(pieces[:n], whole[:n], atol=1e-5)
    up = resample(_tone(8000), 8000, 16000)
    assert abs(len(up) - 8000) <= 2


def test_downsampling_removes_energy_above_the_new_nyquist():
    high = _tone(48000, 1.0, hz=12000)  # above 8 kHz: must not alias into the band
    out = resample(high, 48000, 16000)
    assert np.sqrt(np.mean(out[100:] ** 2)) < 0.02


def test_sources_chunk_and_stamp(tmp_path):
    path = write_wav(tmp_path / "t.wav", _tone(16000, 1.0))
    src = WavFileSource(path, chunk_ms=100, start_ns=5)
    assert isinstance(src, AudioSource)
    chunks = list(src)
    assert [c.seq for c in chunks] == list(range(10))
    assert chunks[3].t_ns == 5 + 300_000_000
    assert all(len(c.samples) == 1600 for c in chunks)
    assert isinstance(open_source("wav", path=path), WavFileSource)
    with pytest.raises(AudioError, match="unknown audio source"):
        open_source("nope")
    with pytest.raises(AudioFormatError, match="chunk_ms"):
        ArraySource(np.zeros(10, np.float32), chunk_ms=0)


def test_paced_source_releases_in_media_time_on_a_fake_clock():
    now = [1_000]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += int(s * 1e9)

    paced = PacedSource(ArraySource(np.zeros(16000, np.float32), chunk_ms=250),
                        now_ns=lambda: now[0], sleep_s=sleep)
    chunks = list(paced)
    assert len(chunks) == 4
    assert slept == pytest.approx([0.25] * 4)
    # each chunk is stamped with the time of its first sample
    assert [c.t_ns - 1_000 for c in chunks] == [0, 250_000_000, 500_000_000, 750_000_000]
