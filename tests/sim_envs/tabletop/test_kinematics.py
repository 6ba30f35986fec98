"""IK on the actuation side's own model, and the actuator's limits and watchdog."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim_envs.tabletop.actuation import Actuator, ActuatorOptions, ArmCommand
from sim_envs.tabletop.kinematics import PandaKinematics, top_down_quat, wrap_gripper_yaw
from sim_envs.tabletop.scene import HOME_Q, JointState, TabletopScene


@pytest.fixture(scope="module")
def kin() -> PandaKinematics:
    k = PandaKinematics()
    yield k
    k.close()


def _state(q: np.ndarray, width: float = 0.08) -> JointState:
    pos = np.concatenate([q, [width / 2, width / 2]])
    return JointState(pos, np.zeros(9))


def test_home_pose_points_the_gripper_down(kin: PandaKinematics) -> None:
    pos, quat = kin.fk(np.asarray(HOME_Q))
    assert 0.25 < pos[0] < 0.35 and abs(pos[1]) < 1e-6 and 0.4 < pos[2] < 0.55
    assert abs(abs(float(np.dot(quat, top_down_quat(0.0)))) - 1) < 1e-3


def test_ik_reaches_targets_across_the_workspace(kin: PandaKinematics) -> None:
    rng = np.random.default_rng(7)
    errors = []
    for _ in range(60):
        target = np.array([rng.uniform(0.3, 0.65), rng.uniform(-0.35, 0.35),
                           rng.uniform(0.03, 0.45)])
        yaw = rng.uniform(-math.pi / 4, math.pi / 4)
        sol = kin.ik(target, top_down_quat(yaw), np.asarray(HOME_Q))
        pos, quat = kin.fk(sol.q)  # independent check of the answer
        errors.append(float(np.linalg.norm(pos - target)))
        assert np.all(sol.q >= kin.lower) and np.all(sol.q <= kin.upper)
        assert abs(float(np.dot(quat, top_down_quat(yaw)))) > math.cos(0.05 / 2)
    assert np.percentile(errors, 95) < 0.003 and max(errors) < 0.005


def test_gripper_yaw_wraps_to_a_quarter_turn() -> None:
    for yaw in (-3.0, -1.0, 0.3, 0.8, 2.5):
        w = wrap_gripper_yaw(yaw)
        assert -math.pi / 4 <= w < math.pi / 4
        assert abs(math.remainder(yaw - w, math.pi / 2)) < 1e-9


def test_actuator_clips_joint_steps_to_velocity_limits(kin: PandaKinematics) -> None:
    act = Actuator(kin, ActuatorOptions(max_ee_speed_m_s=2.0, joint_speed_fraction=0.5))
    q0 = np.asarray(HOME_Q)
    act.update(_state(q0), 0.0, ArmCommand(joint_target=tuple(q0)))
    far = (2.5, 1.5, -2.5, -0.5, 2.5, 3.5, -2.5)
    out = act.update(_state(q0), 0.01, ArmCommand(joint_target=far))
    assert out.clipped
    assert np.all(np.abs(out.arm_q - q0) <= kin.max_velocity * 0.5 * 0.01 + 1e-9)
    for i in range(2, 2000):  # keeps moving (commanded each tick), never past a joint limit
        out = act.update(_state(out.arm_q), i * 0.01, ArmCommand(joint_target=far))
    assert np.all(out.arm_q >= kin.lower) and np.all(out.arm_q <= kin.upper)
    np.testing.assert_allclose(out.arm_q, np.clip(far, kin.lower, kin.upper), atol=1e-6)


def test_actuator_interpolates_the_setpoint_at_bounded_speed(kin: PandaKinematics) -> None:
    act = Actuator(kin, ActuatorOptions(max_ee_speed_m_s=0.2))
    q0 = np.asarray(HOME_Q)
    start, _ = kin.fk(q0)
    out = act.update(_state(q0), 0.0, ArmCommand(ee_position_m=(0.5, 0.2, 0.1)))
    out = act.update(_state(out.arm_q), 0.05)
    assert np.linalg.norm(out.setpoint_m - start) == pytest.approx(0.2 * 0.05, rel=1e-6)


def test_watchdog_holds_when_commands_stop_and_resumes_on_new_ones(kin: PandaKinematics) -> None:
    act = Actuator(kin, ActuatorOptions(watchdog_timeout_s=0.2))
    q0 = np.asarray(HOME_Q)
    out = act.update(_state(q0), 0.0, ArmCommand(ee_position_m=(0.5, 0.0, 0.2),
                                                 gripper_width_m=0.0))
    t = 0.0
    while t < 0.15:
        t += 0.0125
        out = act.update(_state(out.arm_q), t)
        assert not out.holding
    held = out.arm_q
    for _ in range(20):
        t += 0.0125
        out = act.update(_state(out.arm_q), t)
    assert out.holding and out.watchdog_tripped and act.watchdog_trips == 1
    np.testing.assert_allclose(out.arm_q, held, atol=0.05)
    assert out.finger_width_m == 0.0  # holding on to whatever it grasped
    out = act.update(_state(out.arm_q), t + 0.01, ArmCommand(ee_position_m=(0.5, 0.0, 0.2)))
    assert out.holding  # the Watchdog's resume rule: two fresh commands in a row
    out = act.update(_state(out.arm_q), t + 0.02, ArmCommand(ee_position_m=(0.5, 0.0, 0.2)))
    assert not out.holding


def test_safe_stop_holds_the_measured_pose(kin: PandaKinematics) -> None:
    act = Actuator(kin)
    q = np.asarray(HOME_Q) + 0.1
    out = act.safe_stop(_state(q))
    assert out.holding
    np.testing.assert_allclose(out.arm_q, q)


def test_actuator_drives_the_simulated_arm_to_a_target() -> None:
    with TabletopScene() as scene, PandaKinematics() as kin:
        scene.reset(seed=0)
        act = Actuator(kin)
        target = (0.55, -0.15, 0.12)
        cmd: ArmCommand | None = ArmCommand(ee_position_m=target, yaw_rad=0.3)
        for _ in range(240 * 3 // 3):
            out = act.update(scene.joint_state(), scene.sim_time_s, cmd)
            cmd = None if scene.sim_time_s < 0.3 else ArmCommand(ee_position_m=target, yaw_rad=0.3)
            scene.set_joint_targets(out.arm_q, out.finger_width_m)
            scene.step(3)
        assert np.linalg.norm(scene.grasp_point() - np.asarray(target)) < 0.005
