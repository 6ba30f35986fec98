"""The fine-tuning data generator: held-out separation by family and by value, values
that match the calls, negative numbers, eval sets (requests and values) kept out,
compounds, quantifiers and requests taken back, any user tool set (arrays and objects
too); and the answer pieces the trainer tokenizes (the decoder's own segmentation).
No model needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from models.callformat import parse, render
from models.tune.data import (
    DataOptions,
    TuneDataError,
    eval_requests,
    eval_values,
    generate,
    load_toolsets,
    normalize,
)
from models.tune.encode import answer_pieces
from models.tune.families import heldout_ids
from models.tune.openvalues import OpenPools, heldout_value
from models.tune.values import number_words, say_value, schema_value

ROOT = Path(__file__).resolve().parents[2]
TOOL_FILES = [ROOT / "sim_envs/robot_tools.json", ROOT / "audio/voice_tools.json"]


@pytest.fixture(scope="module")
def data():
    toolsets = load_toolsets(TOOL_FILES)
    return toolsets, *generate(toolsets, DataOptions(n_train=1500, n_heldout=200, seed=3))


def _families(example) -> list[str]:
    """The phrasing families an example was built from (``cross/``: another tool set's)."""
    return [f.removeprefix("cross/") for f in example.template.split("+") if f]


_OPEN = ("city", "item", "contact", "query", "text", "label")


def test_same_seed_same_data(data) -> None:
    toolsets, train, held = data
    again_train, again_held = generate(toolsets, DataOptions(n_train=1500, n_heldout=200, seed=3))
    assert [e.to_json() for e in train] == [e.to_json() for e in again_train]
    assert [e.to_json() for e in held] == [e.to_json() for e in again_held]
    other, _ = generate(toolsets, DataOptions(n_train=200, n_heldout=10, seed=4))
    assert [e.request for e in other] != [e.request for e in train[:200]]


def test_heldout_families_and_values_never_in_training(data) -> None:
    _, train, held = data
    train_requests = {normalize(e.request) for e in train}
    assert not train_requests & {normalize(e.request) for e in held}
    # whole phrasing patterns: no family of a held-out example is in any training example
    train_families = {f for e in train for f in _families(e)}
    held_families = {f for e in held for f in _families(e)}
    assert held_families and not held_families & train_families
    assert len({f.split(":")[0].split("/")[0] for f in held_families}) >= 6  # every kind tested
    # open values: the held-out part of each pool never appears in a training call
    train_values = {v for e in train for c in e.calls for k, v in c.arguments.items() if k in _OPEN}
    held_values = {v for e in held for c in e.calls for k, v in c.arguments.items() if k in _OPEN}
    assert train_values and not any(heldout_value(v) for v in train_values)
    assert held_values and all(heldout_value(v) for v in held_values)


def test_the_split_is_by_family_and_stable() -> None:
    ids = [f"one/t:{i}" for i in range(10)]
    held = heldout_ids(ids)
    assert len(held) == 2 and held == heldout_ids(list(reversed(ids)))
    assert held <= heldout_ids([*ids, "one/t:new"]) | {"one/t:new"}  # adding one moves little
    assert len(heldout_ids(ids[:3])) == 1 and not heldout_ids(ids[:1])


def test_open_values_are_broad_and_never_the_eval_sets(data) -> None:
    _, train, held = data
    cities = {c.arguments["city"] for e in train for c in e.calls if "city" in c.arguments}
    assert len(cities) > 100  # drawn from thousands, not a few dozen
    evals = {v.casefold() for v in eval_values()}
    assert {"paris", "tokyo", "oslo", "eggs", "anna"} <= evals
    used = {v.casefold() for e in train + held for c in e.calls for k, v in c.arguments.items()
            if k in _OPEN and isinstance(v, str)}
    assert not used & evals
    pools = OpenPools(exclude={"Reykjavik"})
    assert "Reykjavik" not in pools.parts["city"][0] + pools.parts["city"][1]


def test_eval_sets_never_in_training(data) -> None:
    _, train, held = data
    evals = eval_requests()
    assert len(evals) > 150
    assert not evals & {normalize(e.request) for e in train + held}


def _spoken(value: float) -> list[str]:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    cm = round(value * 100)
    out = [text, number_words(value), f"{cm} c", number_words(cm) + " c"]
    if value < 0:
        out += [f"{w} {t[1:]}" for w in ("minus", "negative") for t in (text, f"{cm} c")]
    return out


def test_values_in_the_request_match_the_calls(data) -> None:
    toolsets, train, held = data
    by_set = {ts.name: ts for ts in toolsets}
    checked = held_as_it = 0
    for e in train + held:
        request = e.request.lower()
        assert parse(e.answer(), by_set[e.toolset.name].tools) == [
            type(c)(c.name, c.arguments, id=str(i + 1)) for i, c in enumerate(e.calls)]
        if "every:" in e.template:  # one call per cube seen: not named one by one
            continue
        for c in e.calls:
            for name, value in c.arguments.items():
                if isinstance(value, str) and name in ("city", "item", "contact", "query", "text"):
                    assert value.lower() in request, (e.request, c)
                    checked += 1
                elif name in ("x", "y", "z"):
                    assert any(s.lower() in request for s in _spoken(value)), (e.request, c)
                    checked += 1
                elif name == "object" and value.split("_")[0] not in request:
                    # only what the gripper holds may go unnamed: "put it on the blue cube"
                    assert f"holding {value}" in (e.scene or "") and " it " in f" {request} "
                    held_as_it += 1
                elif name in ("object", "target") and value != "bin":
                    assert value.split("_")[0] in request, (e.request, c)
    assert checked > 500 and held_as_it >= 3


def test_negative_numbers_keep_their_sign(data) -> None:
    import random

    from models.callformat import arg_specs

    toolsets, train, held = data
    negatives = [v for e in train + held for c in e.calls
                 for k, v in c.arguments.items() if k in ("x", "y", "z") and v < 0]
    assert len(negatives) > 50
    (y,) = [a for a in arg_specs(next(t for t in toolsets[0].tools if t.name == "move_to"))
            if a.name == "y"]
    rng = random.Random(0)
    signs = set()
    for _ in range(500):
        words, value = say_value("y", y, rng, False)
        if value < 0:  # said with "-", "minus" or "negative", never dropped
            sign = re.match(r"(-|minus |negative )", words)
            assert sign, (words, value)
            signs.add(sign.group(1))
        else:
            assert not re.match(r"(-|minus |negative )", words), (words, value)
    assert signs == {"-", "minus ", "negative "}


def test_kinds_of_requests(data) -> None:
    _, train, _ = data
    assert sum(not e.calls for e in train) > 0.04 * len(train)          # no-tool cases
    assert sum(len(e.calls) > 1 for e in train) > 0.25 * len(train)     # multi-call requests
    kinds = {f.split(":")[0] for e in train for f in _families(e)[:1]}
    assert {"join", "after", "list", "related", "every", "cancel", "correct", "none"} <= kinds
    taken_back = [e for e in train if e.template.startswith("cancel:")]
    assert taken_back and all(e.calls == () for e in taken_back)
    assert any(e.scene and "Scene:" in e.messages()[0]["content"] for e in train)
    assert any(re.search(r"\b(one|two|three|four|five|six|seven|eight|nine)\b", e.request)
               for e in train if e.calls)                              # numbers in words


def test_every_cube_is_one_call_per_cube_the_scene_lists(data) -> None:
    from models.prompts import scene_objects

    _, train, _ = data
    every = [e for e in train if e.template.startswith("every:") and e.scene]
    assert len(every) > 10
    for e in every:
        cubes = [o for o in scene_objects(e.scene) if o != "bin"]
        objects = [c.arguments["object"] for c in e.calls]
        if "except" in e.template or "but" in e.template or "apart" in e.template:
            assert len(objects) == len(cubes) - 1 and objects == [o for o in cubes if o in objects]
        else:
            assert objects == cubes, (e.request, e.scene, objects)


def test_generated_calls_satisfy_their_schemas(data) -> None:
    import jsonschema

    toolsets, train, held = data
    specs = {(ts.name, s.name): s for ts in toolsets for s in ts.tools}
    for e in train + held:
        for c in e.calls:
            jsonschema.validate(dict(c.arguments), dict(specs[e.toolset.name, c.name].parameters))


def test_array_and_object_arguments_get_values_their_schema_accepts() -> None:
    import random

    import jsonschema

    schema = {"type": "object", "required": ["items", "when"], "properties": {
        "items": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 4},
        "sizes": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 9}},
        "when": {"type": "object", "required": ["day"], "properties": {
            "day": {"type": "string", "enum": ["mon", "tue"]}, "hour": {"type": "integer",
                                                                       "minimum": 0, "maximum": 23}}},
        "note": {"type": ["string", "null"]}}}
    rng, pools = random.Random(0), OpenPools()
    for _ in range(200):
        words, value = schema_value("order", schema, rng, False, pools)
        jsonschema.validate(value, schema)
        assert words and all(str(v) in words for v in value["items"])


def test_answer_pieces_are_the_decoder_segmentation(data) -> None:
    toolsets, train, _ = data
    for e in train[:300]:
        pieces = answer_pieces(e.calls, e.toolset.tools)
        assert "".join(pieces) == render(e.calls, e.toolset.tools)
    voice = {t.name: t for t in toolsets[1].tools}
    from control.tools import ToolCall

    calls = (ToolCall("send_message", {"contact": "Anna", "text": "hi"}), ToolCall("list_timers", {}))
    assert answer_pieces(calls, list(voice.values())) == [
        "send_message(", "contact", '="Anna', '", text', '="hi', '")\n', "list_timers()"]
    assert answer_pieces((), list(voice.values())) == ["none()"]


def test_a_user_tool_set(tmp_path: Path) -> None:
    spec = [{"type": "function", "function": {
        "name": "set_fan", "description": "Set the fan speed.",
        "parameters": {"type": "object", "properties": {
            "speed": {"type": "integer", "minimum": 0, "maximum": 5},
            "mode": {"type": "string", "enum": ["auto", "manual"]}},
            "required": ["speed", "mode"]}}}]
    path = tmp_path / "fan.json"
    path.write_text(json.dumps(spec))
    (ts,) = load_toolsets([path])
    train, held = generate([ts], DataOptions(n_train=80, n_heldout=10, seed=1))
    calls = [c for e in train for c in e.calls]
    assert calls and all(c.name == "set_fan" and 0 <= c.arguments["speed"] <= 5 for c in calls)
    with pytest.raises(TuneDataError, match="not found"):
        load_toolsets([tmp_path / "missing.json"])
