"""The task suite: well-formed, checks that start false, and solvable in the real simulator."""

from __future__ import annotations

import pytest

from control.tools import ToolRegistry
from sim_envs.tabletop.robot import LocalRobot
from sim_envs.tabletop.robot_tools import robot_tool_specs
from sim_envs.tabletop.scripted import run_scripted
from sim_envs.tabletop.tasks import get_task, task_suite


def test_suite_has_at_least_20_tasks_over_several_seeds() -> None:
    tasks = task_suite()
    assert len(tasks) >= 20
    assert len({t.seed for t in tasks}) >= 5
    assert len({t.id for t in tasks}) == len(tasks)
    kinds = {t.id.split("-")[0] for t in tasks}
    assert {"bin", "stack", "point", "move", "home", "pick", "two", "where"} <= kinds


def test_expected_calls_are_valid_tool_calls() -> None:
    reg = ToolRegistry()
    for spec in robot_tool_specs():
        reg.register(spec, lambda **_: None, lambda **_: None)
    for task in task_suite():
        assert task.instruction and task.expected
        for call in task.expected:
            reg.validate(call)


def test_success_checks_are_false_before_the_robot_acts(robot: LocalRobot) -> None:
    for task in task_suite():
        if task.id.startswith("where"):
            continue  # read-only: "nothing disturbed" holds from the start
        robot.reset(task.seed, task.start_arm_q)
        assert not task.success(robot.scene), task.id


@pytest.mark.parametrize("task_id", ["point-yellow_cube-s0", "home-s1",
                                     "where-is-green-s0"])
def test_short_tasks_succeed_when_scripted(robot: LocalRobot, task_id: str) -> None:
    result = run_scripted(robot, get_task(task_id))
    assert result.success, result.to_json()


@pytest.mark.slow
@pytest.mark.parametrize("task_id", ["bin-then-home-green_cube-s2",
                                     "two-in-bin-green_cube-yellow_cube-s1",
                                     "stack-red_cube-on-green_cube-s3"])
def test_manipulation_tasks_succeed_when_scripted(robot: LocalRobot, task_id: str) -> None:
    result = run_scripted(robot, get_task(task_id))
    assert result.success, result.to_json()
