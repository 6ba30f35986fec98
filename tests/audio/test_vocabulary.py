"""Whisper biased with the live vocabulary: the prompt built from the home's words and
the cities asked about lately, announced by actuation and decision as ``vocabulary``
events and followed by perception; and the STT's prompt swapped at run time."""

from __future__ import annotations

import json

import pytest

from audio.nodes import LiveVocabulary
from audio.vocabulary import MAX_WORDS_PER_KIND, Vocabulary, stt_prompt
from realtime import messages as m
from realtime.bus import Latest
from realtime.trace import Tracer
from sim_envs.home.nodes import HomeVocabulary
from sim_envs.home.store import HomeStore


def test_the_prompt_uses_each_word_of_the_tools():
    words = HomeStore().vocabulary()
    assert words["contacts"] == ["Anna", "Ben", "Carla", "Dad", "David", "Mom"]
    assert words["items"] == ["milk", "eggs"] and "living room" in words["rooms"]
    prompt = stt_prompt(**words, cities=["Reykjavík"])
    for w in ("living room", "thermostat", "milk and eggs", "Carla", "Reykjavík"):
        assert w in prompt
    many = stt_prompt(items=[f"item {i}" for i in range(30)])
    assert "item 29" in many and "item 19" not in many  # the newest few
    assert len([w for w in many.split(",")]) == MAX_WORDS_PER_KIND - 1


def test_the_vocabulary_merges_sources_and_says_when_the_prompt_changed():
    v = Vocabulary()
    assert v.update("home", {"items": ["milk"], "rooms": ["kitchen"]})
    assert not v.update("home", {"items": ["milk"], "rooms": ["kitchen"]})
    assert v.update("recent", {"cities": ["Lisbon"], "ignored": ["x"]})
    assert "milk" in v.prompt() and "Lisbon" in v.prompt()


class _Pub:
    def __init__(self) -> None:
        self.sent: list[m.Message] = []

    def publish(self, msg: m.Message, topic: str | None = None) -> None:
        self.sent.append(msg)


class _Sub:
    def __init__(self, msgs: list[m.Message]) -> None:
        self.msgs = list(msgs)

    def recv(self, timeout_ms: float = 0.0) -> Latest[m.Message] | None:
        return Latest(self.msgs.pop(0), 0.0, "event", 0, True) if self.msgs else None


class _Stt:
    def __init__(self) -> None:
        self.prompts: list[str] = []

    def set_prompt(self, text: str | None) -> None:
        self.prompts.append(text or "")


def test_the_home_announces_its_words_and_perception_follows_them():
    store, pub = HomeStore(), _Pub()
    announcer = HomeVocabulary(store, pub)
    announcer.poll(handled=False)  # at once
    announcer.poll(handled=True)  # a request that changed nothing: not again
    store.add_to_shopping_list("oat milk")
    announcer.poll(handled=True)
    assert len(pub.sent) == 2
    events = [json.loads(e.text) for e in pub.sent]  # type: ignore[attr-defined]
    assert events[-1]["source"] == "home" and events[-1]["items"][-1] == "oat milk"
    cities = m.LogEvent(logger="vocabulary", text=json.dumps({"source": "recent",
                                                               "cities": ["Reykjavík"]}))
    other = m.LogEvent(logger="turn", text="{}")
    stt = _Stt()
    live = LiveVocabulary([_Sub(pub.sent), _Sub([other, cities])], stt, Tracer("t", enabled=False))
    live.poll()
    assert live.updates == 3 and "oat milk" in stt.prompts[-1] and "Reykjavík" in stt.prompts[-1]


@pytest.mark.slow
def test_whisper_takes_a_new_prompt_between_transcriptions():
    from audio.stt import SttOptions, WhisperStt
    from audio.utterances import speak

    stt = WhisperStt(SttOptions(cpu_threads=1))
    x = speak("turn off the kitchen lights")
    plain = stt.transcribe(x).text
    stt.set_prompt(stt_prompt(**HomeStore().vocabulary()))
    assert stt.prompt_text.startswith("Turn the kitchen")
    biased = stt.transcribe(x).text
    assert "kitchen" in plain.lower() and "kitchen" in biased.lower()
    stt.set_prompt(None)
    assert stt.prompt_text == "" and stt.transcribe(x).text == plain
    stt.set_prompt("word " * 400)  # longer than Whisper's previous-text budget: cut, not an error
    assert stt.transcribe(x).text
