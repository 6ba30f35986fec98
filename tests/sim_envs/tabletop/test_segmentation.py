"""Perception from pixels: colour + depth connected components (no instance mask), and a
camera with noise and varying light."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from realtime.errors import ConfigError
from sim_envs.tabletop.camera import CameraNoise, CameraOptions
from sim_envs.tabletop.kinematics import PandaKinematics
from sim_envs.tabletop.perception import Perception, PerceptionOptions
from sim_envs.tabletop.perception_check import score_perception, scoring_tasks
from sim_envs.tabletop.scene import BIN_ID, CUBE_IDS, SceneOptions, TabletopScene
from sim_envs.tabletop.segmentation import connected_components, object_pixels


def test_components_follow_class_and_depth() -> None:
    classes = np.full((6, 8), -1, dtype=np.int8)
    classes[0:2, 0:3] = 0  # blob A
    classes[4:6, 0:3] = 0  # blob B: same class, not touching A
    classes[0:3, 5:8] = 1  # another class ...
    classes[3, 5:8] = 0  # ... touching class 0 below it: not joined
    depth = np.ones((6, 8), dtype=np.float32)
    depth[5, :] = 1.2  # a depth step inside blob B splits it
    labels = connected_components(classes, depth, depth_jump_m=0.03)
    assert (labels == -1).sum() == (classes == -1).sum()
    a, b_top, b_bottom = labels[0, 0], labels[4, 0], labels[5, 0]
    assert len({a, b_top, b_bottom, labels[0, 5], labels[3, 5]}) == 5
    assert (labels[0:2, 0:3] == a).all() and (labels[4, 0:3] == b_top).all()


@pytest.fixture(scope="module")
def scene() -> TabletopScene:
    s = TabletopScene()
    yield s
    s.close()


@pytest.fixture(scope="module")
def kin() -> PandaKinematics:
    k = PandaKinematics()
    yield k
    k.close()


def test_a_cube_cut_in_two_is_one_object_and_far_specks_are_not(scene: TabletopScene) -> None:
    scene.reset(seed=0)
    frame = scene.render()
    rows, cols = np.nonzero(frame.segmentation == scene.cubes["red_cube"])
    rgb = frame.rgb.copy()
    mid = int(np.median(cols))
    rgb[rows.min():rows.max() + 1, mid - 1:mid + 2] = 128  # a grey "finger" across it
    rgb[5:8, 5:8] = rgb[rows[0], cols[0]]  # red specks far off, in the corner
    found = object_pixels(replace(frame, rgb=rgb))
    red_rows, red_cols = found["red_cube"]
    assert red_cols.min() < mid - 1 and red_cols.max() > mid + 1  # both halves
    assert red_rows.min() > 8  # not the specks
    assert set(found) == {*CUBE_IDS, BIN_ID}


def test_perception_never_reads_the_instance_mask(scene: TabletopScene,
                                                  kin: PandaKinematics) -> None:
    scene.reset(seed=4)
    frame, joints = scene.render(), scene.joint_state()
    blind = replace(frame, segmentation=np.zeros_like(frame.segmentation))
    by_pixels = Perception(PerceptionOptions(), kin).update(blind, joints)
    by_mask = Perception(PerceptionOptions(grouping="instance_mask"), kin).update(frame, joints)
    for name in (*CUBE_IDS, BIN_ID):
        np.testing.assert_allclose(by_pixels.position(name), by_mask.position(name), atol=1e-9)
    with pytest.raises(ConfigError, match="grouping"):
        PerceptionOptions(grouping="magic")


def test_a_noisy_camera_with_varying_light_is_still_perceived(kin: PandaKinematics) -> None:
    noisy = SceneOptions(camera=CameraOptions(noise=CameraNoise.realistic(seed=1)))
    with TabletopScene() as clean_scene, TabletopScene(noisy) as scene:
        perception = Perception(PerceptionOptions(), kin)
        for seed in range(4):
            scene.reset(seed=seed)
            clean_scene.reset(seed=seed)
            perception.reset()
            frame, clean = scene.render(), clean_scene.render()
            assert not np.array_equal(frame.rgb, clean.rgb)
            assert 0.003 < np.mean(frame.depth_m == 0) < 0.02  # dropouts
            world = perception.update(frame, scene.joint_state())
            assert set(world.visible()) == {*CUBE_IDS, BIN_ID}
            for name in CUBE_IDS:
                err = np.linalg.norm(world.position(name) - scene.object_position(name))
                assert err < 0.012, f"seed {seed} {name}: {err * 1000:.1f} mm"


def test_noise_options_are_validated_and_off_by_default() -> None:
    assert not CameraNoise().enabled and CameraNoise.realistic().enabled
    with pytest.raises(ConfigError, match="depth_dropout"):
        CameraNoise(depth_dropout=0.7)


@pytest.mark.slow
def test_suite_tasks_succeed_and_score_well_on_a_noisy_camera() -> None:
    """The suite's perception path (scripted solutions, pixel perception) on noisy frames."""
    score = score_perception(scoring_tasks(3), noise=True).to_json()
    assert score["tasks_succeeded"] == score["tasks"] == 3, score
    assert score["detection_rate"] >= 0.97 and score["false_detections"] == 0, score
    assert score["cube_error_mm_p50"] < 8.0 and score["bin_error_mm_p50"] < 10.0, score
