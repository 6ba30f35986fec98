"""Silero VAD, streaming: same probabilities as faster-whisper's batch call,
endpointing on espeak-ng speech, silence and clicks ignored, option checks."""

from __future__ import annotations

import numpy as np
import pytest

from audio.errors import AudioError
from audio.sources import SAMPLE_RATE_HZ, ArraySource
from audio.utterances import speak
from audio.vad import WINDOW, SpeechEnd, SpeechStart, StreamingVad, VadOptions, segment

SR = SAMPLE_RATE_HZ


@pytest.fixture(scope="module")
def utterance() -> np.ndarray:
    return speak("turn off the kitchen lights", voice="en-gb", words_per_min=160)


def _pad(x: np.ndarray, lead_s: float, tail_s: float) -> np.ndarray:
    return np.concatenate([np.zeros(int(lead_s * SR), np.float32), x,
                           np.zeros(int(tail_s * SR), np.float32)])


def test_streaming_probabilities_equal_the_batch_model(utterance):
    from faster_whisper.vad import get_vad_model

    x = _pad(utterance, 0.3, 0.3)
    x = x[:len(x) // WINDOW * WINDOW]
    batch = get_vad_model()(x.copy()).reshape(-1)
    vad = StreamingVad()
    streamed = np.concatenate([vad.probabilities(x[i:i + 4 * WINDOW])
                               for i in range(0, len(x), 4 * WINDOW)])
    np.testing.assert_allclose(streamed, batch, atol=1e-5)


def test_one_utterance_gives_one_start_and_one_end(utterance):
    x = _pad(utterance, 0.5, 1.0)
    events = list(segment(ArraySource(x, chunk_ms=20)))
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    start, end = events
    loud = np.nonzero(np.abs(x) > 0.01)[0]
    assert abs(start.start_sample - loud[0]) < 0.15 * SR
    assert abs(end.end_sample - loud[-1]) < 0.15 * SR
    assert not end.forced
    # the endpoint is declared silence_ms after the last speech (+ one window)
    delay_ms = 1000 * (end.detected_t_ns - end.end_t_ns) / 1e9
    assert 400 <= delay_ms <= 400 + 1000 * 2 * WINDOW / SR
    # the utterance audio holds the speech with its pre/post roll
    assert len(end.audio) >= len(utterance) * 0.9
    assert start.t_ns < start.detected_t_ns <= end.end_t_ns < end.detected_t_ns


def test_two_utterances_and_configurable_silence(utterance):
    gap = _pad(utterance, 0.3, 0.0)
    x = np.concatenate([gap, np.zeros(int(0.6 * SR), np.float32), utterance,
                        np.zeros(SR, np.float32)])
    ends = [e for e in segment(ArraySource(x)) if isinstance(e, SpeechEnd)]
    assert len(ends) == 2
    # a silence setting longer than the gap (0.6 s + espeak-ng's own pauses) merges them
    ends = [e for e in segment(ArraySource(x), VadOptions(silence_ms=1500))
            if isinstance(e, SpeechEnd)]
    assert len(ends) == 1


def test_silence_noise_and_clicks_are_not_speech():
    rng = np.random.default_rng(0)
    silence = np.zeros(2 * SR, np.float32)
    noise = (0.01 * rng.standard_normal(2 * SR)).astype(np.float32)
    clicks = np.zeros(2 * SR, np.float32)
    clicks[::SR // 2] = 0.9
    for x in (silence, noise, clicks):
        assert list(segment(ArraySource(x))) == []


def test_short_burst_is_below_min_speech(utterance):
    burst = _pad(utterance[:int(0.12 * SR)], 0.3, 1.0)
    assert list(segment(ArraySource(burst), VadOptions(min_speech_ms=400))) == []


def test_stream_ending_mid_speech_is_flushed(utterance):
    events = list(segment(ArraySource(_pad(utterance, 0.3, 0.0))))
    assert isinstance(events[-1], SpeechEnd) and events[-1].forced


def test_options_are_validated():
    with pytest.raises(AudioError, match="expected threshold"):
        VadOptions(threshold=1.5)
    with pytest.raises(AudioError, match="expected silence_ms"):
        VadOptions(silence_ms=-1)
    with pytest.raises(AudioError, match="neg_threshold"):
        VadOptions(threshold=0.5, neg_threshold=0.7)
    with pytest.raises(AudioError, match="mono"):
        from audio.sources import AudioChunk

        StreamingVad().feed(AudioChunk(np.zeros((2, 512), np.float32), 0, 0))
