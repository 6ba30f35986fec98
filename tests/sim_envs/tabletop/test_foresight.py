"""The robot's foresight predicts what a motion leaves behind, checked in the real simulator."""

from __future__ import annotations

from control.tools import ToolCall
from sim_envs.tabletop.foresight import RobotForesight
from sim_envs.tabletop.robot import LocalRobot
from sim_envs.tabletop.skills import PutOn


def _foresight(robot: LocalRobot) -> RobotForesight:
    return RobotForesight(lambda: robot.perceive(), lambda text, w: (text, w))


def test_a_placement_is_predicted_and_then_seen(robot: LocalRobot) -> None:
    robot.reset(seed=0)
    fs = _foresight(robot)
    into_bin = fs.predict([ToolCall("place_on", {"object": "red_cube", "target": "bin"})])
    onto_blue = fs.predict([ToolCall("place_on", {"object": "red_cube", "target": "blue_cube"})])
    unchanged = fs.predict([ToolCall("point_at", {"object": "red_cube"})])
    assert into_bin is not None and onto_blue is not None and unchanged is not None
    assert fs.matches(unchanged) and not fs.matches(into_bin)  # nothing has moved yet
    assert robot.run_skill(PutOn("red_cube", "bin", robot.skill_options)).ok
    for _ in range(16):
        robot.tick()
    assert fs.matches(into_bin)  # perception agrees with the prediction
    assert not fs.matches(onto_blue) and not fs.matches(unchanged)
    assert fs.context("go home", into_bin) == ("go home", into_bin)


def test_calls_it_cannot_model_give_no_prediction(robot: LocalRobot) -> None:
    robot.reset(seed=1)
    fs = _foresight(robot)
    assert fs.predict([ToolCall("teleport", {})]) is None
    assert fs.predict([ToolCall("place_on", {"object": "purple_cube", "target": "bin"})]) is None
    held = fs.predict([ToolCall("grasp", {"object": "blue_cube"})])
    assert held is not None and held.gripper.holding == "blue_cube"
