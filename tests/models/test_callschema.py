"""Every JSON-Schema type in the compact call format: schemas read into ArgSpec trees,
values rendered and parsed back over generated schemas, and what can't be decoded
reported per tool and argument."""

from __future__ import annotations

import json
import string
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control.tools import ToolCall, ToolSpec
from models.argspec import ArgKind, ArgSpec
from models.callformat import (
    CallFormatError,
    UnsupportedSchemaError,
    apply_defaults,
    arg_specs,
    describe_field,
    parse,
    render,
    render_value,
    split_expressible,
)
from models.callschema import json_schema, object_schema
from models.simpletool.values import value_pieces

NAMES = st.text(string.ascii_lowercase, min_size=1, max_size=6).filter(
    lambda s: s not in ("true", "false", "null", "none"))
WORDS = st.sampled_from(["red", "kitchen", "living_room", "a b", "x-1", "42", "null"])


def _scalar_schemas() -> st.SearchStrategy[dict[str, Any]]:
    bounded = st.tuples(st.integers(-50, 0), st.integers(0, 50))
    return st.one_of(
        st.just({"type": "string"}),
        st.integers(1, 12).map(lambda n: {"type": "string", "maxLength": n}),
        bounded.map(lambda b: {"type": "integer", "minimum": b[0], "maximum": b[1]}),
        st.just({"type": "number"}),
        bounded.map(lambda b: {"type": "number", "minimum": b[0], "maximum": b[1]}),
        st.just({"type": "boolean"}),
        st.lists(WORDS, min_size=1, max_size=4, unique=True).map(lambda v: {"enum": v}),
        st.lists(st.integers(-3, 3), min_size=1, max_size=3, unique=True).map(
            lambda v: {"enum": v}),
        st.just({"type": ["string", "null"]}),
        st.just({"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        st.just({}),  # no type: any
    )


def _compound(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    def obj(props: dict[str, dict[str, Any]], req: list[bool]) -> dict[str, Any]:
        return {"type": "object", "properties": props,
                "required": [k for k, r in zip(props, req, strict=False) if r]}
    return st.one_of(
        st.tuples(children, st.integers(0, 2), st.integers(2, 4)).map(
            lambda t: {"type": "array", "items": t[0], "minItems": t[1], "maxItems": t[2]}),
        st.builds(obj, st.dictionaries(st.one_of(NAMES, st.just("first-name")), children,
                                       min_size=1, max_size=3),
                  st.lists(st.booleans(), min_size=3, max_size=3)),
        children.map(lambda c: {"type": "object", "additionalProperties": c}),
        children.map(lambda c: {"anyOf": [c, {"type": "null"}]}),
    )


SCHEMAS = st.recursive(_scalar_schemas(), _compound, max_leaves=6)


def _values(arg: ArgSpec) -> st.SearchStrategy[Any]:
    """Values valid for ``arg`` (the strategy mirrors what the format can write)."""
    k = arg.kind
    if k is ArgKind.ENUM:
        return st.sampled_from(arg.enum)
    if k is ArgKind.STRING:
        return st.text(max_size=arg.max_length if arg.max_length is not None else 12)
    if k in (ArgKind.NUMBER, ArgKind.INTEGER):
        lo = -1e6 if arg.minimum is None else arg.minimum
        hi = 1e6 if arg.maximum is None else arg.maximum
        if k is ArgKind.INTEGER:
            return st.integers(int(lo), int(hi))
        # (plain decimals: the format writes at most 12 decimals, never an exponent)
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False).map(
            lambda x: min(hi, max(lo, round(x, 6))))
    if k is ArgKind.BOOLEAN:
        return st.booleans()
    if k is ArgKind.NULL:
        return st.none()
    if k is ArgKind.ARRAY:
        assert arg.items is not None
        return st.lists(_values(arg.items), min_size=arg.min_items, max_size=arg.item_cap)
    if k is ArgKind.MAP:
        assert arg.items is not None
        return st.dictionaries(st.text(max_size=5), _values(arg.items), max_size=3)
    if k is ArgKind.OBJECT:
        def pick(parts: dict[str, Any], keep: list[bool]) -> dict[str, Any]:
            return {f.name: parts[f.name] for f, k in zip(arg.fields, keep, strict=True)
                    if f.required or k}
        return st.builds(pick, st.fixed_dictionaries({f.name: _values(f) for f in arg.fields}),
                         st.lists(st.booleans(), min_size=len(arg.fields),
                                  max_size=len(arg.fields)))
    return st.one_of(*(_values(o) for o in arg.options))


@st.composite
def _cases(draw: st.DrawFn) -> tuple[ToolSpec, dict[str, Any]]:
    schema = draw(SCHEMAS)
    spec = ToolSpec("tool.use", parameters={"type": "object", "properties": {"a": schema},
                                            "required": ["a"]})
    (arg,) = arg_specs(spec)
    return spec, {"a": draw(_values(arg))}


@settings(max_examples=150, deadline=None)
@given(_cases())
def test_every_value_of_a_generated_schema_renders_on_one_line_and_parses_back(case) -> None:
    spec, arguments = case
    jsonschema.validate(arguments, dict(spec.parameters))  # the generator makes valid values
    text = render([ToolCall(spec.name, arguments)], [spec])
    assert len(text.splitlines()) == 1
    (back,) = parse(text, [spec])
    assert back.arguments == arguments
    assert render([back], [spec]) == text
    # the baseline's schema (what the format decodes) accepts them too
    jsonschema.validate(arguments, object_schema(arg_specs(spec)))
    # the pieces the decoder tokenizes apart are the value's text
    pieces, close = value_pieces(arguments["a"], arg_specs(spec)[0])
    assert "".join(pieces) + close == "=" + render_value(arguments["a"], arg_specs(spec)[0])


def test_the_pieces_of_compound_values_as_the_decoder_tokenizes_them() -> None:
    spec = _spec({"items": {"type": "array", "items": {"type": "string"}},
                  "p": {"type": "object", "properties": {"x": {"type": "number"},
                                                         "y": {"type": "number"}}},
                  "g": {"type": "object", "additionalProperties": {"type": "integer"}}})
    items, p, g = arg_specs(spec)
    assert value_pieces(["oat milk", "bananas"], items) == (['=["oat milk', '",', ' "bananas'],
                                                            '"]')
    assert value_pieces([], items) == ([], "=[]")
    assert value_pieces({"x": 0.1, "y": 0.2}, p) == (["={x", "=0.1", ", y", "=0.2"], "}")
    assert value_pieces({"math": 90}, g) == (['={"math', '"', "=90"], "}")


def _spec(props: dict[str, Any], required: list[str] | None = None,
          **extra: Any) -> ToolSpec:
    return ToolSpec("t", parameters={"type": "object", "properties": props,
                                     "required": required if required is not None else list(props),
                                     **extra})


def test_the_written_forms_of_compound_values() -> None:
    spec = _spec({
        "items": {"type": "array", "items": {"type": "string"}},
        "points": {"type": "array", "items": {"type": "object", "properties": {
            "x": {"type": "number"}, "y": {"type": "number"}}, "required": ["x", "y"]}},
        "rooms": {"type": "array", "items": {"enum": ["kitchen", "living room"]}},
        "grades": {"type": "object", "additionalProperties": {"type": "integer"}},
        "note": {"type": ["string", "null"]},
        "style": {"type": "object", "properties": {"first-name": {"type": "string"},
                                                   "width": {"type": "integer"}}},
    })
    call = ToolCall("t", {"items": ["oat milk", "bananas"],
                          "points": [{"x": 0.1, "y": 0.2}, {"x": -0.3, "y": 1}],
                          "rooms": ["kitchen", "living room"], "grades": {"math": 90},
                          "note": None, "style": {"first-name": "Ann"}})
    text = ('t(items=["oat milk", "bananas"], points=[{x=0.1, y=0.2}, {x=-0.3, y=1}], '
            'rooms=[kitchen, "living room"], grades={"math"=90}, note=null, '
            'style={"first-name"="Ann"})')
    assert render([call], [spec]) == text
    assert parse(text, [spec]) == [ToolCall("t", call.arguments, id="1")]
    # parse is lenient where the model might be: spaces, quoted enum members, ':' in braces
    loose = ('t( items = [ "oat milk" ,"bananas" ], points=[{x: 0.1, y=0.2}, {y=1, x=-0.3}], '
             'rooms=["kitchen", "living room"], grades={"math": 90}, note=null, style={})')
    assert parse(loose, [spec])[0].arguments["points"] == call.arguments["points"]


@pytest.mark.parametrize(("props", "text", "message"), [
    ({"n": {"type": "array", "items": {"type": "integer"}, "maxItems": 2}}, "t(n=[1, 2, 3])",
     "3 elements"),
    ({"n": {"type": "array", "items": {"type": "integer"}}}, "t(n=[1, x])",
     r"t\.n\[1\]: expected a number"),
    ({"p": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
     "t(p={})", "t.p is missing required field"),
    ({"p": {"type": "object", "properties": {"x": {"type": "number"}}}}, "t(p={z=1})",
     "no field 'z'"),
    ({"v": {"type": ["integer", "null"]}}, 't(v="a")', "fits none of the allowed types"),
    ({"v": {"type": "integer", "exclusiveMaximum": 5}}, "t(v=5)", "above the maximum"),
    ({"v": {"type": "integer", "multipleOf": 5}}, "t(v=7)", "not a multiple of 5"),
    ({"v": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}}, "t(v=[1, 1])",
     "unique"),
])
def test_values_that_break_the_schema_are_refused_with_their_path(props, text, message) -> None:
    with pytest.raises(CallFormatError, match=message):
        parse(text, [_spec(props)])


def test_dotted_tool_names_quoted_argument_names_and_references_inside_values() -> None:
    spec = ToolSpec("math.hypot", parameters={"type": "object", "properties": {
        "x": {"type": "number"}, "null": {"type": "number"},
        "to": {"type": "array", "items": {"type": "number"}}}, "required": ["x"]})
    text = 'math.hypot(x=3, "null"=4)\nmath.hypot(x=$1, to=[$1, 2])'
    calls = parse(text, [spec])
    assert calls[0].arguments == {"x": 3, "null": 4} and calls[1].arguments["to"] == ["$1", 2]
    assert render(calls, [spec]) == text
    with pytest.raises(CallFormatError, match="does not come before it"):
        parse("math.hypot(x=1, to=[$2])", [spec])


def test_schema_forms_read_into_arg_specs() -> None:
    defs = {"$defs": {"pt": {"type": "object", "properties": {"x": {"type": "number"}}}}}
    spec = _spec({
        "p": {"$ref": "#/$defs/pt"},
        "q": {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}},
                        {"properties": {"b": {"type": "integer"}}, "required": ["b"]}]},
        "c": {"const": "fixed"},
        "o": {"type": "integer", "nullable": True, "default": 3},
        "free": {"type": "object", "required": ["adults", "children"]},
        "any": {"description": "anything"},
    }, required=["p"], **defs)
    by = {a.name: a for a in arg_specs(spec)}
    assert by["p"].kind is ArgKind.OBJECT and by["p"].fields[0].name == "x"
    assert [f.name for f in by["q"].fields] == ["a", "b"] and by["q"].fields[1].required
    assert by["c"].kind is ArgKind.ENUM and by["c"].enum == ("fixed",)
    assert by["o"].nullable and by["o"].default == 3 and not by["o"].required
    assert [f.name for f in by["free"].fields] == ["adults", "children"]
    assert describe_field(by["o"]) == "o?: integer|null = 3"
    assert describe_field(by["any"]) == "any?: any"
    assert describe_field(by["free"]) == "free?: {adults: any, children: any}"
    assert apply_defaults({"p": {}}, arg_specs(spec)) == {"p": {}, "o": 3}


@pytest.mark.parametrize(("schema", "message"), [
    ({"type": "string", "pattern": "^a+$"}, "argument 'v': 'pattern'"),
    ({"type": "array", "prefixItems": [{"type": "string"}]}, "'prefixItems'"),
    ({"anyOf": [{"type": "array", "items": {"type": "string"}},
                {"type": "array", "items": {"type": "number"}}]}, "several array"),
    ({"$ref": "#/$defs/node"}, "recursive"),
    ({"$ref": "https://example.com/s.json"}, "not a local reference"),
    ({"type": "object", "properties": {"k": {"not": {"type": "null"}}}}, "argument 'v.k': 'not'"),
])
def test_what_cannot_be_decoded_is_named_per_tool_and_argument(schema, message) -> None:
    node = {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}
    bad = ToolSpec("bad", parameters={"type": "object", "properties": {"v": schema},
                                      "$defs": {"node": node}})
    good = _spec({"x": {"type": "number"}})
    with pytest.raises(UnsupportedSchemaError, match=message):
        arg_specs(bad)
    ok, skipped = split_expressible([bad, good])
    assert ok == [good] and list(skipped) == ["bad"] and "tool 'bad'" in skipped["bad"]


def test_the_baseline_schema_is_what_the_format_decodes() -> None:
    spec = _spec({"d": {"type": "string", "format": "date", "description": "YYYY-MM-DD"},
                  "n": {"type": "number", "exclusiveMinimum": 0},
                  "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}})
    schema = object_schema(arg_specs(spec))
    assert schema["properties"]["d"] == {"type": "string"}  # annotations dropped
    assert schema["properties"]["n"] == {"type": "number", "exclusiveMinimum": 0}
    assert json_schema(arg_specs(spec)[2]) == {"type": "array", "items": {"enum": ["a", "b"]},
                                                "maxItems": 2}
    assert json.dumps(schema)  # plain JSON
