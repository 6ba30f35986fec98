"""Early endpointing: real Silero VAD on espeak-ng speech, a stand-in STT that says what
Whisper would (instantly, so the run is the same on any machine; times are media time)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from audio.errors import AudioError
from audio.sources import SAMPLE_RATE_HZ, ArraySource
from audio.streaming import StreamingOptions, StreamingTranscriber, sounds_finished
from audio.stt import Transcript
from audio.utterances import speak
from audio.vad import SpeechEnd, StreamingVad, VadOptions

SR = SAMPLE_RATE_HZ


class SaysTheSame:
    """Transcribes any audio as ``text``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    def transcribe(self, audio: np.ndarray) -> Transcript:
        self.calls += 1
        return Transcript(self.text, audio_ms=1000 * len(audio) / SR)


@pytest.fixture(scope="module")
def request_audio() -> np.ndarray:
    clip = speak("turn the living room lights off", voice="en-gb-x-rp", words_per_min=140)
    silence = np.zeros(SR, np.float32)
    return np.concatenate([silence[: SR // 2], clip, silence])


def _run(stt: SaysTheSame, audio: np.ndarray, early_ms: float) -> tuple[list, StreamingTranscriber]:
    st = StreamingTranscriber(stt, StreamingVad(VadOptions(silence_ms=400)),
                              StreamingOptions(partial_interval_ms=250, early_silence_ms=early_ms))
    events = []
    for chunk in ArraySource(audio):
        events.extend(st.feed(chunk))
        while st.in_flight:  # each transcription done before the next chunk (media time only)
            time.sleep(0.001)
    events.extend(st.finish())
    st.close()
    return events, st


def _end(events: list) -> SpeechEnd:
    (end,) = [e for e in events if isinstance(e, SpeechEnd)]
    return end


def _silence_ms(end: SpeechEnd) -> float:
    return (end.detected_t_ns - end.end_t_ns) / 1e6


def test_a_finished_sentence_ends_the_utterance_in_a_short_pause(request_audio) -> None:
    events, st = _run(SaysTheSame("Turn the living room lights off."), request_audio, 200)
    end = _end(events)
    assert end.early and not end.forced
    assert 200 <= _silence_ms(end) < 400  # before the VAD's 400 ms of silence
    finals = [e for e in events if isinstance(e, Transcript) and e.final]
    assert [f.text for f in finals] == ["Turn the living room lights off."]
    assert st.early_ends == 1 and st.reused_partials == 1 and st.fresh_finals == 0
    # The final is the partial started in the pause, so it heard all the speech; it came
    # out as a partial first, marked so (the trace shows it).
    assert events.index(end) < events.index(finals[0])
    partials = [e for e in events if isinstance(e, Transcript) and not e.final]
    assert partials[-1].heard_all and not any(p.heard_all for p in partials[:-1])


def test_an_unfinished_sentence_waits_for_the_full_silence(request_audio) -> None:
    events, st = _run(SaysTheSame("Turn the living room"), request_audio, 200)
    end = _end(events)
    assert not end.early and _silence_ms(end) >= 400 and st.early_ends == 0


def test_off_by_default_and_then_unchanged(request_audio) -> None:
    early_off, _ = _run(SaysTheSame("Turn the living room lights off."), request_audio, 0)
    assert not _end(early_off).early and _silence_ms(_end(early_off)) >= 400


def test_what_sounds_finished() -> None:
    assert sounds_finished("What is the weather in Paris?")
    assert sounds_finished(" Turn off the lights. ")
    assert not sounds_finished("Turn off the")
    assert not sounds_finished("Okay.")  # one word: a filler, not a request
    assert not sounds_finished("Turn off the kitchen...")
    with pytest.raises(AudioError, match="early_silence_ms"):
        StreamingOptions(early_silence_ms=-1)
    with pytest.raises(AudioError, match="reuse_partial"):
        StreamingOptions(early_silence_ms=200, reuse_partial=False)


def test_the_pause_partial_starts_as_soon_as_the_tail_is_heard(request_audio) -> None:
    events, _ = _run(SaysTheSame("Turn the living room lights off."), request_audio, 200)
    end = _end(events)
    (final,) = [e for e in events if isinstance(e, Transcript) and e.final]
    pre = int(VadOptions().pre_roll_ms * SR / 1000)
    heard_to = end.start_sample - pre + round(final.audio_ms * SR / 1000)
    past_speech_ms = 1000 * (heard_to - end.end_sample) / SR
    # The final (that pause partial) heard the 64 ms tail after the last speech window and
    # at most a VAD window and an audio chunk more, not the VAD's 150 ms post-roll.
    assert 64 <= past_speech_ms < 64 + 32 + 32, past_speech_ms
