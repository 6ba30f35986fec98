"""What a user sees for a bad file: the file, the item, what was expected; from the CLI,
a one-line error and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from control.tools import ToolError, load_tool_specs
from demos.cli import main
from models.evalsets.score import EvalSetError, load_cases
from models.tune.recipe import TuneRecipe, load_recipe
from models.tune.train import TuneError
from speculation.traces import TraceError, load_jsonl, save_jsonl
from speculation.workloads import voice_episodes


def spec(name: str, effect: str, resources: Any, **props: Any) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "parameters": {"type": "object", "properties": props},
        "x-effect": effect, "x-speculation": "allow" if effect == "read" else "deny",
        "x-resources": resources}}


def test_a_list_of_resources_is_what_a_read_reads_and_a_write_reads_and_writes() -> None:
    read, write = load_tool_specs([
        spec("get_light", "read", ["light:{room}"], room={"type": "string"}),
        spec("set_light", "write", ["light:{room}"], room={"type": "string"})])
    assert (read.reads, read.writes) == (("light:{room}",), ())
    assert (write.reads, write.writes) == (("light:{room}",), ("light:{room}",))
    assert write.resources({"room": "hall"}) == (frozenset({"light:hall"}),) * 2


@pytest.mark.parametrize(("resources", "says"), [
    (["ok", {"bad": 1}], "x-resources: expected a list of resource names"),
    ({"reads": "clock"}, "x-resources: expected a list of resource names"),
    (["light:{room.name}"], "is not a plain {argument}"),
    (["light:{nope}"], "unknown argument(s) ['nope']"),
])
def test_bad_resources_are_refused_naming_the_tool(resources: Any, says: str) -> None:
    with pytest.raises(ToolError, match="item 0: tool 'get_light'") as info:
        load_tool_specs([spec("get_light", "read", resources, room={"type": "string"})],
                        "lights.json")
    assert says in str(info.value) and str(info.value).startswith("lights.json: ")


def test_spec_replay_on_a_bad_spec_prints_one_clear_line(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([spec("get_time", "read", [{"reads": ["clock"]}])]))
    episodes = tmp_path / "episodes.jsonl"
    save_jsonl(voice_episodes(2, 0), episodes)
    code = main(["spec", "replay", "--tools", str(tools), "--train", str(episodes),
                 "--test", str(episodes), "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert f"rtagent spec: error: {tools}: item 0: tool 'get_time': x-resources: expected" in err
    tools.write_text("[{\"name\": ")
    assert main(["spec", "replay", "--tools", str(tools), "--train", str(episodes),
                 "--test", str(episodes), "--out", str(tmp_path / "r.json")]) == 1
    assert f"{tools}:1:11: tool specs is not JSON" in capsys.readouterr().err


def test_bad_episode_lines_name_the_line_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"steps": []}\n{"steps": [{"name": "x", "tool_ms": -3}]}\n')
    with pytest.raises(TraceError, match=r"t.jsonl:2: Expected `float` >= 0.0 - at "
                                         r"`\$.steps\[0\].tool_ms`"):
        load_jsonl(path)
    path.write_text('{"steps": [{"name": "x", "tool_ms": NaN}]}\n')
    with pytest.raises(TraceError, match="t.jsonl:1: not a JSON episode"):
        load_jsonl(path)


def test_bad_eval_cases_and_recipes_name_the_file_and_the_field(tmp_path: Path) -> None:
    cases = tmp_path / "c.jsonl"
    cases.write_text('{"id": "a", "messages": [{"role": "user", "content": 5}]}\n')
    with pytest.raises(EvalSetError, match=r"c.jsonl:1: Expected `str`, got `int` - at "
                                           r"`\$.messages\[0\].content`"):
        load_cases(cases)
    cases.write_text(json.dumps({"messages": [], "tools": [{"name": "x", "x-effect": 3}]}))
    with pytest.raises(EvalSetError, match="c.jsonl:1: tools: item 0: tool 'x': x-effect"):
        load_cases(cases)
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({**TuneRecipe().to_json(), "train": {"rank": 0}}))
    with pytest.raises(TuneError, match=r"r.json: rank: expected >= 1, got 0 - at `\$.train`"):
        load_recipe(recipe)
    recipe.write_text(json.dumps({"recipe": {"data": {"n_trian": 5}}}))
    with pytest.raises(TuneError, match=r"r.json: recipe: data: unknown field\(s\) \['n_trian'\]"):
        load_recipe(recipe)
