"""Perception from camera images, checked against the simulator's ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from sim_envs.tabletop.camera import deproject
from sim_envs.tabletop.kinematics import PandaKinematics, wrap_gripper_yaw
from sim_envs.tabletop.perception import Perception
from sim_envs.tabletop.robot import LocalRobot
from sim_envs.tabletop.scene import BIN_ID, CUBE_IDS, TabletopScene
from sim_envs.tabletop.skills import Grasp


@pytest.fixture(scope="module")
def scene() -> TabletopScene:
    s = TabletopScene()
    yield s
    s.close()


@pytest.fixture(scope="module")
def perception() -> Perception:
    k = PandaKinematics()
    yield Perception(kinematics=k)
    k.close()


def test_intrinsics_come_from_the_projection(scene: TabletopScene) -> None:
    k = scene.camera.intrinsics
    o = scene.camera.options
    assert (k.cx, k.cy) == (o.width_px / 2, o.height_px / 2)
    assert k.fx == pytest.approx(k.fy)  # square pixels
    assert k.fy == pytest.approx(o.height_px / 2 / np.tan(np.radians(o.fov_deg / 2)), rel=1e-5)


def test_depth_deprojects_onto_the_table_plane(scene: TabletopScene) -> None:
    scene.reset(seed=0)
    frame = scene.render()
    table = frame.segmentation == scene.table
    rows, cols = np.nonzero(table)
    pts = deproject(frame, rows, cols)
    # The table top is z = 0 (a few pixels see the table's 5 cm front face).
    assert np.percentile(np.abs(pts[:, 2]), 95) < 0.003
    assert pts[:, 2].min() > -0.055 and pts[:, 2].max() < 0.003


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_objects_agree_with_ground_truth(scene: TabletopScene, perception: Perception,
                                         seed: int) -> None:
    scene.reset(seed=seed)
    perception.reset()
    world = perception.update(scene.render(), scene.joint_state())
    assert set(world.visible()) == {*CUBE_IDS, BIN_ID}
    for name in CUBE_IDS:
        obj = world.objects[name]
        assert obj.colour == name.split("_")[0]
        err = np.linalg.norm(world.position(name) - scene.object_position(name))
        assert err < 0.008, f"{name}: {err * 1000:.1f} mm off"
        assert abs(wrap_gripper_yaw(obj.yaw_rad - scene.object_yaw(name))) < 0.06
    bin_err = world.position(BIN_ID)[:2] - scene.object_position(BIN_ID)[:2]
    assert np.linalg.norm(bin_err) < 0.015
    grasp = np.asarray(world.gripper.position_m)
    np.testing.assert_allclose(grasp, scene.grasp_point(), atol=1e-4)
    assert world.gripper.holding is None and world.gripper.width_m > 0.075


def test_perception_uses_only_the_frame_not_the_simulator(scene: TabletopScene,
                                                         perception: Perception) -> None:
    scene.reset(seed=2)
    frame, joints = scene.render(), scene.joint_state()
    truth = {n: scene.object_position(n) for n in CUBE_IDS}
    scene.reset(seed=9)  # the simulator moves on; the old frame still gives the old world
    perception.reset()
    world = perception.update(frame, joints)
    for name in CUBE_IDS:
        assert np.linalg.norm(world.position(name) - truth[name]) < 0.008


def test_an_object_out_of_view_is_remembered_as_not_visible(scene: TabletopScene,
                                                           perception: Perception) -> None:
    scene.reset(seed=1)
    perception.reset()
    perception.update(scene.render(), scene.joint_state())
    frame = scene.render()
    blank = frame.rgb.copy()
    blank[...] = 128  # a grey frame: nothing coloured in view
    from dataclasses import replace

    world = perception.update(replace(frame, rgb=blank), scene.joint_state())
    assert world.visible() == []
    assert not world.objects["red_cube"].visible
    assert np.linalg.norm(world.position("red_cube") - scene.object_position("red_cube")) < 0.01


def test_gripper_state_reports_the_held_cube() -> None:
    with LocalRobot() as robot:
        robot.reset(seed=3)
        outcome = robot.run_skill(Grasp("green_cube", robot.skill_options))
        assert outcome.ok, outcome.reason
        world = robot.tick()
        assert world.gripper.holding == "green_cube" and world.objects["green_cube"].held
        assert robot.scene.touching_gripper("green_cube")
        err = np.linalg.norm(world.position("green_cube") - robot.scene.object_position("green_cube"))
        assert err < 0.02
