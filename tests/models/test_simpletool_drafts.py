"""The prompt-lookup heuristics of the SimpleTool decoder, without a model: pure functions
of the request, the value so far and a small fake vocabulary (the decoder's use of them,
on the real model, is in tests/models/test_decoder.py)."""

from __future__ import annotations

import string

from models.callformat import ArgKind, ArgSpec
from models.constraints import EnumMatcher, NumberMatcher, StringMatcher
from models.simpletool.drafts import (
    MAX_DRAFT,
    call_draft,
    closes_value,
    continuation,
    named_option,
    number_for,
    numbers_in_order,
    request_names,
    token_text,
    value_draft,
    value_lookahead,
    value_tail,
)

# a few merged pieces as real vocabularies have them, then every single character
from tests.helpers.fake_vocab import FakeVocab

PIECES = ["=-", '="', "=", "0.", "10", "red", "blue", "_cube", "kitchen", "living", "_room",
          "Os", "lo", "true", "false", ", ", "move", "_to", *string.printable[:95]]


V = FakeVocab(PIECES)


def _number(name: str, lo: float | None = None, hi: float | None = None,
            kind: ArgKind = ArgKind.NUMBER) -> NumberMatcher:
    return NumberMatcher(ArgSpec(name, kind, True, minimum=lo, maximum=hi), V)  # type: ignore[arg-type]


def _string(name: str) -> StringMatcher:
    return StringMatcher(ArgSpec(name, ArgKind.STRING, True), V)  # type: ignore[arg-type]


def _text(tokens: list[int]) -> str:
    return token_text(V, tokens)  # type: ignore[arg-type]


def test_a_request_names_a_tool_by_every_word_after_its_verb() -> None:
    assert request_names("set_light", "turn on the lights")  # a plural counts
    assert request_names("get_weather", "what's the weather in Rome")
    assert not request_names("get_time", "set a timer for 12 minutes")  # "timer" is not "time"
    assert request_names("set_timer", "Set a TIMER for 12 minutes")
    assert not request_names("plan_path", "go to the bin")
    assert not request_names("stop", "stop")  # no word after the verb: no name to match


def test_numbers_are_taken_in_order_only_where_there_are_as_many() -> None:
    assert numbers_in_order("go to (0.5, -0.1, 0.3)", ["x", "y", "z"]) == {
        "x": "0.5", "y": "-0.1", "z": "0.3"}
    assert numbers_in_order("go to 0.5, -0.1", ["x", "y", "z"]) == {}
    assert numbers_in_order("go home", []) == {}


def test_an_option_is_drafted_only_where_the_request_names_exactly_one() -> None:
    rooms = {"=kitchen": "kitchen", "=living_room": "living_room", "=on": True}
    assert named_option(rooms, "lights off in the Living Room") == "=living_room"
    assert named_option(rooms, "the kitchen and the living room") is None  # two: no guess
    assert named_option(rooms, "turn it on") is None  # only string values are looked up
    assert named_option(rooms, "kitchenette") is None  # whole words only


def test_a_number_is_the_one_after_or_before_the_arguments_name() -> None:
    assert number_for("x", "move to x 0.4, y -0.25") == "0.4"
    assert number_for("y", "move to x 0.4, y -0.25") == "-0.25"
    assert number_for("x", "x: -0.2 please") == "-0.2"
    assert number_for("minutes", "a timer for 12 minutes") == "12"
    assert number_for("z", "move to x 0.4") is None
    assert number_for("x", "box 3") is None  # "x" inside a word is not the argument


def test_a_value_begun_continues_as_the_request_goes_on() -> None:
    request = "send a message to Anna saying I am running late"
    assert continuation(request, "text", "I am") == " running late"
    assert continuation(request, "to", "An") == "na saying I am running l"  # 24 characters
    assert continuation(request, "text", "Bob") is None
    # looked for after the argument's name where the request says it
    assert continuation("from Oslo to Osaka", "to", "Os") == "aka"
    assert continuation("x is 1 and y is 12", "y", "1") == "2"


def test_the_tail_of_a_fresh_value_number_enum_or_string() -> None:
    x = _number("x", -1.0, 1.0)
    assert value_tail(x, "", "", "x", "move to x 0.4") == "=0.4"
    assert value_tail(x, "", "", "x", "move to 0.4", number="0.4") == "=0.4"  # in order
    assert value_tail(x, "", "", "x", "move up") == ""
    assert value_tail(x, "=0", "", "x", "move to x 0.45") == ".45"  # begun: continued
    objects = EnumMatcher(["red_cube", "blue_cube"], None, V)  # type: ignore[arg-type]
    lead = _text(objects.lead())
    assert value_tail(objects, lead, lead, "object", "pick up the blue cube") == (
        "=blue_cube"[len(lead):])
    assert value_tail(objects, "=blue", lead, "object", "pick up the blue cube") == ""  # begun
    city = _string("city")
    assert value_tail(city, '="', '="', "city", "weather in Oslo") == ""  # a string: not fresh
    assert value_tail(city, '="Os', '="', "city", "weather in Oslo") == "lo"
    assert value_tail(x, "", "", "x", "") == ""


def test_a_draft_is_cut_where_the_value_cannot_go() -> None:
    x = _number("x", -1.0, 1.0)
    assert _text(value_draft(x, "", "x", "move to x 0.4, y 0.2", V)) == "=0.4"  # type: ignore[arg-type]
    # out of range: only what can still start a value
    assert _text(value_draft(x, "", "x", "move to x 5", V)) == "="  # type: ignore[arg-type]
    n = _number("n", kind=ArgKind.INTEGER)
    assert _text(value_draft(n, "", "n", "n 12.5", V)) == "=12"  # type: ignore[arg-type]
    city = _string("city")
    long = "weather in Os" + "o" * 40
    assert len(value_draft(city, '="Os', "city", long, V)) == MAX_DRAFT  # type: ignore[arg-type]
    assert value_draft(x, "", "x", "", V) == []  # type: ignore[arg-type]


def test_a_value_is_closed_where_the_request_says_it_ends() -> None:
    city = _string("city")
    assert closes_value(city, '="Oslo', True, "what's the weather in Oslo?")
    assert not closes_value(city, '="Oslo', True, "weather in Oslo tomorrow")
    minutes = _number("minutes", 0, 120, ArgKind.INTEGER)
    assert closes_value(minutes, "=12", True, "a timer for 12 minutes")  # drafted to its end
    assert not closes_value(minutes, "=1", False, "a timer for 12 minutes")  # =1 may grow
    assert not closes_value(minutes, "=", True, "a timer")  # not a value yet
    follow = V.tokenize('")')
    drafted = value_lookahead(city, '="Os', "city", "the weather in Oslo", V, follow)  # type: ignore[arg-type]
    assert _text(drafted) == 'lo")'
    # the request goes on after the draft (cut at MAX_DRAFT tokens): the close is not drafted
    assert _text(value_lookahead(city, '="Os', "city", "Oslo tomorrow", V, follow)) == "lo tomorr"  # type: ignore[arg-type]


def test_a_whole_call_is_drafted_up_to_the_first_value_the_request_does_not_give() -> None:
    args = [ArgSpec(a, ArgKind.NUMBER, True, minimum=-1.0, maximum=1.0) for a in "xyz"]
    matchers = [_number(a, -1.0, 1.0) for a in "xyz"]
    assert _text(call_draft(args, matchers, "move to x 0.5, y -0.1, z 0.3", V)) == (  # type: ignore[arg-type]
        "x=0.5, y=-0.1, z=0.3)")
    assert _text(call_draft(args, matchers, "go to (0.5, -0.1, 0.3)", V)) == (  # type: ignore[arg-type]
        "x=0.5, y=-0.1, z=0.3)")
    # z not given: its name and lead are drafted, so its first decision reads this batch
    assert _text(call_draft(args, matchers, "move to x 0.5, y -0.1", V)) == "x=0.5, y=-0.1, z"  # type: ignore[arg-type]
    timer = [ArgSpec("minutes", ArgKind.INTEGER, True, minimum=1, maximum=120),
             ArgSpec("label", ArgKind.STRING, False)]
    tm = [_number("minutes", 1, 120, ArgKind.INTEGER), _string("label")]
    # optional arguments left out: the close follows the last required value
    assert _text(call_draft(timer, tm, "set a timer for 12 minutes", V)) == "minutes=12)"  # type: ignore[arg-type]
    assert _text(call_draft([], [], "go home", V)) == ""  # type: ignore[arg-type]
