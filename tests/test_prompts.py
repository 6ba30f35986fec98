"""Prompt parts every decoder, eval set and training example share."""

from __future__ import annotations

from models.evalsets.score import load_cases
from models.prompts import render_scene, user_content


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
