"""The robot's planning tools: each motion's checked plan (IK along the path, collisions),
computed in worker processes, the same whether run ahead or when the motion asks; and the
motion follows it (sim_envs/tabletop/plan_tools.py, plan_workers.py, path_check.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from control.tools import Effect, SpeculationPolicy, ToolCall, ToolResult, mark_running_ahead
from sim_envs.tabletop.plan_tools import (
    MotionPlanner,
    PlannedMotions,
    plan_tool_specs,
    register_plan_tools,
)
from sim_envs.tabletop.plan_workers import PathWorkers, SupersededError, world_to_json
from sim_envs.tabletop.robot import LocalRobot, require_world
from sim_envs.tabletop.robot_tools import RobotToolBackend, SkillFailedError, robot_tool_specs


@pytest.fixture(scope="module")
def planner(robot: LocalRobot) -> Iterator[MotionPlanner]:
    p = MotionPlanner(lambda: require_world(robot), robot.skill_options)
    yield p
    p.close()


def _settled(robot: LocalRobot, seed: int) -> None:
    robot.reset(seed=seed)
    for _ in range(3):
        robot.tick()


def test_every_motion_has_a_read_only_plan_tool_the_decoder_never_sees() -> None:
    specs = {s.name: s for s in plan_tool_specs()}
    assert set(specs) == {f"plan_for_{n}" for n in
                          ("move_to", "grasp", "place_on", "point_at", "go_home")}
    for s in specs.values():
        assert s.effect is Effect.READ and s.speculation is SpeculationPolicy.ALLOW
        assert s.reads == ("world",) and not s.writes
    assert len(robot_tool_specs()) == 10 and not set(specs) & {s.name for s in robot_tool_specs()}


def _ahead(planner: MotionPlanner, tool: str, **args: object) -> dict[str, object]:
    out: dict[str, object] = {}

    def run() -> None:  # as the speculative executor runs it: in a context marked ahead
        mark_running_ahead()
        out.update(planner.plan_for(tool, args))
    t = threading.Thread(target=run)
    t.start()
    t.join(120)
    return out


def test_a_plan_run_ahead_is_the_plan_the_motion_would_compute(robot: LocalRobot,
                                                               planner: MotionPlanner) -> None:
    _settled(robot, 1)
    now = planner.plan_for("place_on", {"object": "green_cube", "target": "bin"})
    ahead = _ahead(planner, "place_on", object="green_cube", target="bin")
    assert now == ahead  # the idle worker and the normal one agree exactly
    assert now["feasible"] and now["version"] == require_world(robot).version
    names = [w["name"] for w in now["waypoints"]]  # type: ignore[union-attr]
    assert names == ["above", "descend", "close", "lift", "carry", "descend", "open", "retreat"]
    check = now["check"]
    assert check["steps"] > 60 and check["min_clearance_m"] > 0  # type: ignore[index]


def test_unreachable_or_colliding_paths_are_refused_with_the_reason(
        robot: LocalRobot, planner: MotionPlanner) -> None:
    _settled(robot, 2)
    far = planner.plan_for("move_to", {"x": 0.79, "y": 0.49, "z": 0.69})
    assert not far["feasible"] and "out of reach" in far["reason"]
    cube = require_world(robot).objects["red_cube"].position_m
    # Open fingers straddle a cube, but one set down 4 cm beside its centre lands on it.
    over = planner.plan_for("move_to", {"x": round(cube[0], 3), "y": round(cube[1], 3),
                                        "z": 0.03})
    beside = planner.plan_for("move_to", {"x": round(cube[0], 3), "y": round(cube[1] + 0.04, 3),
                                          "z": 0.03})
    assert over["feasible"], over["reason"]
    assert not beside["feasible"] and "would hit red_cube" in beside["reason"], beside
    held = planner.plan_for("place_on", {"object": "red_cube", "target": "red_cube"})
    assert not held["feasible"] and "on itself" in held["reason"]


def test_a_motion_follows_its_plan_and_an_impossible_one_never_starts(
        robot: LocalRobot, planner: MotionPlanner) -> None:
    _settled(robot, 3)
    backend = RobotToolBackend(lambda: require_world(robot), robot.runner, robot.actuator.kin,
                               robot.skill_options, wait_timeout_s=60.0)
    reg = backend.registry()
    register_plan_tools(reg, planner)
    fetched: list[ToolCall] = []

    def fetch(call: ToolCall) -> ToolResult:
        fetched.append(call)
        value = planner.plan_for(call.name.removeprefix("plan_for_"), call.arguments)
        return ToolResult(call, True, value=value)
    backend.planner = PlannedMotions(fetch, backend.snapshot)
    before = robot.scene.joint_state().positions.copy()
    with pytest.raises(SkillFailedError, match="place_on failed: cannot put"):
        backend.place_on("blue_cube", "blue_cube")
    assert not robot.runner.busy  # nothing was submitted: the arm never moved
    np.testing.assert_allclose(robot.scene.joint_state().positions, before, atol=1e-3)
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(backend.point_at("blue_cube")))
    worker.start()
    ticks = 0
    while worker.is_alive() and ticks < 16 * 30:
        robot.tick()
        ticks += 1
    worker.join(5)
    assert [c.name for c in fetched] == ["plan_for_place_on", "plan_for_point_at"]
    assert done and done[0]["skill"] == "point_at"  # type: ignore[index]
    assert robot.scene.grasp_point()[2] > robot.scene.object_position("blue_cube")[2] + 0.08


def test_a_check_waiting_ahead_is_hurried_onto_the_normal_worker_or_superseded(
        robot: LocalRobot, planner: MotionPlanner) -> None:
    _settled(robot, 4)
    world = world_to_json(require_world(robot))
    plan = planner.plan_for("place_on", {"object": "red_cube", "target": "bin"})
    job = {"world": world, "waypoints": plan["waypoints"] * 3, "grasps": "red_cube",
           "handled": ["bin", "red_cube"]}
    workers = PathWorkers()
    try:
        answers: dict[str, object] = {}

        def ahead(key: str) -> None:
            try:
                answers[key] = workers.check(key, job, ahead=True)
            except SupersededError as exc:
                answers[key] = exc
        first = threading.Thread(target=ahead, args=("a",))
        first.start()  # keeps the idle worker busy a while
        while not workers._ahead or workers._mailbox is not None:
            threading.Event().wait(0.01)
        second = threading.Thread(target=ahead, args=("b",))
        second.start()
        while "b" not in workers._ahead:
            threading.Event().wait(0.01)
        third = threading.Thread(target=ahead, args=("c",))
        third.start()  # "b" had not started: "c" takes its place
        second.join(60)
        assert isinstance(answers["b"], SupersededError)
        while "c" not in workers._ahead:
            threading.Event().wait(0.01)
        workers.hurry("c")  # a motion needs it now: the normal worker runs it as well
        third.join(120)
        first.join(120)
        assert workers.hurried == 1 and workers.superseded == 1
        assert answers["c"] == answers["a"] == workers.check("d", job, ahead=False)
    finally:
        workers.close()
