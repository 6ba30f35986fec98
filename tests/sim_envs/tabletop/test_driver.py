"""The sim process's stepping: physics follows an injected clock (virtual time here)."""

from __future__ import annotations

import numpy as np
import pytest

from sim_envs.tabletop.driver import SimDriver, SimDriverOptions
from sim_envs.tabletop.scene import HOME_Q, TabletopScene


@pytest.fixture(scope="module")
def scene() -> TabletopScene:
    s = TabletopScene()
    yield s
    s.close()


def test_sim_time_follows_the_clock_and_frames_come_at_the_camera_rate(
        scene: TabletopScene) -> None:
    scene.reset(seed=0)
    driver = SimDriver(scene, SimDriverOptions(camera_hz=16.0))
    start_sim = scene.sim_time_s
    frames, t = 0, 100.0
    for _ in range(201):  # 1 s of clock in 5 ms ticks
        tick = driver.advance(t)
        frames += tick.frame is not None
        t += 0.005
    assert scene.sim_time_s - start_sim == pytest.approx(1.0, abs=1.01 / 240)
    assert frames in (16, 17)  # frames at 0, 1/16, ..., 1 s
    assert tick.lag_s < 1 / 240 + 1e-9 and driver.dropped_s == 0.0


def test_a_stalled_process_catches_up_boundedly_and_counts_lost_time(
        scene: TabletopScene) -> None:
    scene.reset(seed=0)
    driver = SimDriver(scene, SimDriverOptions(max_catch_up_steps=48))
    driver.advance(0.0)
    before = scene.steps
    tick = driver.advance(2.0)  # the process slept for 2 s
    assert tick.steps == 48 and scene.steps - before == 48
    assert driver.dropped_s == pytest.approx(2.0 - 48 / 240, abs=1 / 240)
    assert driver.advance(2.0 + 1 / 240).steps == 1  # and then runs in step again


def test_joint_targets_are_applied(scene: TabletopScene) -> None:
    scene.reset(seed=0)
    driver = SimDriver(scene)
    target = np.asarray(HOME_Q) + np.array([0.3, 0, 0, 0, 0, 0, 0])
    driver.apply(target, 0.02)
    t = 0.0
    for _ in range(240):
        tick = driver.advance(t)
        t += 1 / 120
    assert abs(tick.joint_state.arm_q[0] - target[0]) < 0.01
    assert tick.joint_state.finger_width_m == pytest.approx(0.02, abs=0.002)
