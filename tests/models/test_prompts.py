"""Prompt parts every decoder, eval set and training example share."""

from __future__ import annotations

import json
from pathlib import Path

from control.tools import load_tool_specs
from models.baseline import calls_schema
from models.evalsets.score import load_cases
from models.prompts import render_scene, scene_objects, user_content
from models.tune.data import DataOptions, generate, load_toolsets
from models.tune.verify import heldout_cases

ROOT = Path(__file__).resolve().parents[2]


def test_a_scene_names_objects_and_the_gripper_and_positions_only_if_asked() -> None:
    assert render_scene(["red_cube", "blue_cube"]) == "red_cube, blue_cube. Gripper: empty."
    assert (render_scene(["red_cube"], "red_cube", {"red_cube": (0.4, -0.123, 0.02)})
            == "red_cube at (0.40, -0.12, 0.02). Gripper: holding red_cube.")
    assert user_content("go home", "red_cube. Gripper: empty.") == (
        "Scene: red_cube. Gripper: empty.\nRequest: go home")


def test_robot_eval_cases_are_written_as_the_demo_writes_its_scene() -> None:
    for case in load_cases("robot"):
        scene = case.messages[-1]["content"].split("\n")[0].removeprefix("Scene: ")
        objects, _, gripper = scene.partition(". Gripper: ")
        holding = gripper.removeprefix("holding ").rstrip(".")
        assert scene == render_scene(objects.split(", "), None if holding == "empty" else holding)
        assert set(objects.split(", ")) == set(case.enums["object"])


def test_the_objects_of_a_scene_are_read_back_from_either_form() -> None:
    pos = {"red_cube": (0.4, -0.12, 0.02), "blue_cube": (0.6, 0.2, 0.02)}
    for scene in (render_scene(["red_cube", "blue_cube"], "red_cube"),
                  render_scene(["red_cube", "blue_cube"], positions=pos)):
        assert scene_objects(scene) == ["red_cube", "blue_cube"]


def test_generated_held_out_cases_restrict_objects_to_those_in_their_scene() -> None:
    toolsets = load_toolsets([ROOT / "sim_envs/robot_tools.json", ROOT / "audio/voice_tools.json"])
    _, held = generate(toolsets, DataOptions(n_train=0, n_heldout=40, seed=0))
    robot = [sc.case for sc in heldout_cases(held) if sc.case.enums]
    assert robot and all(case.enums["object"] for case in robot)
    for case in robot:
        scene = case.messages[-1]["content"].removeprefix("Scene: ").split("\n")[0]
        assert case.enums["object"] == [o for o in scene_objects(scene) if o != "bin"]


def test_the_baseline_schema_drops_what_an_empty_enum_leaves_no_value_for() -> None:
    tools = load_tool_specs(json.loads((ROOT / "sim_envs/robot_tools.json").read_text()))
    schema = calls_schema(tools, {"object": [], "target": ["bin"]}, 2)
    names = [v["properties"]["name"]["const"] for v in schema["items"]["oneOf"]]
    assert "grasp" not in names and "place_on" not in names and "go_home" in names
    grasp = [t for t in tools if t.name == "grasp"]
    assert calls_schema(grasp, {"object": []}, 2) == {"type": "array", "maxItems": 0}
