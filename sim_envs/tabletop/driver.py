"""Real-time stepping for the sim process: physics follows an injected clock.

:class:`SimDriver` is what the sim process runs in its loop: give it the time
now (from a ``realtime`` clock) and it steps physics until simulated time has
caught up (never more than ``max_catch_up_steps`` at once: when the CPU cannot
keep up, the sim slows down instead of spiralling, and the lost time is
counted), returning the joint state and, at the camera rate, a camera frame to
publish (or whatever the ``render`` it was given returns: the sim process takes
a pose snapshot there, and its camera process draws it). Joint targets from
actuation are applied with :meth:`SimDriver.apply`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from realtime.errors import ConfigError
from sim_envs.tabletop.camera import CameraFrame
from sim_envs.tabletop.scene import JointState, TabletopScene

__all__ = ["SimDriver", "SimDriverOptions", "SimTick"]


@dataclass(frozen=True)
class SimDriverOptions:
    camera_hz: float = 16.0
    """Camera frames per simulated second."""
    max_catch_up_steps: int = 48
    """Most physics steps in one :meth:`SimDriver.advance` (0.2 s at 240 Hz)."""

    def __post_init__(self) -> None:
        if not 0.5 <= self.camera_hz <= 60.0:
            raise ConfigError(f"camera_hz: expected 0.5..60, got {self.camera_hz}")
        if not 1 <= self.max_catch_up_steps <= 2400:
            raise ConfigError(
                f"max_catch_up_steps: expected 1..2400, got {self.max_catch_up_steps}")


@dataclass(frozen=True)
class SimTick:
    steps: int
    joint_state: JointState
    frame: Any
    """When a frame was due, what ``render`` returned (a camera frame by default), else None."""
    lag_s: float
    """How far simulated time is behind the clock after this call."""


class SimDriver:
    """``render``: what is done when a frame is due (default ``scene.render``; the sim
    process passes one that snapshots the poses for its camera process)."""

    def __init__(self, scene: TabletopScene, options: SimDriverOptions | None = None, *,
                 render: Callable[[], CameraFrame | Any] | None = None) -> None:
        self.scene = scene
        self.options = options or SimDriverOptions()
        self._render = render or scene.render
        self._origin_s: float | None = None
        self._origin_steps = 0
        self._next_frame_s = 0.0
        self.dropped_s = 0.0
        """Clock time the sim gave up on because the CPU could not keep up."""

    def apply(self, arm_q: object, finger_width_m: float) -> None:
        self.scene.set_joint_targets(arm_q, finger_width_m)  # type: ignore[arg-type]

    def restart(self) -> None:
        """Re-anchor to the clock (after a scene reset)."""
        self._origin_s = None
        self._next_frame_s = self.scene.sim_time_s

    def next_step_due_s(self) -> float:
        """Clock time at which the next physics step is due (sleep until then)."""
        if self._origin_s is None:
            return -math.inf
        done = self.scene.steps - self._origin_steps
        return self._origin_s + (done + 1) * self.scene.dt_s

    def advance(self, now_s: float) -> SimTick:
        if self._origin_s is None:
            self._origin_s, self._origin_steps = now_s, self.scene.steps
            self._next_frame_s = self.scene.sim_time_s
        due = int((now_s - self._origin_s) / self.scene.dt_s) - (self.scene.steps
                                                                 - self._origin_steps)
        steps = max(0, min(due, self.options.max_catch_up_steps))
        if due > steps:  # too far behind: let the sim fall back rather than spiral
            behind = (due - steps) * self.scene.dt_s
            self._origin_s += behind
            self.dropped_s += behind
        if steps:
            self.scene.step(steps)
        frame = None
        if self.scene.sim_time_s + 1e-9 >= self._next_frame_s:
            frame = self._render()
            period = 1.0 / self.options.camera_hz
            self._next_frame_s += period * max(1, math.ceil(
                (self.scene.sim_time_s - self._next_frame_s + 1e-9) / period))
        lag = now_s - self._origin_s - (self.scene.steps - self._origin_steps) * self.scene.dt_s
        return SimTick(steps, self.scene.joint_state(), frame, max(0.0, lag))
