"""The robot tool backends: read-only answers, dry runs that never move, writes via skills."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from control.tools import Effect, SpeculationPolicy, ToolCall
from sim_envs.tabletop.robot import LocalRobot, require_world
from sim_envs.tabletop.robot_tools import RobotToolBackend, robot_tool_specs, skill_for, visible_enums
from sim_envs.tabletop.scene import CUBE_IDS


def _backend(robot: LocalRobot) -> RobotToolBackend:
    return RobotToolBackend(lambda: require_world(robot), robot.runner, robot.actuator.kin,
                            robot.skill_options, wait_timeout_s=60.0)


def test_every_spec_has_a_backend_and_every_write_a_dry_run(robot: LocalRobot) -> None:
    reg = _backend(robot).registry()
    specs = robot_tool_specs()
    assert len(reg) == len(specs) == 10
    for spec in specs:
        tool = reg.get(spec.name)
        if spec.effect is Effect.WRITE:
            assert spec.speculation is SpeculationPolicy.DRY_RUN and tool.dry_run is not None


def test_read_only_tools_answer_from_perception(robot: LocalRobot) -> None:
    robot.reset(seed=1)
    b = _backend(robot)
    seen = b.detect_objects()
    assert {o["name"] for o in seen["objects"]} == {*CUBE_IDS, "bin"}
    loc = b.locate_object("blue_cube")
    assert np.linalg.norm(np.array(loc["position"]) - robot.scene.object_position("blue_cube")) \
        < 0.008
    grasp_plan = b.plan_grasp("blue_cube")
    assert grasp_plan["feasible"] and [w["name"] for w in grasp_plan["waypoints"]] == \
        ["above", "descend", "close", "lift"]
    far = b.plan_path(0.79, 0.49, 0.69)
    assert not far["feasible"] and "out of reach" in far["reason"]


def test_dry_runs_plan_but_never_move(robot: LocalRobot) -> None:
    robot.reset(seed=2)
    b = _backend(robot)
    reg = b.registry()
    before_q = robot.scene.joint_state().positions.copy()
    before = {c: robot.scene.object_position(c) for c in CUBE_IDS}
    calls = [ToolCall("move_to", {"x": 0.5, "y": 0.1, "z": 0.3}),
             ToolCall("grasp", {"object": "red_cube"}), ToolCall("point_at", {"object": "red_cube"}),
             ToolCall("release", {}), ToolCall("go_home", {}),
             ToolCall("place_on", {"object": "red_cube", "target": "bin"})]
    for call in calls:
        res = asyncio.run(reg.invoke(call, dry_run=True))
        assert res.ok, res.error
        assert res.value["dry_run"] and res.value["feasible"]
    # The gripper is empty: the place_on dry run plans the grasp too.
    res = asyncio.run(reg.invoke(ToolCall("place_on", {"object": "red_cube", "target": "bin"}),
                                 dry_run=True))
    assert [w["name"] for w in res.value["waypoints"]][:4] == ["above", "descend", "close", "lift"]
    # An impossible placement: the dry run says so rather than pretending.
    res = asyncio.run(reg.invoke(ToolCall("place_on", {"object": "red_cube", "target": "red_cube"}),
                                 dry_run=True))
    assert not res.ok and "on itself" in (res.error or "")
    for _ in range(4):
        robot.tick()
    assert not robot.runner.busy
    np.testing.assert_allclose(robot.scene.joint_state().positions, before_q, atol=1e-3)
    for c in CUBE_IDS:
        np.testing.assert_allclose(robot.scene.object_position(c), before[c], atol=1e-3)


def test_write_tools_run_skills_while_the_loop_keeps_ticking(robot: LocalRobot) -> None:
    robot.reset(seed=3)
    reg = _backend(robot).registry()
    results = []

    def agent() -> None:
        for call in (ToolCall("grasp", {"object": "yellow_cube"}),
                     ToolCall("place_on", {"object": "yellow_cube", "target": "bin"})):
            results.append(asyncio.run(reg.invoke(call)))

    worker = threading.Thread(target=agent)
    worker.start()
    ticks = 0
    while worker.is_alive() and ticks < 16 * 40:
        robot.tick()  # the "loop": one command per tick while the tools wait
        ticks += 1
    worker.join(5)
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    assert results[0].value["skill"] == "grasp" and results[1].value["placed"] == "yellow_cube"
    for _ in range(8):
        robot.tick()
    assert robot.scene.in_bin("yellow_cube")


def test_object_arguments_are_restricted_to_what_is_seen(robot: LocalRobot) -> None:
    robot.reset(seed=0)
    world = robot.perceive()
    enums = visible_enums(world)
    assert set(enums["object"]) == set(CUBE_IDS)
    assert "bin" in enums["target"] and "bin" not in enums["object"]
    specs = {s.name: s for s in robot_tool_specs()}  # every argument the enums narrow exists
    assert {"object", "target"} <= set(specs["place_on"].properties)
    reg = _backend(robot).registry(list(specs.values()))
    bad = asyncio.run(reg.invoke(ToolCall("grasp", {"object": "purple_cube"})))
    assert not bad.ok and "purple_cube" in (bad.error or "")


def test_world_version_is_stable_while_nothing_moves_and_reads_repeat_exactly(
        robot: LocalRobot) -> None:
    robot.reset(seed=5)
    for _ in range(3):
        robot.tick()
    b = _backend(robot)
    v0 = require_world(robot).version
    first = (b.detect_objects(), b.plan_grasp("red_cube"), b.dry_point_at("red_cube"))
    for _ in range(6):  # idle ticks: new frames, same world
        robot.tick()
    assert require_world(robot).version == v0
    assert (b.detect_objects(), b.plan_grasp("red_cube"), b.dry_point_at("red_cube")) == first
    robot.runner.submit(skill_for(ToolCall("move_to", {"x": 0.5, "y": 0.0, "z": 0.3}),
                                  robot.skill_options))
    for _ in range(8):
        robot.tick()
    assert require_world(robot).version > v0
    assert b.plan_grasp("red_cube") != first[1]  # the arm moved: a new plan
    robot.runner.cancel("test over")
