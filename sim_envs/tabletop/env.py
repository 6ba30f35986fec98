"""Gymnasium environments over the tabletop scene.

``rtagent/Tabletop-v0``: observations with joint states, the grasp point and
the camera images (RGB, metric depth, segmentation). ``rtagent/TabletopState-v0``:
the same without images (fast). The action is an end-effector target plus a
gripper command, normalised to ``[-1, 1]^5`` and mapped linearly onto
``[x, y, z, yaw, grip]`` within :data:`ACTION_LOW`..:data:`ACTION_HIGH` (metres,
radians, grip 0 = closed .. 1 = open; see :func:`to_action`), held for one
control tick (1/16 s by default) through the IK actuator.

``reset(seed=, options={"task": TASK_ID})`` sets up a task from
:mod:`sim_envs.tabletop.tasks` (its seed unless ``seed`` is given); the reward is 1 and
the episode terminates when the task's success check passes.
"""

from __future__ import annotations

import math
import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from realtime.errors import ConfigError
from sim_envs import ENV_IDS
from sim_envs.tabletop.actuation import ArmCommand
from sim_envs.tabletop.camera import CameraOptions
from sim_envs.tabletop.robot import LocalRobot, RobotOptions
from sim_envs.tabletop.scene import FINGER_OPEN_M, SceneOptions
from sim_envs.tabletop.tasks import Task, get_task

__all__ = ["ACTION_HIGH", "ACTION_LOW", "ENV_IDS", "TabletopEnv", "to_action"]

ACTION_LOW = np.array([0.2, -0.5, 0.0, -math.pi / 4, 0.0])
ACTION_HIGH = np.array([0.8, 0.5, 0.7, math.pi / 4, 1.0])


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def to_action(x: float, y: float, z: float, yaw: float = 0.0, grip: float = 1.0) -> np.ndarray:
    """The normalised action for a grasp-point target, yaw and grip opening (0..1)."""
    raw = np.array([x, y, z, yaw, grip], dtype=np.float64)
    action: np.ndarray = (2 * (raw - ACTION_LOW) / (ACTION_HIGH - ACTION_LOW) - 1).astype(np.float32)
    return action


class TabletopEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    # "human" opens the PyBullet GUI, so it is offered only where a display exists.
    metadata = {"render_modes": ["rgb_array"] + (["human"] if _has_display() else []),
                "render_fps": 16}

    def __init__(self, render_mode: str | None = None, images: bool = True,
                 control_hz: float = 16.0, width_px: int = 320, height_px: int = 240) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ConfigError(f"render_mode: expected one of {self.metadata['render_modes']} "
                              f"or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.images = images
        self.metadata = {**self.metadata, "render_fps": int(round(control_hz))}
        camera = CameraOptions(width_px=width_px, height_px=height_px)
        scene = SceneOptions(gui=render_mode == "human", camera=camera)
        self.robot = LocalRobot(RobotOptions(control_hz=control_hz, scene=scene))
        self.task: Task | None = None
        self.action_space = spaces.Box(-1.0, 1.0, (5,), dtype=np.float32)
        far = camera.far_m
        obs: dict[str, spaces.Space[Any]] = {
            "joint_positions": spaces.Box(-4.0, 4.0, (9,), np.float32),
            "joint_velocities": spaces.Box(-50.0, 50.0, (9,), np.float32),
            "grasp_point": spaces.Box(-2.0, 2.0, (3,), np.float32),
        }
        if images:
            h, w = height_px, width_px
            obs["rgb"] = spaces.Box(0, 255, (h, w, 3), np.uint8)
            obs["depth"] = spaces.Box(0.0, far, (h, w), np.float32)
            obs["segmentation"] = spaces.Box(-1, 2**24, (h, w), np.int32)
        self.observation_space = spaces.Dict(obs)  # type: ignore[assignment]

    def _observation(self) -> dict[str, np.ndarray]:
        js = self.robot.scene.joint_state()
        grasp, _ = self.robot.actuator.kin.fk(js.arm_q)
        obs = {
            "joint_positions": np.clip(js.positions, -4, 4).astype(np.float32),
            "joint_velocities": np.clip(js.velocities, -50, 50).astype(np.float32),
            "grasp_point": np.clip(grasp, -2, 2).astype(np.float32),
        }
        if self.images:
            frame = self.robot.scene.render()
            obs["rgb"] = frame.rgb
            obs["depth"] = np.clip(frame.depth_m, 0.0, self.robot.scene.camera.options.far_m)
            obs["segmentation"] = frame.segmentation
        return obs

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        self.task = get_task(options["task"]) if options.get("task") else None
        if seed is None:
            seed = self.task.seed if self.task else int(self.np_random.integers(0, 2**31 - 1))
        self.robot.reset(seed, self.task.start_arm_q if self.task else None)
        return self._observation(), self._info(0.0, False)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool,
                                                   dict[str, Any]]:
        u = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        a = ACTION_LOW + (u + 1) / 2 * (ACTION_HIGH - ACTION_LOW)
        command = ArmCommand(ee_position_m=(float(a[0]), float(a[1]), float(a[2])),
                             yaw_rad=float(a[3]), gripper_width_m=float(a[4]) * FINGER_OPEN_M)
        self.robot.apply(command)
        self.robot.ticks += 1
        success = bool(self.task.success(self.robot.scene)) if self.task else False
        targets = self.robot.last_targets
        info = self._info(targets.ik_error_m if targets else 0.0,
                          bool(targets.clipped) if targets else False)
        info["success"] = success
        return self._observation(), 1.0 if success else 0.0, success, False, info

    def _info(self, ik_error_m: float, clipped: bool) -> dict[str, Any]:
        return {"sim_time_s": self.robot.scene.sim_time_s, "ik_error_m": ik_error_m,
                "clipped": clipped, "task": self.task.id if self.task else None,
                "instruction": self.task.instruction if self.task else None}

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return self.robot.scene.render().rgb
        return None

    def close(self) -> None:
        self.robot.close()
