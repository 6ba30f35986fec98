"""Gymnasium conformance and behaviour of the tabletop environments (real PyBullet)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim_envs
from sim_envs.tabletop.env import to_action

RTAGENT_ENVS = sorted(e for e in gym.registry if e.startswith("rtagent/"))


def test_every_package_env_is_registered() -> None:
    assert set(sim_envs.ENV_IDS) <= set(RTAGENT_ENVS)


@pytest.mark.parametrize("env_id", RTAGENT_ENVS)
def test_env_checker_passes(env_id: str) -> None:
    env = gym.make(env_id)
    try:
        check_env(env.unwrapped)
    finally:
        env.close()


def test_reset_is_reproducible_by_seed_and_differs_across_seeds() -> None:
    env = gym.make("rtagent/TabletopState-v0").unwrapped
    try:
        def cubes(seed: int) -> np.ndarray:
            env.reset(seed=seed)
            return np.array([env.robot.scene.object_position(c) for c in sim_envs.tabletop.scene.CUBE_IDS])

        a, b, c = cubes(3), cubes(3), cubes(4)
        np.testing.assert_allclose(a, b, atol=1e-6)
        assert np.max(np.abs(a - c)) > 0.01
    finally:
        env.close()


def test_images_match_the_observation_space() -> None:
    env = gym.make("rtagent/Tabletop-v0")
    try:
        obs, _ = env.reset(seed=0)
        assert obs["rgb"].shape == (240, 320, 3) and obs["rgb"].dtype == np.uint8
        assert obs["depth"].dtype == np.float32 and 0.3 < float(np.median(obs["depth"])) < 3.0
        assert obs in env.observation_space
    finally:
        env.close()


def test_end_effector_actions_reach_a_task_and_terminate_with_reward() -> None:
    env = gym.make("rtagent/TabletopState-v0")
    try:
        obs, info = env.reset(options={"task": "point-yellow_cube-s0"})
        assert info["task"] == "point-yellow_cube-s0"
        cube = env.unwrapped.robot.scene.object_position("yellow_cube")
        action = to_action(cube[0], cube[1], cube[2] + 0.15)
        for _ in range(80):
            obs, reward, terminated, truncated, info = env.step(action)
            if terminated:
                break
        assert terminated and reward == 1.0 and info["success"]
        # The check passes on the way down to the hover point: above the cube, 8-25 cm up.
        assert np.linalg.norm(obs["grasp_point"][:2] - cube[:2]) < 0.03
    finally:
        env.close()
