"""Several calls per request, and none where none is wanted, with the real model
(slow) and the rule that ends a looping answer (fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from control.tools import ToolCall, load_tool_specs
from models.simpletool.decoder import _repeats

ROOT = Path(__file__).resolve().parents[2]


def _specs(name: str) -> list:
    path = {"robot": "sim_envs/robot_tools.json", "voice": "audio/voice_tools.json"}[name]
    return load_tool_specs(json.loads((ROOT / path).read_text()))


def test_the_same_call_right_after_itself_is_a_loop_but_not_further_on() -> None:
    on = ToolCall("set_light", {"room": "kitchen", "on": True})
    off = ToolCall("set_light", {"room": "kitchen", "on": False})
    assert _repeats(on, [on]) and _repeats(on, [off, on])
    assert not _repeats(on, []) and not _repeats(on, [on, off])  # "on, off, on again"
    assert not _repeats(ToolCall("set_light", {"room": "office", "on": True}), [on])


@pytest.fixture(scope="module")
def decoder():
    from models.factory import make_decoder
    from models.resolve import resolve_model

    dec = make_decoder("simpletool", resolve_model(), schedule="sequential")
    yield dec
    dec.close()


NOTHING = ["never mind", "thanks", "stop", "no thanks, forget it"]


@pytest.mark.slow
def test_nothing_asked_for_is_no_call(decoder) -> None:
    from models.decoder import DecodeContext
    from models.prompts import render_scene

    for text in NOTHING:  # (one tool set after the other: the prompt stays cached)
        voice = decoder.decode(DecodeContext.from_request(text), _specs("voice"))
        assert voice.calls == [] and voice.text == "none()", text
    scene = render_scene(["red_cube", "blue_cube"])
    enums = {"object": ["red_cube", "blue_cube"], "target": ["red_cube", "blue_cube", "bin"]}
    for text in NOTHING:
        robot = decoder.decode(DecodeContext.from_request(text, scene=scene, enums=enums),
                               _specs("robot"))
        assert robot.calls == [], text


@pytest.mark.slow
def test_a_and_b_is_two_calls_streamed_one_by_one(decoder) -> None:
    from models.decoder import DecodeContext

    ctx = DecodeContext.from_request("how's the weather in Berlin and in Vienna?")
    stream = decoder.decode_stream(ctx, _specs("voice"))
    first = next(stream)  # yielded before the second call is decoded
    assert (first.name, dict(first.arguments), first.id) == ("get_weather", {"city": "Berlin"}, "1")
    rest = list(stream)
    assert [(c.name, dict(c.arguments), c.id) for c in rest] == [
        ("get_weather", {"city": "Vienna"}, "2")]
