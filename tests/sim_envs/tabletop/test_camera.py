"""The camera process's mirror: the sim's poses drawn in another scene give the sim's image;
an unchanged snapshot is recognised (not redrawn); pybullet's import banner never shows."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from sim_envs.tabletop.scene import ScenePoses, TabletopScene
from sim_envs.tabletop.tasks import AWAY_POSES
from sim_envs.tabletop.wire import poses_from_msg, poses_to_msg


@pytest.fixture(scope="module")
def scenes() -> tuple[TabletopScene, TabletopScene]:
    sim, mirror = TabletopScene(), TabletopScene()
    yield sim, mirror
    sim.close()
    mirror.close()


def test_the_mirror_draws_what_the_sim_would(scenes: tuple[TabletopScene, TabletopScene]) -> None:
    sim, mirror = scenes
    sim.reset(seed=3, arm_q=AWAY_POSES[1])
    sim.step(30)
    poses = poses_from_msg(poses_to_msg(sim.poses()))  # through the bus message
    assert poses == sim.poses()
    mirror.set_poses(poses)
    want, got = sim.render(), mirror.render()
    assert got.sim_time_s == want.sim_time_s
    for image in ("rgb", "depth_m", "segmentation"):  # pixel for pixel
        assert np.array_equal(getattr(got, image), getattr(want, image)), image
    assert np.allclose(mirror.joint_state().positions, sim.joint_state().positions)


def test_a_snapshot_where_nothing_moved_is_the_same_picture(
        scenes: tuple[TabletopScene, TabletopScene]) -> None:
    sim, _ = scenes
    sim.reset(seed=0)
    before = sim.poses()
    sim.step(24)  # at rest: micro-motion only
    still = sim.poses()
    assert still.same_picture(before) and not still.same_picture(None)
    cube = still.objects["red_cube"]
    moved = ScenePoses({**still.objects, "red_cube": ((cube[0][0] + 0.001, *cube[0][1:]), cube[1])},
                       still.joint_positions, still.sim_time_s)
    assert not moved.same_picture(still)
    turned = ScenePoses(still.objects, (still.joint_positions[0] + 0.01, *still.joint_positions[1:]),
                        still.sim_time_s)
    assert not turned.same_picture(still)


def test_malformed_poses_are_refused() -> None:
    msg = poses_to_msg(ScenePoses({"bin": ((0.4, 0.3, 0.0), (0, 0, 0, 1))}, (0.0,) * 7))
    with pytest.raises(ValueError, match="9 joint positions"):
        poses_from_msg(msg)


def test_importing_the_tabletop_prints_no_pybullet_banner() -> None:
    out = subprocess.run([sys.executable, "-c", "import sim_envs.tabletop.scene, "
                          "sim_envs.tabletop.kinematics; print('imported')"],
                         capture_output=True, text=True, timeout=120, check=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.stdout == "imported\n"
    assert "pybullet build time" not in out.stderr, out.stderr
