"""Outcome predicates: parse errors say where and what was expected; each function is
evaluated on the real simulator's ground truth."""

from __future__ import annotations

import pybullet as pb
import pytest

from realtime.errors import ConfigError
from sim_envs.tabletop.predicates import PredicateError, parse
from sim_envs.tabletop.robot import LocalRobot
from sim_envs.tabletop.scene import CUBE_SIZE_M, TabletopScene
from sim_envs.tabletop.skills import Grasp
from sim_envs.tabletop.tasks import AWAY_POSES
from sim_envs.tabletop.truth import WorldTruth


@pytest.mark.parametrize(("text", "column", "message"), [
    ("on(blue_cube, red_cub)", 15, "unknown 'red_cub' (did you mean 'red_cube'?); expected a cube"),
    ("ontop(blue_cube, red_cube)", 1, "unknown function 'ontop'"),
    ("on(blue_cube red_cube)", 14, "expected ',' in on(), got 'red_cube'"),
    ("on(blue_cube, red_cube", 23, "expected ')' after on()'s arguments, got the end"),
    ("(held(red_cube)", 16, "expected ')' to close the '('"),
    ("held(red_cube) and", 19, "expected a condition such as on(a, b)"),
    ("held(red_cube) held(blue_cube)", 16, "expected 'and', 'or' or the end, got 'held'"),
    ("on(red_cube)", 12, "on() takes 2 arguments, got 1"),
    ("held(red_cube, bin)", 14, "held() takes 1 argument, got more"),
    ("height(red_cube)", 17, "height() is a number (metres): expected a comparison"),
    ("held(red_cube) > 1", 16, "held() is true or false; it cannot be compared"),
    ("moved(red_cube, sideways, 0.05)", 17, "unknown 'sideways'; expected a direction"),
    ("moved(red_cube, left, 0)", 23, "expected a distance > 0"),
    ("height(red_cube) > 5kg", 21, "unknown unit 'kg'"),
    ("inside(red_cube, table)", 18, "expected a container: bin"),
    ("on(red_cube, red_cube)", 1, "names 'red_cube' twice"),
    ("held(red_cube) & held(blue_cube)", 16, "unexpected character '&'"),
    ("", 1, "empty"),
])
def test_a_bad_predicate_says_where_and_what_was_expected(text: str, column: int,
                                                          message: str) -> None:
    with pytest.raises(PredicateError) as info:
        parse(text)
    assert message in str(info.value)
    assert info.value.position + 1 == column, str(info.value)
    assert f"(column {column})" in str(info.value)
    assert isinstance(info.value, ConfigError)  # the CLI prints it as a user error


def test_precedence_not_then_and_then_or_with_parentheses() -> None:
    p = parse("held(red_cube) or held(blue_cube) and not held(green_cube)")
    assert [str(t) for t in p.terms()] == ["held(red_cube)", "held(blue_cube)",
                                           "held(green_cube)"]
    assert type(p.root).__name__ == "AnyOf"
    grouped = parse("(held(red_cube) or held(blue_cube)) and not held(green_cube)")
    assert type(grouped.root).__name__ == "All"


def test_units_and_keywords() -> None:
    a = parse("moved(red_cube, left, 5cm) AND height(blue_cube) >= 30mm")
    assert [str(t) for t in a.terms()] == ["moved(red_cube, left, 0.05)",
                                           "height(blue_cube) >= 0.03"]
    assert a.needs_start and not parse("at_home()").needs_start


@pytest.fixture(scope="module")
def scene() -> TabletopScene:
    s = TabletopScene()
    yield s
    s.close()


def _put(scene: TabletopScene, name: str, x: float, y: float, z: float | None = None) -> None:
    z = CUBE_SIZE_M / 2 + 0.001 if z is None else z
    pb.resetBasePositionAndOrientation(scene.cubes[name], (x, y, z), (0, 0, 0, 1),
                                       physicsClientId=scene.client)
    pb.resetBaseVelocity(scene.cubes[name], (0, 0, 0), (0, 0, 0), physicsClientId=scene.client)


def _check(text: str, now: WorldTruth, start: WorldTruth | None = None) -> bool:
    return parse(text).evaluate(now, start).success


def test_on_inside_height_distance_on_a_real_scene(scene: TabletopScene) -> None:
    scene.reset(seed=0)
    bin_xy = scene.object_position("bin")[:2]
    _put(scene, "red_cube", 0.45, 0.0)
    _put(scene, "blue_cube", 0.45, 0.0, 1.5 * CUBE_SIZE_M + 0.002)  # stacked on red
    _put(scene, "green_cube", float(bin_xy[0]), float(bin_xy[1]), 0.06)  # dropped in the bin
    scene.step(240)  # everything comes to rest
    now = WorldTruth.of(scene)
    assert _check("on(blue_cube, red_cube) and not on(red_cube, blue_cube)", now)
    assert _check("on(red_cube, table) and not on(blue_cube, table)", now)
    assert _check("inside(green_cube, bin) and not inside(red_cube, bin)", now)
    assert not _check("on(green_cube, table)", now)  # in the bin is not on the table
    assert _check("height(blue_cube) > 0.07 and height(red_cube) < 0.03", now)
    assert _check("distance(blue_cube, red_cube) < 6cm and distance(red_cube, bin) > 0.2", now)
    verdict = parse("height(blue_cube) > 0.1 or on(blue_cube, red_cube)").evaluate(now)
    assert verdict.success
    assert [(t.term, t.value) for t in verdict.terms] == [("height(blue_cube) > 0.1", False),
                                                          ("on(blue_cube, red_cube)", True)]
    assert verdict.terms[0].measured == pytest.approx(1.5 * CUBE_SIZE_M, abs=0.005)


def test_moved_and_unmoved_compare_with_the_start_of_the_step(scene: TabletopScene) -> None:
    scene.reset(seed=2)
    start = WorldTruth.of(scene)
    red = scene.object_position("red_cube")
    _put(scene, "red_cube", float(red[0]) + 0.06, float(red[1]) + 0.08)  # forward and left
    scene.step(60)
    now = WorldTruth.of(scene)
    assert _check("moved(red_cube, left, 0.07) and moved(red_cube, forward, 5cm)", now, start)
    assert not _check("moved(red_cube, left, 0.09)", now, start)
    assert not _check("moved(red_cube, right, 0.01) or moved(red_cube, back, 0.01)", now, start)
    assert _check("unmoved(blue_cube) and not unmoved(red_cube)", now, start)
    with pytest.raises(PredicateError, match="need the world at the start of the step"):
        parse("unmoved(blue_cube)").evaluate(now)


def test_arm_predicates_at_home_gripper_at_pointing_at(scene: TabletopScene) -> None:
    scene.reset(seed=1)
    assert _check("at_home()", WorldTruth.of(scene))
    scene.reset(seed=1, arm_q=AWAY_POSES[0])  # the grasp point low over the table
    now = WorldTruth.of(scene)
    g = now.grasp_point
    assert not _check("at_home()", now)
    assert _check(f"gripper_at({g[0]:.3f}, {g[1]:.3f}, {g[2]:.3f})", now)
    assert not _check(f"gripper_at({g[0] + 0.03:.3f}, {g[1]:.3f}, {g[2]:.3f})", now)
    # Yellow on red, (almost) straight under the gripper: yellow's top 20 cm below it.
    _put(scene, "red_cube", g[0] + 0.01, g[1])
    _put(scene, "yellow_cube", g[0] + 0.01, g[1], 1.5 * CUBE_SIZE_M + 0.002)
    scene.step(30)
    assert _check("pointing_at(yellow_cube) and not pointing_at(red_cube)", WorldTruth.of(scene))


def test_held_after_a_real_grasp(robot: LocalRobot) -> None:
    robot.reset(seed=0)
    assert not _check("held(red_cube)", WorldTruth.of(robot.scene))
    assert robot.run_skill(Grasp("red_cube", robot.skill_options)).ok
    now = WorldTruth.of(robot.scene)
    assert now.held == {"red_cube"}
    assert _check("held(red_cube) and height(red_cube) > 0.08 and not held(blue_cube)", now)
    assert not _check("inside(red_cube, bin)", now)
    state = now.to_json()
    assert state["holding"] == ["red_cube"] and len(state["arm_q"]) == 7
    assert set(state["objects"]) == {"red_cube", "green_cube", "blue_cube", "yellow_cube", "bin"}
