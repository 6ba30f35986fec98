"""The voice demo end to end: espeak-ng requests (several voices and speeds) played through
the virtual ALSA microphone that PyAudio opens for real, real Silero VAD, real Whisper,
the real decoder and tools, three real processes on ZeroMQ; replies spoken by espeak-ng to
the virtual speaker. Then the command line: bad input gives clear messages, no crash."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from audio.alsa_virtual import virtual_audio
from audio.checks import check_samples
from audio.sources import write_wav
from audio.utterances import speak
from demos.cli import main
from demos.voice_session import VoiceDemoConfig, VoiceSession
from realtime.trace_figures import load_run

REQUESTS = [  # (label, text, voice, words per minute)
    ("lights", "turn off the kitchen lights", "en-us", 165),
    ("weather", "what's the weather in Paris", "en-gb", 150),
    ("timer", "set a timer for 10 minutes", "en-us+m3", 170),
    ("office", "switch on the office lights", "en-gb-x-rp", 140),
]


def _calls(turn: dict) -> list[tuple[str, dict]]:
    return [(c["name"], c["arguments"]) for c in (turn.get("turn") or {}).get("calls", [])]


@pytest.mark.slow
def test_spoken_requests_through_pyaudio_act_on_the_home_and_are_answered_aloud() -> None:
    items = [check_samples(label, speak(text, voice=voice, words_per_min=wpm))
             for label, text, voice, wpm in REQUESTS]
    session = VoiceSession(VoiceDemoConfig(), items, via="mic", speaker=True, gap_s=2.5)
    result = session.run(timeout_s=300)
    assert result.error is None, (result.error, result.supervisor)
    turns = {t["segment"]: t for t in result.turns}
    assert sorted(turns) == sorted(label for label, *_ in REQUESTS), result.turns

    # Device actions: the home store holds what the calls asked for, and only that. (The
    # small default decoder sometimes flips on/off; the store must follow the call.)
    for label, room in (("lights", "kitchen"), ("office", "office")):
        lights = [a for n, a in _calls(turns[label]) if n == "set_light" and a["room"] == room]
        assert lights, turns[label]
        assert result.home["lights"][room]["on"] is lights[-1]["on"]
        assert room in turns[label]["reply"]
    assert result.home["lights"]["bathroom"]["on"] is False  # untouched
    assert ("get_weather", {"city": "Paris"}) in _calls(turns["weather"])
    assert "Paris" in turns["weather"]["reply"]  # the answer comes from the tool's result
    assert any(n == "set_timer" and a["minutes"] == 10 for n, a in _calls(turns["timer"]))
    assert [t["minutes"] for t in result.home["timers"]] == [10.0]

    for t in result.turns:  # each turn has its full latency breakdown, in order
        lat = t["latency"]
        steps = [lat[k] for k in ("endpoint_ms", "final_ms", "first_call_ms", "first_action_ms",
                                  "first_audio_ms")]
        assert all(v is not None for v in steps), lat
        assert lat["first_call_ms"] <= lat["first_action_ms"] <= lat["results_ms"]
        assert t["playback"] is not None and t["playback"]["played_ms"] > 0
    assert result.speaker_s > 1.0  # replies reached the virtual speaker through PyAudio
    spec = result.stats["speculation"]
    assert spec["writes_executed"] == 0  # never a write ahead of the final transcript
    assert result.stats["preflight"]["preflights"] >= 1  # partial transcripts were decoded ahead
    assert result.stats["loop"]["ticks"] > 0
    assert all(p["restarts"] == 0 for p in result.supervisor.processes.values())


@pytest.mark.slow
def test_cli_answers_a_request_without_speculation_and_skips_a_bad_file(tmp_path: Path,
                                                                        capsys) -> None:
    bad = tmp_path / "cut.wav"
    # A voice tiny.en hears right ("en-us+f3" at 160 wpm came out as "... in talking?").
    good = write_wav(tmp_path / "good.wav", speak("what time is it in Tokyo", voice="en-us+m3",
                                                  words_per_min=170))
    bad.write_bytes(good.read_bytes()[:2000])  # truncated
    out, report = tmp_path / "replies.wav", tmp_path / "run.json"
    rc = main(["voice", "--wav", str(bad), "--wav", str(good), "--no-speculation",
               "--out-wav", str(out), "--json", str(report), "--gap-s", "2"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "skipping" in err and "truncated" in err
    data = json.loads(report.read_text())
    (turn,) = data["turns"]
    assert [c["name"] for c in turn["turn"]["calls"]] and "speculation" not in data["stats"]
    assert turn["latency"]["first_audio_ms"] is not None
    with wave.open(str(out)) as w:
        assert w.getnframes() > 0.5 * w.getframerate()  # the reply was spoken into the file


@pytest.mark.slow
def test_trace_of_a_turn_has_every_process_and_renders_a_report(tmp_path: Path) -> None:
    """`rtagent voice --trace`: VAD, Whisper runs, ticks, preflight and final decodes, tool
    calls and the spoken reply from the three processes in one Chrome trace."""
    trace, html = tmp_path / "voice.trace.json", tmp_path / "voice.html"
    assert main(["voice", "--say", "what's the weather in Paris", "--trace", str(trace),
                 "--gap-s", "1.5"]) == 0
    data = load_run([trace])
    assert {"perception", "decision", "actuation", "frontend"} <= {e["process"] for e in data.events}
    stt = data.spans(track="stt")
    assert {s["name"] for s in stt} == {"partial", "final"} and all(s["dur"] >= 0 for s in stt)
    assert "Paris" in [s for s in stt if s["name"] == "final"][-1]["args"]["text"]
    assert [s["name"] for s in data.spans(track="vad")] == ["speech 0", "silence to endpoint"]
    assert {t["process"] for t in data.spans(track="loop", name="tick")} == {"decision"}
    assert {"partial", "final transcript"} <= {e["name"] for e in data.spans(track="bus")}
    assert data.spans(track="decoder", name="preflight")  # partials were decoded ahead
    (decode,) = data.spans(track="decoder", name="decode")
    assert decode["args"]["calls"] >= 1
    calls = data.spans(track="calls")
    assert [c["name"] for c in calls] == ["1 get_weather"]
    assert calls[0]["args"]["served"] in ("speculation", "joined", "direct")
    (speak,) = data.spans(track="speech", name="speak")
    assert speak["process"] == "actuation" and "Paris" in speak["args"]["text"]
    (turn,) = data.spans(track="turns")
    assert turn["process"] == "frontend" and turn["args"]["first_audio_ms"] > 0
    assert main(["report", str(trace), "-o", str(html)]) == 0
    page = html.read_text()
    assert 'id="timeline"' in page and 'id="decoder"' in page


def test_cli_bad_input_gives_clear_messages(tmp_path: Path, capsys) -> None:
    empty, silent = tmp_path / "empty.wav", tmp_path / "silent.wav"
    empty.write_bytes(b"")
    write_wav(silent, np.zeros(16000, np.float32))
    notwav = tmp_path / "notes.wav"
    notwav.write_text("turn off the lights")
    assert main(["voice", "--wav", str(empty), "--wav", str(silent), "--wav", str(notwav),
                 "--wav", str(tmp_path / "missing.wav")]) == 1
    err = capsys.readouterr().err
    for expected in ("is empty", "is silent", "not a WAV file", "not found",
                     "none of the requests could be used"):
        assert expected in err, err
    assert main(["voice"]) == 1
    assert "give requests (--wav FILE / --say TEXT) or a microphone (--device)" in \
        capsys.readouterr().err
    assert main(["voice", "--say", "hello there", "--early-silence-ms", "-5"]) == 1
    assert "--early-silence-ms: expected 0..10000 (0: off), got -5" in capsys.readouterr().err


def test_cli_missing_devices_list_what_exists(tmp_path: Path, capsys) -> None:
    with virtual_audio(tmp_path / "alsa"):
        assert main(["voice", "--device", "usb mic"]) == 1
        err = capsys.readouterr().err
        assert "no input audio device named 'usb mic'" in err and "rtagent_mic" in err
        assert main(["voice", "--say", "hello", "--out-device", "hdmi"]) == 1
        err = capsys.readouterr().err
        assert "no output audio device named 'hdmi'" in err and "rtagent_speaker" in err
        assert main(["voice", "--list-devices"]) == 0
        assert "rtagent_mic" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_listens_on_a_named_input_device(tmp_path: Path) -> None:
    """The live path: PyAudio opens the input named on the command line and listens for
    --duration-s (here the virtual microphone, holding one spoken request)."""
    with virtual_audio(tmp_path / "alsa") as va:
        seconds = va.load_mic(speak("what's the weather in Rome", voice="en-us", words_per_min=165),
                              lead_silence_s=0.5, tail_silence_s=1.5)
        report = tmp_path / "run.json"
        assert main(["voice", "--device", "agent_mic", "--duration-s", f"{seconds:.2f}",
                     "--json", str(report)]) == 0
    (turn,) = json.loads(report.read_text())["turns"]
    assert ("get_weather", {"city": "Rome"}) in _calls(turn)
    assert "Rome" in turn["reply"]
