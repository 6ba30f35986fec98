"""The voice demo's parts without processes or models: spoken replies, input checks and
layout, preflight decoding (a scripted decoder; the real one runs in test_voice_demo.py),
the latency breakdown and the benchmark's scoring."""

from __future__ import annotations

import dataclasses
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from audio.checks import check_samples, check_wav, layout
from audio.errors import AudioError, AudioFormatError
from audio.sources import SAMPLE_RATE_HZ, write_wav
from control.tools import ToolCall
from control.voice_latency import breakdown
from control.voice_preflight import PreflightDecoder
from demos.voice_session import VoiceDemoConfig, VoiceResult
from models.decoder import DecodeContext
from realtime.errors import RtAgentError
from sim_envs.home.replies import NO_TOOL, reply_text

SR = SAMPLE_RATE_HZ


def _ok(name: str, value: dict) -> dict:
    return {"name": name, "ok": True, "value": value}


def test_replies_say_what_was_done_and_what_was_found():
    turn = {"results": [
        _ok("set_light", {"room": "living_room", "on": False, "brightness": 80, "changed": True}),
        _ok("get_weather", {"city": "Paris", "celsius": 12, "condition": "sunny",
                            "high_celsius": 15, "low_celsius": 7})]}
    assert reply_text(turn) == ("Okay, the living room lights are off. In Paris it is 12 degrees "
                                "and sunny, with a high of 15.")
    assert reply_text({"results": [_ok("set_timer", {"minutes": 5.0, "label": "pasta"})]}) == \
        "Timer set for 5 minutes for the pasta."
    assert reply_text({"results": [_ok("get_shopping_list", {"items": ["milk", "eggs", "bread"]})]}) \
        == "Your shopping list has milk, eggs and bread."
    failed = {"results": [{"name": "send_message", "ok": False,
                           "error": "HomeError: unknown contact 'Zed'; contacts: Anna, Ben"}]}
    assert reply_text(failed) == "Sorry, send message did not work: unknown contact 'Zed'."
    assert reply_text({"results": []}) == NO_TOOL
    assert reply_text({"results": [_ok("get_time", {"oops": 1})]}) == "Done."  # odd result


def _tone(seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_bad_request_audio_is_refused_with_the_reason(tmp_path: Path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioFormatError, match="is empty"):
        check_wav(empty)
    full = write_wav(tmp_path / "ok.wav", _tone(1.0))
    cut = tmp_path / "truncated.wav"
    cut.write_bytes(full.read_bytes()[:3000])
    with pytest.raises(AudioFormatError, match="truncated"):
        check_wav(cut)
    text = tmp_path / "notes.wav"
    text.write_text("turn off the lights")
    with pytest.raises(AudioFormatError, match="not a WAV file"):
        check_wav(text)
    alaw = bytearray(full.read_bytes())
    alaw[20:22] = (6).to_bytes(2, "little")  # A-law: a WAV, but not PCM or float
    (tmp_path / "alaw.wav").write_bytes(bytes(alaw))
    with pytest.raises(AudioFormatError, match="encoding 0x6"):
        check_wav(tmp_path / "alaw.wav")
    with pytest.raises(AudioFormatError, match="is silent"):
        check_wav(write_wav(tmp_path / "silent.wav", np.zeros(SR, np.float32)))
    with pytest.raises(AudioFormatError, match="at least 150 ms"):
        check_samples("blip", _tone(0.05))
    with pytest.raises(AudioError, match="not found"):
        check_wav(tmp_path / "missing.wav")
    clipped = check_samples("loud", np.clip(_tone(1.0, amp=4.0), -1, 1))
    assert clipped.warnings and "clipped" in clipped.warnings[0]
    assert check_wav(full).warnings == ()


def test_any_wav_format_is_converted(tmp_path: Path):
    path = tmp_path / "stereo44k.wav"
    x = _tone(0.5)
    stereo = np.repeat(np.interp(np.arange(int(0.5 * 44100)) / 44100, np.arange(len(x)) / SR, x),
                       2)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes((stereo * 32767).astype("<i2").tobytes())
    got = check_wav(path)
    assert abs(len(got.samples) - len(x)) <= 2


def test_layout_places_requests_with_gaps():
    a, b = check_samples("a", _tone(1.0)), check_samples("b", _tone(0.5))
    stream, segments = layout([a, b], lead_s=0.5, gap_s=2.0)
    assert [(s.label, s.start_s, s.end_s) for s in segments] == [("a", 0.5, 1.5), ("b", 3.5, 4.0)]
    assert len(stream) == int(6.0 * SR)
    assert not stream[:int(0.5 * SR)].any() and stream[int(0.6 * SR)] != 0


class ScriptedDecoder:
    """Decodes ``text -> calls`` from a table; counts decodes. With a ``gate``, each decode
    signals ``entered`` and holds its first call until the gate opens."""

    name = "scripted"

    def __init__(self, table: dict[str, list[ToolCall]], gate: threading.Event | None = None):
        self.table, self.gate = table, gate
        self.entered = threading.Event()
        self.decodes: list[str] = []
        self.drafts: list[object] = []
        self.closed = False

    def decode_stream(self, context, tools):
        text = context.messages[-1]["content"]
        self.decodes.append(text)
        self.drafts.append(getattr(context, "draft", None))
        if text == "garbled":
            raise ValueError("no valid continuation")
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        yield from self.table.get(text, [])

    def close(self) -> None:
        self.closed = True


class _Ctx:
    def __init__(self, text: str) -> None:
        self.messages = ({"role": "user", "content": text},)


WEATHER = ToolCall("get_weather", {"city": "Paris"}, "1")
LIGHT = ToolCall("set_light", {"room": "kitchen", "on": False}, "2")


def _until(cond, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_preflight_serves_the_final_decode_when_the_text_did_not_change():
    inner = ScriptedDecoder({"weather in paris": [WEATHER], "weather in paris and lights": [
        WEATHER, LIGHT]})
    dec = PreflightDecoder(inner)
    got: list[tuple[list[ToolCall], bool]] = []
    done = threading.Event()
    dec.preflight(_Ctx("weather in paris"), [], lambda c, ok: (got.append((c, ok)),
                                                               ok and done.set()))
    assert done.wait(5)
    assert got == [([WEATHER], False), ([], True)]  # each call as decoded, then "complete"
    assert list(dec.decode_stream(_Ctx("weather in paris"), [])) == [WEATHER]
    assert inner.decodes == ["weather in paris"] and dec.stats.hits == 1
    # a different final text is decoded for real
    assert list(dec.decode_stream(_Ctx("weather in paris and lights"), [])) == [WEATHER, LIGHT]
    assert dec.stats.misses == 1 and len(inner.decodes) == 2
    # already decoded: reported at once, not decoded again
    assert dec.preflight(_Ctx("weather in paris"), [], lambda c, ok: got.append((c, ok))) is False
    assert len(inner.decodes) == 2 and got[-1] == ([WEATHER], True)
    dec.close()
    assert inner.closed


def test_a_new_text_is_decoded_with_the_latest_calls_of_its_turn_as_draft():
    inner = ScriptedDecoder({"turn off the kitchen": [LIGHT], "turn off the kitchen lights": [LIGHT]})
    dec = PreflightDecoder(inner)
    done = threading.Event()
    dec.preflight(DecodeContext.from_request("turn off the kitchen"), [],
                  lambda c, ok: ok and done.set())
    assert done.wait(5)
    list(dec.decode_stream(DecodeContext.from_request("turn off the kitchen lights"), []))
    later_turn = DecodeContext(({"role": "user", "content": "turn off the kitchen lights"},
                                {"role": "assistant", "content": "done"},
                                {"role": "user", "content": "thanks"}))
    # the final's decode ended the utterance: the next request (no history either, so
    # the same turn key) starts without the previous one's calls
    list(dec.decode_stream(DecodeContext.from_request("what's the weather in Oslo"), []))
    list(dec.decode_stream(later_turn, []))
    assert inner.drafts == [None, (LIGHT,), None, None]  # none before; another turn: none
    dec.close()


def test_a_garbled_partial_is_dropped_quietly():
    dec = PreflightDecoder(ScriptedDecoder({}))
    got: list[object] = []
    dec.preflight(_Ctx("garbled"), [], lambda c, ok: got.append(c))
    _until(lambda: dec.stats.errors == 1)
    assert got == []
    dec.close()


def test_preflight_yields_to_a_real_decode():
    gate = threading.Event()
    inner = ScriptedDecoder({"two calls": [WEATHER, LIGHT], "now": [LIGHT]}, gate)
    dec = PreflightDecoder(inner)
    got: list[tuple[list[ToolCall], bool]] = []
    dec.preflight(_Ctx("two calls"), [], lambda c, ok: got.append((c, ok)))
    assert inner.entered.wait(5)  # the preflight is decoding its first call
    real: list[ToolCall] = []
    t = threading.Thread(target=lambda: real.extend(dec.decode_stream(_Ctx("now"), [])))
    t.start()
    _until(dec._urgent.is_set)  # the real decode waits for the decoder
    gate.set()
    t.join(10)
    assert real == [LIGHT]
    _until(lambda: bool(got))
    assert dec.stats.aborted == 1 and got == [([WEATHER], False)]  # what it had; not cached
    assert list(dec.decode_stream(_Ctx("two calls"), [])) == [WEATHER, LIGHT]
    assert dec.stats.hits == 0
    dec.close()


def test_a_final_joins_the_preflight_of_the_same_text():
    gate = threading.Event()
    inner = ScriptedDecoder({"weather": [WEATHER]}, gate)
    dec = PreflightDecoder(inner)
    dec.preflight(_Ctx("weather"), [], lambda c, ok: None)
    assert inner.entered.wait(5)
    real: list[ToolCall] = []
    t = threading.Thread(target=lambda: real.extend(dec.decode_stream(_Ctx("weather"), [])))
    t.start()
    _until(lambda: dec.stats.joined == 1)  # waiting for the preflight, not decoding again
    gate.set()
    t.join(10)
    assert real == [WEATHER] and inner.decodes == ["weather"] and dec.stats.hits == 1
    dec.close()


def test_a_newer_partial_takes_the_decoder_over_from_an_older_one():
    gate = threading.Event()
    inner = ScriptedDecoder({"turn off the": [LIGHT], "weather in paris": [WEATHER]}, gate)
    dec = PreflightDecoder(inner)
    old: list[tuple[list[ToolCall], bool]] = []
    new: list[tuple[list[ToolCall], bool]] = []
    dec.preflight(_Ctx("turn off the"), [], lambda c, ok: old.append((c, ok)))
    assert inner.entered.wait(5)  # an older partial is decoding
    dec.preflight(_Ctx("weather in paris"), [], lambda c, ok: new.append((c, ok)))
    _until(dec._superseded.is_set)
    gate.set()
    _until(lambda: ([], True) in new)
    assert new == [([WEATHER], False), ([], True)]
    assert old == [([LIGHT], False)]  # the call it had, reported; the rest given up
    assert dec.stats.superseded == 1 and dec.stats.aborted == 1
    assert list(dec.decode_stream(_Ctx("weather in paris"), [])) == [WEATHER]  # cached
    assert dec.stats.hits == 1
    # The same text again while it decodes: it goes on (and the repeat is served after).
    gate.clear()
    inner.entered.clear()
    dec.preflight(_Ctx("turn off the"), [], lambda c, ok: old.append((c, ok)))
    assert inner.entered.wait(5)
    dec.preflight(_Ctx("turn off the"), [], lambda c, ok: old.append((c, ok)))
    gate.set()
    _until(lambda: old[-1] == ([LIGHT], True))
    assert old[-3:] == [([LIGHT], False), ([], True), ([LIGHT], True)]  # decoded, then cached
    assert dec.stats.superseded == 1 and inner.decodes.count("turn off the") == 2
    dec.close()


def test_latency_breakdown_and_lookups_done_at_end_of_speech():
    ms = 1_000_000
    turn = {"end_of_speech_ns": 1000 * ms, "endpoint_ns": 1420 * ms, "final_ns": 1450 * ms,
            "first_call_ns": 1460 * ms, "first_result_ns": 1462 * ms, "done_ns": 1700 * ms,
            "first_audio_ns": 1780 * ms,
            "turn": {"results": [
                {"name": "get_weather", "ok": True, "speculative": True, "ended_ns": 990 * ms},
                {"name": "get_time", "ok": True, "speculative": True, "ended_ns": 1300 * ms},
                {"name": "web_search", "ok": True, "speculative": False, "ended_ns": 1690 * ms},
                {"name": "set_light", "ok": True, "speculative": False, "ended_ns": 1462 * ms}]}}
    b = breakdown(turn)
    assert (b["endpoint_ms"], b["final_ms"], b["first_call_ms"], b["first_action_ms"],
            b["results_ms"], b["first_audio_ms"]) == (420, 450, 460, 462, 700, 780)
    assert (b["lookups"], b["lookups_done_at_eos"], b["lookups_done_at_endpoint"]) == (3, 1, 2)


def test_the_demo_config_gives_each_process_its_part_and_refuses_bad_values():
    cfg = VoiceDemoConfig(silence_ms=300.0, out_wav="replies.wav", hz=20.0, trace_label="x")
    parts = cfg.parts()
    assert sorted(parts) == ["actuation", "decision", "perception"]
    assert parts["perception"].silence_ms == 300.0 and parts["actuation"].out_wav == "replies.wav"
    assert parts["decision"].hz == 20.0 and {p.trace_label for p in parts.values()} == {"x"}
    assert parts["perception"].stt_prompt == VoiceDemoConfig().stt_prompt  # the home's words
    shipped = {f.name for p in parts.values() for f in dataclasses.fields(p)}
    assert shipped == {f.name for f in dataclasses.fields(VoiceDemoConfig)}  # nothing left behind
    for part in parts.values():  # what each process is sent, and reads back
        assert type(part).from_json(part.to_json()) == part
    assert VoiceDemoConfig.from_json(cfg.to_json()) == cfg
    for bad, says in (({"silence_ms": -1.0}, "expected silence_ms in 0..10000"),
                      ({"words_per_min": 20}, "expected words_per_min in 80..450"),
                      ({"hz": 0.0}, "hz: expected 1..1000"),
                      ({"max_duration_s": 0.0}, "max_duration_s: expected > 0 s")):
        with pytest.raises(RtAgentError, match=says):
            VoiceDemoConfig(**bad)


def test_bench_scores_exact_calls_wer_and_split_utterances():
    from audio.utterances import VoiceRequest
    from demos.bench.voice import score, table

    reqs = [VoiceRequest("r1", "turn off the kitchen lights", expected=(
                {"name": "set_light", "arguments": {"room": "kitchen", "on": False}},)),
            VoiceRequest("r2", "what's the weather in Paris", expected=(
                {"name": "get_weather", "arguments": {"city": "Paris"}},)),
            VoiceRequest("r3", "what time is it in Tokyo", expected=(
                {"name": "get_time", "arguments": {"city": "Tokyo"}},))]

    def turn(seg: str, text: str, calls: list[dict], first_action_ms: float) -> dict:
        return {"segment": seg, "text": text, "turn": {"calls": calls},
                "latency": {"first_action_ms": first_action_ms, "lookups": 0}}

    result = VoiceResult(turns=[
        turn("r1", "Turn off the kitchen lights.", [{"name": "set_light", "arguments": {
            "room": "kitchen", "on": False}}], 300.0),
        turn("r2", "What's the weather", [], 500.0),
        turn("r2", "in Paris?", [{"name": "get_weather", "arguments": {"city": "Paris"}}], 200.0)])
    s = score(reqs, result)
    assert s["call_accuracy"] == pytest.approx(2 / 3) and s["split"] == 1
    assert s["answered"] == 2 and s["rows"][2]["wer"] == 1.0
    assert s["wer"] == pytest.approx(6 / 16)
    assert s["first_action_ms_p50"] == pytest.approx(400.0)
    printed = table({"speculation": s, "no speculation": s})
    assert "call accuracy (exact)" in printed and "1.00x" in printed
    # Paris and Tokyo are the requests' last words: no lookup of them can beat the speech
    assert (s["expected_lookups"], s["lookups_said_last"]) == (2, 2)
    assert "at most 0% can" in printed


def test_said_last_reads_the_requests_last_two_words():
    from demos.bench.voice import said_last

    weather = {"name": "get_weather", "arguments": {"city": "Berlin"}}
    assert said_last("will it rain in Berlin today", weather)
    assert not said_last("what's the weather in Berlin and what's on my calendar", weather)
    assert not said_last("what's on my shopping list", {"name": "get_shopping_list",
                                                        "arguments": {}})
    assert said_last("what's the weather in New York", {"name": "get_weather",
                                                         "arguments": {"city": "New York"}})


class _Ctx2:
    """Stands in for a llama context: counts forward passes and their thread counts."""

    def __init__(self) -> None:
        self.passes = 0
        self.threads = 1
        self.pass_threads: list[int] = []

    def decode(self, items):
        self.passes += 1
        self.pass_threads.append(self.threads)
        return [0]

    def set_threads(self, n: int) -> None:
        self.threads = n


class TokenDecoder(ScriptedDecoder):
    """Like ScriptedDecoder, but spends ``passes`` forward passes of ``ctx`` per call."""

    def __init__(self, table, gate, passes: int = 50) -> None:
        super().__init__(table, gate)
        self.ctx = _Ctx2()
        self.passes = passes

    def decode_stream(self, context, tools):
        text = context.messages[-1]["content"]
        self.decodes.append(text)
        for call in self.table.get(text, []):
            for i in range(self.passes):
                self.ctx.decode([i])
                if i == 0:
                    self.entered.set()
                    assert self.gate.wait(10)
            yield call


def test_preflight_gives_way_before_its_next_forward_pass():
    gate = threading.Event()
    inner = TokenDecoder({"long text": [WEATHER], "now": [LIGHT]}, gate)
    dec = PreflightDecoder(inner)
    dec.preflight(_Ctx("long text"), [], lambda c, ok: None)
    assert inner.entered.wait(5)  # one forward pass into a 50-pass call
    real: list[ToolCall] = []
    t = threading.Thread(target=lambda: real.extend(dec.decode_stream(_Ctx("now"), [])))
    t.start()
    _until(dec._urgent.is_set)
    gate.set()
    t.join(10)
    assert real == [LIGHT] and dec.stats.aborted == 1
    assert inner.ctx.passes == 1 + 50  # the preflight stopped after its first pass
    dec.close()


def test_a_preflight_decodes_on_one_thread_and_a_final_it_serves_on_two():
    gate = threading.Event()
    inner = TokenDecoder({"weather": [WEATHER], "lights": [LIGHT]}, gate, passes=3)
    dec = PreflightDecoder(inner, threads=(1, 2))
    dec.preflight(_Ctx("weather"), [], lambda c, ok: None)
    assert inner.entered.wait(5)  # first pass done, on one thread (speech goes on)
    real: list[ToolCall] = []
    t = threading.Thread(target=lambda: real.extend(dec.decode_stream(_Ctx("weather"), [])))
    t.start()
    _until(lambda: dec.stats.joined == 1)  # the final waits for this very preflight ...
    gate.set()
    t.join(10)
    assert real == [WEATHER] and inner.ctx.pass_threads == [1, 2, 2]  # ... whose rest gets 2
    assert list(dec.decode_stream(_Ctx("lights"), [])) == [LIGHT]  # a fresh final: 2 threads
    assert inner.ctx.pass_threads[3:] == [2, 2, 2]
    dec.close()
