"""The fine-tuning data generator: held-out separation, values that match the calls,
negative numbers, eval sets kept out, any user tool set; and the answer pieces
the trainer tokenizes (the decoder's own segmentation). No model needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from models.callformat import parse, render
from models.tune.data import DataOptions, TuneDataError, eval_requests, generate, load_toolsets, normalize
from models.tune.encode import answer_pieces
from models.tune.phrases import HELDOUT_EVERY
from models.tune.values import POOLS, number_words, say_value

ROOT = Path(__file__).resolve().parents[1]
TOOL_FILES = [ROOT / "sim_envs/robot_tools.json", ROOT / "audio/voice_tools.json"]


@pytest.fixture(scope="module")
def data():
    toolsets = load_toolsets(TOOL_FILES)
    return toolsets, *generate(toolsets, DataOptions(n_train=1500, n_heldout=200, seed=3))


def _template_index(template: str) -> list[int]:
    return [int(m) for m in re.findall(r"#(\d+)", template)]


def test_same_seed_same_data(data) -> None:
    toolsets, train, held = data
    again_train, again_held = generate(toolsets, DataOptions(n_train=1500, n_heldout=200, seed=3))
    assert [e.to_json() for e in train] == [e.to_json() for e in again_train]
    assert [e.to_json() for e in held] == [e.to_json() for e in again_held]
    other, _ = generate(toolsets, DataOptions(n_train=200, n_heldout=10, seed=4))
    assert [e.request for e in other] != [e.request for e in train[:200]]


def test_heldout_phrasings_and_values_never_in_training(data) -> None:
    _, train, held = data
    train_requests = {normalize(e.request) for e in train}
    assert not train_requests & {normalize(e.request) for e in held}
    # templates: held-out ones only in the held-out split, never in training
    for e in train:
        assert all(i % HELDOUT_EVERY != HELDOUT_EVERY - 1 for i in _template_index(e.template)), e
    assert sum(any(i % HELDOUT_EVERY == HELDOUT_EVERY - 1 for i in _template_index(e.template))
               for e in held) > len(held) // 2
    # value pools: held-out cities, items, contacts... never appear in a training call
    held_pool = {v for _, heldout in POOLS.values() for v in heldout}
    train_values = {v for e in train for c in e.calls for v in c.arguments.values()}
    assert not held_pool & train_values
    held_values = {v for e in held for c in e.calls for v in c.arguments.values()}
    assert held_pool & held_values


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
    assert checked > 500 and held_as_it > 20


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
    assert sum(len(e.calls) > 1 for e in train) > 0.08 * len(train)     # multi-call requests
    assert any(e.scene and "Scene:" in e.messages()[0]["content"] for e in train)
    assert any(re.search(r"\b(one|two|three|four|five|six|seven|eight|nine)\b", e.request)
               for e in train if e.calls)                              # numbers in words


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
