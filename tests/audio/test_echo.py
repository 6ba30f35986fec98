"""Echo-safe barge-in: the assistant's own reply, heard back by the microphone, is taken
out before the VAD, so it does not barge in on itself, while the user's voice over it
still does. Synthetic echoes, and a looped-back run: the reply played through the
virtual ALSA speaker (PyAudio), what it played fed back into the virtual microphone."""

from __future__ import annotations

import numpy as np
import pytest

from audio.alsa_virtual import MIC, SPEAKER, virtual_audio
from audio.chunks import AudioChunk
from audio.echo import EchoCanceller, EchoOptions
from audio.errors import AudioError
from audio.nodes import PlaybackEcho
from audio.resample import resample
from audio.sources import SAMPLE_RATE_HZ, ArraySource, open_source
from audio.tts import EspeakTts, PyAudioSink, SpeechPlayer
from audio.utterances import speak
from audio.vad import SpeechStart, StreamingVad
from realtime import messages as m
from realtime.bus import Latest
from sim_envs.home.nodes import ReferenceTap

R = SAMPLE_RATE_HZ
T0 = 1_000_000_000
REPLY = "In Montevideo it is twenty one degrees and partly cloudy, with a high of twenty five."


@pytest.fixture(scope="module")
def reply() -> np.ndarray:
    return speak(REPLY, voice="en-us")


@pytest.fixture(scope="module")
def user() -> np.ndarray:
    return speak("stop, what time is it in Tokyo", voice="en-gb+f3")


def _starts(chunks: list[AudioChunk]) -> list[float]:
    """Where the VAD hears speech start (s after T0)."""
    vad = StreamingVad()
    return [round((ev.t_ns - T0) / 1e9, 2) for c in chunks for ev in vad.feed(c)
            if isinstance(ev, SpeechStart)]


def _through(mic: np.ndarray, reference: np.ndarray, played_at_s: float,
             ec: EchoCanceller | None) -> list[AudioChunk]:
    """``mic`` chunk by chunk, the reference arriving as it is played (as over the bus)."""
    out, pos = [], 0
    start = T0 + int(played_at_s * 1e9)
    for ch in ArraySource(mic, start_ns=T0):
        if ec is None:
            out.append(ch)
            continue
        while pos < len(reference) and start + pos * 10**9 // R <= ch.t_ns + 32_000_000:
            ec.add_reference(reference[pos:pos + 320], start + pos * 10**9 // R)
            pos += 320
        out.append(AudioChunk(ec.process(ch.samples, ch.t_ns), ch.t_ns, ch.seq))
    return out


def _echo(reply: np.ndarray, played_at_s: float, delay_ms: float, gain: float,
          extra_s: float = 2.0) -> np.ndarray:
    mic = np.zeros(int((played_at_s + extra_s) * R) + len(reply), np.float32)
    at = int(played_at_s * R) + int(delay_ms * R / 1000)
    mic[at:at + len(reply)] += gain * reply
    return mic + np.random.default_rng(0).normal(0, 0.002, len(mic)).astype(np.float32)


@pytest.mark.parametrize(("delay_ms", "gain"), [(40, 0.9), (150, 0.5), (300, 0.2)])
def test_the_reply_heard_back_does_not_start_speech(reply, user, delay_ms, gain):
    mic = _echo(reply, 0.5, delay_ms, gain)
    assert _starts(_through(mic, reply, 0.5, None))  # as it was: the echo is "speech"
    ec = EchoCanceller()
    assert _starts(_through(mic, reply, 0.5, ec)) == []
    assert ec.lag == int(delay_ms * R / 1000)  # the echo path's delay, found
    over = mic.copy()
    at = 2 * R
    over[at:at + len(user)] += 0.6 * user[:len(over) - at]
    heard = _starts(_through(over, reply, 0.5, EchoCanceller()))
    assert len(heard) == 1 and 2.0 <= heard[0] <= 2.3  # the user still barges in


def test_another_voice_passes_through(reply, user):
    mic = np.concatenate([np.zeros(R // 4, np.float32), user, np.zeros(R, np.float32)])
    ec = EchoCanceller()
    out = _through(mic, reply, 0.0, ec)  # a reply plays, but the mic hears only the user
    changed = sum(float(np.sum((o.samples - c.samples) ** 2))
                  for o, c in zip(out, ArraySource(mic, start_ns=T0), strict=True))
    assert changed < 0.05 * float(np.sum(mic ** 2))
    assert _starts(out) == _starts(list(ArraySource(mic, start_ns=T0)))


def test_echo_options_are_checked():
    with pytest.raises(AudioError, match="max_delay_ms < history_ms"):
        EchoOptions(max_delay_ms=3000)
    with pytest.raises(AudioError, match="min_correlation <= lock_correlation"):
        EchoOptions(min_correlation=0.9)


class _Pub:
    def __init__(self) -> None:
        self.sent: list[m.AudioChunk] = []

    def publish(self, msg: m.Message, topic: str | None = None) -> None:
        assert topic == "playback_audio"
        self.sent.append(msg)  # type: ignore[arg-type]


class _Played:
    """Actuation's playback_audio as perception's subscriber sees it, up to ``now_ns``."""

    def __init__(self, msgs: list[m.AudioChunk]) -> None:
        self.msgs, self.now_ns = list(msgs), 0

    def recv(self, timeout_ms: float = 0.0) -> Latest[m.Message] | None:
        if self.msgs and self.msgs[0].t_ns <= self.now_ns + 32_000_000:
            return Latest(self.msgs.pop(0), 0.0, "playback_audio", 0, True)
        return None


def _on_media_time(chunks: list[AudioChunk]) -> list[AudioChunk]:
    """Chunks stamped as a paced source stamps them (``PacedSource``), from T0."""
    out, n = [], 0
    for c in chunks:
        out.append(AudioChunk(c.samples, T0 + n * 10**9 // R, c.seq))
        n += len(c.samples)
    return out


def test_looped_back_through_the_virtual_speaker_and_microphone(tmp_path, user):
    lead_s, delay_s = 0.4, 0.12
    with virtual_audio(tmp_path / "alsa") as va:
        tts = EspeakTts()
        tap = ReferenceTap(PyAudioSink(SPEAKER, tts.rate_hz), tts.rate_hz)
        player = SpeechPlayer(tts, tap)  # paced: plays in real time, as a speaker does
        try:
            player.play(REPLY)
        finally:
            player.close()
        pub = _Pub()
        tap.publish(pub)
        played = resample(va.read_speaker(), tts.rate_hz, R)  # what the speaker played...
        starts = [c.start_sample for c in pub.sent]
        assert len(played) > R and starts[1] == starts[0] + len(pub.sent[0].pcm)  # one stream
        runs = {}
        for name, talk in (("echo", False), ("user over it", True)):
            mic = np.zeros(int((lead_s + delay_s) * R) + len(played) + R, np.float32)
            at = int((lead_s + delay_s) * R)
            mic[at:at + len(played)] += 0.5 * played  # ... comes back into the microphone
            if talk:
                u = int((lead_s + 1.5) * R)
                mic[u:u + len(user)] += 0.6 * user[:len(mic) - u]
            seconds = va.load_mic(mic, tail_silence_s=0.0)
            with open_source("pyaudio", device=MIC, max_duration_s=seconds) as src:
                captured = _on_media_time(list(src))  # (the null device has no clock)
            # On one clock: the reply's first block played when the echo's lead began.
            shift = T0 + int(lead_s * 1e9) - pub.sent[0].t_ns
            reference = _Played([m.AudioChunk(stream="playback", pcm=c.pcm,
                                              sample_rate_hz=c.sample_rate_hz,
                                              start_sample=c.start_sample, t_ns=c.t_ns + shift)
                                 for c in pub.sent])
            echo = PlaybackEcho(reference)
            out = []
            for c in captured:
                reference.now_ns = c.t_ns
                out.append(echo.process(c))
            runs[name] = (_starts(captured), _starts(out), echo.canceller)
    raw, cleaned, canceller = runs["echo"]
    assert raw and cleaned == []  # the reply no longer barges in on itself
    assert canceller.lag is not None and abs(canceller.lag - delay_s * R) <= 0.03 * R
    raw, cleaned, _ = runs["user over it"]
    assert len(cleaned) == 1 and lead_s + 1.4 <= cleaned[0] <= lead_s + 1.9  # the user does
