"""Array, object, map and nullable arguments on the real bundled model: the decoder forces
their structure and keeps their values inside the schema (bounds on elements included);
the JSON baseline takes the same specs. (Accuracy is the benchmark's job.)"""

from __future__ import annotations

import jsonschema
import pytest

from control.tools import ToolSpec
from models.callformat import parse
from models.decoder import DecodeContext
from models.factory import make_decoder
from models.resolve import resolve_model

pytestmark = pytest.mark.slow


def _tool(name: str, description: str, props: dict, required: list[str] | None = None) -> ToolSpec:
    return ToolSpec(name, description, {"type": "object", "properties": props,
                                        "required": list(props) if required is None else required})


SHOPPING = _tool("add_to_shopping_list", "Add items to the shopping list.",
                 {"items": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                            "maxItems": 2}})
POLYGON = _tool("draw_polygon", "Draw a polygon through points.", {"points": {
    "type": "array", "minItems": 3, "items": {"type": "object", "required": ["x", "y"],
                                              "properties": {"x": {"type": "number"},
                                                             "y": {"type": "number"}}}}})
LIGHTS = _tool("set_lights", "Turn the lights on in rooms.", {
    "rooms": {"type": "array", "uniqueItems": True,
              "items": {"enum": ["kitchen", "bedroom", "office"]}},
    "level": {"type": ["integer", "null"], "minimum": 0, "maximum": 100}})
BOOKING = _tool("book_table", "Book a restaurant table.", {"booking": {
    "type": "object", "required": ["name", "people"],
    "properties": {"name": {"type": "string", "maxLength": 20},
                   "people": {"type": "integer", "minimum": 1, "maximum": 20},
                   "notes": {"type": "string"}}}})
GRADES = _tool("calculate_average", "Average of grades per subject.",
               {"grades": {"type": "object", "additionalProperties": {"type": "integer"}}})
TOOLS = [SHOPPING, POLYGON, LIGHTS, BOOKING, GRADES]
REQUESTS = [
    "add oat milk, bananas, rice and bread to the shopping list",
    "draw a triangle through (0.1, 0.2), (0.5, 0.9) and (0.8, 0.1)",
    "turn on the kitchen and office lights at 40 percent",
    "book a table for 4 people under the name Rossi",
    "average my grades: math 90, science 75, art 82",
]


@pytest.fixture(scope="module")
def decoders():
    made = {"simpletool": make_decoder("simpletool", resolve_model(), schedule="sequential",
                                       n_threads=2, max_calls=1),
            "baseline": make_decoder("baseline", resolve_model(lora=None), n_threads=2,
                                     max_calls=1, max_tokens=160)}
    yield made
    for d in made.values():
        d.close()


def _valid(calls, tools: list[ToolSpec]) -> None:
    by_name = {t.name: t for t in tools}
    for c in calls:
        jsonschema.validate(dict(c.arguments), dict(by_name[c.name].parameters))


def test_compound_arguments_decode_inside_their_schema(decoders) -> None:
    dec = decoders["simpletool"]
    seen = set()
    for request in REQUESTS:
        res = dec.decode(DecodeContext.from_request(request), TOOLS)
        _valid(res.calls, TOOLS)  # bounds on elements, uniqueness, nullability, types
        assert parse(res.text, TOOLS) == res.calls
        seen.update(c.name for c in res.calls)
        # structure is forced: the model decides far fewer tokens than the JSON has
        assert res.sampled_tokens < res.json_tokens
    assert {"add_to_shopping_list", "draw_polygon", "book_table"} <= seen


def test_a_tool_the_format_cannot_decode_is_left_out_and_the_rest_decode(decoders) -> None:
    odd = _tool("match", "Match a pattern.", {"p": {"type": "string", "pattern": "^a+$"}})
    for name, dec in decoders.items():
        res = dec.decode(DecodeContext.from_request(REQUESTS[0]), [odd, SHOPPING])
        assert [c.name for c in res.calls] in ([], ["add_to_shopping_list"]), name
        _valid(res.calls, [SHOPPING])


def test_the_baseline_takes_the_same_compound_specs(decoders) -> None:
    dec = decoders["baseline"]
    for request in REQUESTS[:2]:
        try:
            res = dec.decode(DecodeContext.from_request(request), TOOLS)
        except Exception as exc:  # a runaway JSON answer is the baseline's own failure
            assert "did not finish" in str(exc)
            continue
        _valid(res.calls, TOOLS)
