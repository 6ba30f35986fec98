"""``$k`` references as values: which are offered, and the matcher that takes them
(a small fake vocabulary, as in test_decoder_constraints.py; no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from control.tools import ToolCall, ToolSpec
from models.callformat import ArgKind, ArgSpec, parse, render
from models.constraints import EnumMatcher, NumberMatcher, UnionMatcher
from models.prompts import system_prompt
from models.simpletool.refs import reference_options, with_references
from tests.helpers.fake_vocab import FakeVocab

PIECES = ["=", "=-", "-", "0", "1", "2", "3", "5", "9", ".", "10", "$", "$1", "cel", "sius",
          "high", "_", "=$", "red", "cube", "x", "kitchen", "office", "wind", "speed"]


V = FakeVocab(PIECES)
WEATHER = ToolSpec("get_weather", parameters={
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    returns={"type": "object", "properties": {
        "celsius": {"type": "number"}, "condition": {"type": "string"},
        "wind": {"type": "object", "properties": {"speed": {"type": "integer"}}},
        "days": {"type": "array", "items": {"type": "number"}}}})
SILENT = ToolSpec("get_time", parameters={
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
THERMOSTAT = ToolSpec("set_thermostat", parameters={
    "type": "object", "properties": {"room": {"type": "string", "enum": ["kitchen", "office"]},
                                     "celsius": {"type": "number", "minimum": 5, "maximum": 30}},
    "required": ["room", "celsius"]})
SPECS = {s.name: s for s in (WEATHER, SILENT, THERMOSTAT)}


def _texts(ids: np.ndarray) -> set[str]:
    return {PIECES[i] for i in ids}


def test_only_result_fields_of_a_fitting_type_are_offered() -> None:
    earlier = [ToolCall("get_weather", {"city": "Oslo"}, id="1"),
               ToolCall("get_time", {"city": "Oslo"}, id="2")]
    number = ArgSpec("celsius", ArgKind.NUMBER, True)
    integer = ArgSpec("speed", ArgKind.INTEGER, True)
    assert reference_options(number, earlier, SPECS) == ["$1.celsius", "$1.wind.speed"]
    assert reference_options(integer, earlier, SPECS) == ["$1.wind.speed"]
    # text, enums and booleans without a boolean field: nothing (constrained, not guessed)
    assert reference_options(ArgSpec("city", ArgKind.STRING, True), earlier, SPECS) == []
    assert reference_options(ArgSpec("room", ArgKind.ENUM, True, enum=("a",)), earlier, SPECS) == []
    assert reference_options(ArgSpec("on", ArgKind.BOOLEAN, True), earlier, SPECS) == []
    # a tool that declares no result offers nothing
    assert reference_options(number, earlier[1:], SPECS) == []


def _celsius_or_reference() -> UnionMatcher:
    from models.callformat import arg_specs

    args = arg_specs(THERMOSTAT)
    earlier = [ToolCall("get_weather", {"city": "Oslo"}, id="1")]
    matchers = [EnumMatcher(["kitchen", "office"], args[0], V),  # type: ignore[arg-type]
                NumberMatcher(args[1], V)]  # type: ignore[arg-type]
    _, m = with_references(args, matchers, earlier, list(SPECS.values()), V, {})  # type: ignore[arg-type]
    assert isinstance(m, UnionMatcher)
    return m


def test_a_number_that_may_be_a_reference_takes_either() -> None:
    m = _celsius_or_reference()
    first = _texts(m.allowed(""))
    assert {"=", "=$"} <= first and "$" not in first
    assert _texts(m.allowed("=")) >= {"1", "2", "$1"}
    assert m.forced("=$1.c") == "elsius" and m.forced("=$1.") is None and m.forced("=2") is None
    assert m.complete("=$1.celsius") and m.value("=$1.celsius") == "$1.celsius"
    assert m.complete("=21") and m.value("=21") == 21
    assert not m.complete("=$1.cel") and not m.viable("=$2") and not m.viable("=31")
    assert m.close_for("=$1.celsius") == "" and m.close_for("=21") == ""


def test_matchers_are_wrapped_only_after_a_call_with_a_result() -> None:
    from models.callformat import arg_specs

    args = arg_specs(THERMOSTAT)
    matchers = [EnumMatcher(["kitchen", "office"], args[0], V),  # type: ignore[arg-type]
                NumberMatcher(args[1], V)]  # type: ignore[arg-type]
    assert with_references(args, matchers, [], list(SPECS.values()), V, {}) == matchers  # type: ignore[arg-type]
    earlier = [ToolCall("get_weather", {"city": "Oslo"}, id="1")]
    wrapped = with_references(args, matchers, earlier, list(SPECS.values()), V, {})  # type: ignore[arg-type]
    assert wrapped[0] is matchers[0] and isinstance(wrapped[1], UnionMatcher)
    assert wrapped[1].members[0] is matchers[1]  # the value's own matcher, then the references
    # an argument restricted at run time keeps its enum (it must name what exists)
    kept = with_references(args, matchers, earlier, list(SPECS.values()), V,  # type: ignore[arg-type]
                           {"celsius": [20]})
    assert kept[1] is matchers[1]


def test_a_reference_renders_bare_and_parses_back() -> None:
    calls = [ToolCall("get_weather", {"city": "Oslo"}),
             ToolCall("set_thermostat", {"room": "office", "celsius": "$1.celsius"})]
    text = render(calls, list(SPECS.values()))
    assert text == 'get_weather(city="Oslo")\nset_thermostat(room=office, celsius=$1.celsius)'
    assert parse(text, list(SPECS.values()))[1].arguments["celsius"] == "$1.celsius"


def test_the_prompt_lists_result_fields_only_where_a_tool_declares_them() -> None:
    with_result = system_prompt([WEATHER, THERMOSTAT])
    assert "- get_weather(city: text) -> {celsius, condition, wind, days}" in with_result
    assert "$1.celsius" in with_result
    plain = system_prompt([SILENT, THERMOSTAT])
    assert "->" not in plain and "$1" not in plain


@pytest.mark.slow
def test_a_reference_is_decodable_token_by_token_with_the_real_vocabulary() -> None:
    """Each token of ``=$1.celsius`` as the real tokenizer writes it is allowed in turn,
    so the decoder can choose it: the reference is an option, not a parse-only form."""
    from models.callformat import arg_specs
    from models.factory import make_decoder
    from models.resolve import resolve_model

    with make_decoder("simpletool", resolve_model(), schedule="sequential") as dec:
        vocab = dec.vocab
        args = arg_specs(THERMOSTAT)
        from models.constraints import matcher_for

        earlier = [ToolCall("get_weather", {"city": "Oslo"}, id="1")]
        _, m = with_references(args, [matcher_for(a, vocab) for a in args], earlier,
                               list(SPECS.values()), vocab, {})
        assert isinstance(m, UnionMatcher)
        text = "".join(vocab.texts[t] or "" for t in m.lead())
        for tok in vocab.tokenize("=$1.celsius")[len(m.lead()):]:
            assert tok in set(m.allowed(text).tolist()), (text, vocab.texts[tok])
            text += vocab.texts[tok] or ""
        assert m.complete(text) and m.value(text) == "$1.celsius"
