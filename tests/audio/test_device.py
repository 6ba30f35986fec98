"""Real PyAudio on the virtual ALSA devices (ALSA's file plugin over null): capture
returns exactly what the microphone file holds, playback lands in the speaker
file, missing devices give clear errors, TTS plays and barge-in stops it."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from audio.alsa_virtual import MIC, SPEAKER, virtual_audio
from audio.capture import CaptureOptions, PyAudioSource, list_devices, open_pyaudio
from audio.errors import AudioDeviceError
from audio.sources import SAMPLE_RATE_HZ, open_source
from audio.tts import EspeakTts, PyAudioSink, SpeechPlayer, TtsOptions, WavSink


@pytest.fixture
def va(tmp_path):
    with virtual_audio(tmp_path / "alsa") as v:
        yield v


def test_virtual_devices_are_enumerated_by_portaudio(va):
    pa = open_pyaudio()
    try:
        names = {d["name"]: d for d in list_devices(pa)}
    finally:
        pa.terminate()
    assert names[MIC]["inputs"] > 0
    assert names[SPEAKER]["outputs"] > 0


def test_capture_returns_the_microphone_audio_exactly(va):
    rng = np.random.default_rng(3)
    speech = (0.3 * rng.standard_normal(SAMPLE_RATE_HZ)).clip(-1, 1).astype(np.float32)
    seconds = va.load_mic(speech, lead_silence_s=0.25, tail_silence_s=0.25)
    assert seconds == pytest.approx(1.5)
    with open_source("pyaudio", device=MIC, max_duration_s=seconds) as src:
        assert src.device_name == MIC and src.rate_hz == SAMPLE_RATE_HZ
        chunks = list(src)
    x = np.concatenate([c.samples for c in chunks])
    assert len(x) == int(1.5 * SAMPLE_RATE_HZ)
    lead = int(0.25 * SAMPLE_RATE_HZ)
    np.testing.assert_allclose(x[lead:lead + len(speech)], speech, atol=1 / 16000)
    assert not x[:lead].any()
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert all(b.t_ns >= a.t_ns for a, b in zip(chunks, chunks[1:], strict=False))


def test_device_can_be_picked_by_index_and_substring(va):
    va.load_mic(np.zeros(1600, np.float32))
    pa = open_pyaudio()
    try:
        idx = next(d["index"] for d in list_devices(pa) if d["name"] == MIC)
        with PyAudioSource(CaptureOptions(device=idx, max_duration_s=0.1), pa=pa) as src:
            assert src.device_name == MIC
        with PyAudioSource(CaptureOptions(device="virtual_mic", max_duration_s=0.1), pa=pa) as s2:
            pytest.fail(f"matched {s2.device_name}")  # no device has that substring
    except AudioDeviceError as exc:
        assert "rtagent_mic" in str(exc)  # the message lists what exists
    finally:
        pa.terminate()
    with PyAudioSource(CaptureOptions(device="agent_mi", max_duration_s=0.1)) as src:
        assert src.device_name == MIC


def test_missing_devices_say_what_exists(va):
    with pytest.raises(AudioDeviceError, match=r"no input audio device named 'usb mic'.*rtagent_mic"):
        PyAudioSource(CaptureOptions(device="usb mic"))
    with pytest.raises(AudioDeviceError, match="no input audio device with index 99"):
        PyAudioSource(CaptureOptions(device=99))
    with pytest.raises(AudioDeviceError, match="no output audio device named 'hdmi'"):
        PyAudioSink("hdmi")


def test_tts_plays_to_the_virtual_speaker(va):
    tts = EspeakTts()
    player = SpeechPlayer(tts, PyAudioSink(SPEAKER, tts.rate_hz), sleep_s=lambda s: None)
    try:
        result = player.play("The kitchen lights are off.")
    finally:
        player.close()
    played = va.read_speaker()
    assert not result.stopped
    assert result.samples_played > 0.5 * tts.rate_hz
    assert len(played) == result.samples_played
    assert np.sqrt(np.mean(played ** 2)) > 0.01  # real speech, not silence


class _CountingSink:
    """Wraps a real sink; records how much was written when stop() was called."""

    def __init__(self, inner, player_ref):
        self.inner, self.player_ref = inner, player_ref
        self.samples = 0
        self.at_stop = -1
        self.first = threading.Event()

    def write(self, pcm: bytes) -> None:
        self.inner.write(pcm)
        self.samples += len(pcm) // 2
        self.first.set()

    def stop(self) -> None:
        self.at_stop = self.samples
        self.player_ref[0].stop()

    def close(self) -> None:
        self.inner.close()


def test_barge_in_stops_playback_within_one_chunk(va, tmp_path):
    tts = EspeakTts(TtsOptions(chunk_ms=20))
    text = "In Paris it is twelve degrees and sunny, with a high of fifteen and a low of seven."
    full = len(tts.synthesize(text))
    chunk = int(tts.rate_hz * 0.020)
    for inner in (PyAudioSink(SPEAKER, tts.rate_hz), WavSink(tmp_path / "reply.wav")):
        ref: list[SpeechPlayer] = []
        sink = _CountingSink(inner, ref)
        player = SpeechPlayer(tts, sink)  # paced: plays in real time
        ref.append(player)
        player.start(text)
        assert sink.first.wait(10.0)
        sink.stop()  # barge-in while it is speaking
        result = player.wait(10.0)
        player.close()
        assert result is not None and result.stopped
        assert result.samples_played == sink.samples
        assert sink.samples - sink.at_stop <= chunk  # at most the chunk in hand
        assert sink.samples < full // 2
    assert 0 < len(va.read_speaker()) < full // 2
