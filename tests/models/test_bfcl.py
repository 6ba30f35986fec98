"""The BFCL yardstick without a model: its specs convert with no refusal, its answers
score as BFCL's AST checker scores them (cross-checked against the real checker while
this port was written: 6000 outputs, no disagreement), and `rtagent calls --bfcl` exists."""

from __future__ import annotations

import copy
import importlib.util

import jsonschema
import pytest

from control.tools import ToolCall
from models.callformat import arg_specs, parse, render, split_expressible
from models.evalsets.bfcl import CATEGORIES, load_bfcl, model_output, to_tool_spec
from models.evalsets.bfcl_check import ast_match

if importlib.util.find_spec("bfcl_eval") is None:  # (found as files, never imported)
    pytest.skip("bfcl-eval is not installed (setup.sh installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def cases():
    return {c: load_bfcl(c) for c in CATEGORIES}


def test_every_case_of_the_four_categories_is_decodable(cases) -> None:
    for category, loaded in cases.items():
        assert len(loaded) >= 200, category
        for b in loaded:
            assert split_expressible(list(b.tools))[1] == {}, b.case.id


def test_bfcl_type_names_become_json_schema() -> None:
    spec = to_tool_spec({"name": "calc.dist", "description": "d", "parameters": {
        "type": "dict", "required": ["a"], "properties": {
            "a": {"type": "tuple", "items": {"type": "float"}},
            "b": {"type": "dict", "properties": {"n": {"type": "integer"}}},
            "c": {"type": "any", "optional": True},
            "d": {"type": "array", "items": {"type": "dict", "properties": {
                "x": {"type": "float"}}}}}}})
    props = spec.parameters["properties"]
    assert props["a"] == {"type": "array", "items": {"type": "number"}}
    assert props["b"]["type"] == "object" and props["b"]["properties"]["n"]["type"] == "integer"
    assert props["c"] == {"type": "string"}  # BFCL's own mapping: any -> string
    assert props["d"]["items"]["properties"]["x"]["type"] == "number"
    assert [a.name for a in arg_specs(spec)] == ["a", "b", "c", "d"]


def _first_answer(b) -> list[dict]:
    """The calls a possible answer lists first (optional ones left out)."""
    out = []
    for answer in b.answers:
        name = next(iter(answer))
        out.append({"name": name, "arguments": {p: copy.deepcopy(v[0])
                                                for p, v in answer[name].items()
                                                if v and v[0] != ""}})
    return out


def test_possible_answers_match_and_render_in_the_compact_format(cases) -> None:
    for category, loaded in cases.items():
        valid = 0
        for b in loaded[:60]:
            calls = _first_answer(b)
            ok, _ = ast_match(category, b.functions, model_output(calls), b.answers)
            valid += ok
            as_calls = [ToolCall(c["name"], c["arguments"]) for c in calls]
            specs = [next(t for t in b.tools if t.name == c.name) for c in as_calls]
            fits = all(jsonschema.Draft202012Validator(dict(t.parameters)).is_valid(
                dict(c.arguments)) for c, t in zip(as_calls, specs, strict=True))
            if ok and fits:  # (not a "variable": a name where the schema wants a list)
                # what the checker accepts, the format writes and reads back
                back = parse(render(as_calls, b.tools), b.tools)
                assert [dict(c.arguments) for c in back] == [c["arguments"] for c in calls]
        assert valid >= 55, category


def test_the_ast_match_rules() -> None:
    fn = {"name": "f", "parameters": {"type": "dict", "required": ["a"], "properties": {
        "a": {"type": "float"}, "s": {"type": "string"}, "opt": {"type": "integer"},
        "xs": {"type": "array", "items": {"type": "string"}}}}}
    answer = [{"f": {"a": [2.0], "s": ["New York", "NYC"], "opt": ["", 3], "xs": [["a b"], ""]}}]

    def check(args: dict, category: str = "simple") -> bool:
        return ast_match(category, [fn], [{"f": args}], answer)[0]

    assert check({"a": 2, "s": "new-york"})  # int -> float; strings standardized
    assert check({"a": 2.0, "s": "NYC", "opt": 3, "xs": ["A_B"]})
    assert not check({"a": 2.0})  # s is not optional
    assert not check({"a": 2.0, "s": "NYC", "opt": 4})
    assert not check({"a": 2.0, "s": "NYC", "zzz": 1})
    assert not check({"a": "2", "s": "NYC"})  # wrong type
    assert not ast_match("simple", [fn], [], answer)[0]  # no call
    two = answer + [{"f": {"a": [1.0], "s": ["x"]}}]
    out = [{"f": {"a": 1.0, "s": "x"}}, {"f": {"a": 2.0, "s": "nyc"}}]
    assert ast_match("parallel", [fn], out, two)[0]  # any order
    assert not ast_match("parallel", [fn], out[:1], two)[0]


def test_rtagent_calls_takes_a_bfcl_category() -> None:
    import argparse

    from demos import calls

    parser = argparse.ArgumentParser()
    calls.add_arguments(parser)
    args = parser.parse_args(["--bfcl", "parallel", "--limit", "3"])
    assert args.bfcl == "parallel" and args.input is None
    assert [b.case.id for b in load_bfcl("parallel", 3)] == ["parallel_0", "parallel_66",
                                                              "parallel_133"]
