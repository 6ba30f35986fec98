"""The worlds the agent acts in; :mod:`sim_envs.tabletop` is the PyBullet tabletop.

Importing the package registers the Gymnasium environments
``rtagent/Tabletop-v0`` (joint states + camera images) and
``rtagent/TabletopState-v0`` (joint states only); see :mod:`sim_envs.tabletop.env`.
"""

from __future__ import annotations

ENV_IDS = ("rtagent/Tabletop-v0", "rtagent/TabletopState-v0")


def register_envs() -> None:
    """Register the environments with Gymnasium (idempotent, imports no simulator)."""
    import gymnasium as gym

    for env_id, images in zip(ENV_IDS, (True, False), strict=True):
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="sim_envs.tabletop.env:TabletopEnv",
                         max_episode_steps=16 * 60, kwargs={"images": images})


register_envs()
