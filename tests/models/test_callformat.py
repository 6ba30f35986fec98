"""The compact call format: render and parse round-trip, errors say what and where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control.tools import ToolCall, ToolSpec, UnknownToolError, load_tool_specs
from models.callformat import (
    NONE_CALL,
    CallFormatError,
    UnsupportedSchemaError,
    check_expressible,
    format_number,
    parse,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
ROBOT = load_tool_specs(json.loads((ROOT / "sim_envs/robot_tools.json").read_text()))
VOICE = load_tool_specs(json.loads((ROOT / "audio/voice_tools.json").read_text()))


def test_exact_text_of_calls() -> None:
    calls = [
        ToolCall("move_to", {"z": 0.2, "x": 0.3, "y": -0.1}),
        ToolCall("grasp", {"object": "red_cube"}),
        ToolCall("release"),
    ]
    assert render(calls, ROBOT) == "move_to(x=0.3, y=-0.1, z=0.2)\ngrasp(object=red_cube)\nrelease()"
    voice = [ToolCall("set_timer", {"minutes": 5, "label": 'say "hi"'}),
             ToolCall("set_light", {"room": "kitchen", "on": False, "brightness": 40})]
    assert render(voice, VOICE) == (
        'set_timer(minutes=5, label="say \\"hi\\"")\n'
        "set_light(room=kitchen, on=false, brightness=40)"
    )
    assert render([]) == NONE_CALL == "none()"


def test_parse_round_trip_ids_and_none() -> None:
    text = "locate_object(object=blue_cube)\nmove_to(x=$1.x, y=$1.y, z=0.25)"
    calls = parse(text, ROBOT)
    assert [c.id for c in calls] == ["1", "2"]
    assert calls[1].arguments == {"x": "$1.x", "y": "$1.y", "z": 0.25}
    assert render(calls, ROBOT) == text
    assert parse("  none( ) ", ROBOT) == []
    assert parse("set_thermostat( room = office ,celsius=21.5 )", VOICE)[0].arguments == {
        "room": "office", "celsius": 21.5}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("move_to(x=0.3, y=0.1)", "missing required argument(s) ['z']"),
        ("grasp(object=purple_cube)", "is not one of"),
        ("move_to(x=0.9, y=0, z=0)", "above the maximum"),
        ("set_light(room=kitchen, on=yes)", "expected true or false"),
        ("get_weather(city=Oslo)", "expected a quoted string"),
        ("move_to(x=0.3, y=0.1, z=0.2", "expected ',' or ')'"),
        ("grasp(object=$2)", "does not come before it"),
        ("none()\nrelease()", "must be the whole answer"),
        ("", "empty answer"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    specs = ROBOT + VOICE
    with pytest.raises(CallFormatError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        parse(text, specs)


def test_unknown_tool() -> None:
    with pytest.raises(UnknownToolError, match="unknown tool 'fly'"):
        parse("fly(to=moon)", ROBOT)


def test_inexpressible_schema_names_the_tool_the_argument_and_the_keyword() -> None:
    spec = ToolSpec("draw", parameters={"type": "object", "properties": {
        "points": {"type": "array", "items": {"type": "object", "properties": {
            "label": {"type": "string", "pattern": "^[a-z]+$"}}}}}})
    with pytest.raises(UnsupportedSchemaError,
                       match=r"tool 'draw', argument 'points\[\]\.label': 'pattern'"):
        check_expressible([spec])
    check_expressible(ROBOT + VOICE)


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_numbers_round_trip_without_exponent(value: float) -> None:
    text = format_number(value)
    assert "e" not in text.lower()
    assert float(text) == pytest.approx(value, rel=1e-9, abs=1e-9)


@given(st.text(max_size=30))
def test_strings_round_trip(text: str) -> None:
    call = ToolCall("web_search", {"query": text})
    rendered = render([call], VOICE)
    assert len(rendered.splitlines()) == 1
    assert parse(rendered, VOICE)[0].arguments == {"query": text}
