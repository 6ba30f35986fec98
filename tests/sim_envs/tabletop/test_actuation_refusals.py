"""The actuator refuses commands it cannot act on and holds, counting the reason;
non-finite numbers never reach PyBullet's IK or FK."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from sim_envs.tabletop.actuation import Actuator, ArmCommand
from sim_envs.tabletop.kinematics import PandaKinematics, top_down_quat
from sim_envs.tabletop.scene import HOME_Q, JointState
from sim_envs.tabletop.target_checks import REFUSALS, Reach, refusal

NAN, INF = math.nan, math.inf
STATE = JointState(np.array([*HOME_Q, 0.04, 0.04]), np.zeros(9))


@pytest.fixture(scope="module")
def kin() -> Iterator[PandaKinematics]:
    with PandaKinematics() as k:
        yield k


BAD = [
    (ArmCommand(ee_position_m=(NAN, INF, 0.0)), "non_finite"),
    (ArmCommand(ee_position_m=(0.5, 0.0, 0.2), yaw_rad=INF), "non_finite"),
    (ArmCommand(ee_position_m=(0.5, 0.0, 0.2), gripper_width_m=NAN), "non_finite"),
    (ArmCommand(ee_position_m=(1.5, 1.5, 1.5)), "unreachable"),
    (ArmCommand(ee_position_m=(0.5, 0.0, -0.5)), "unreachable"),
    (ArmCommand(joint_target=(0.1, 0.2, 0.3)), "bad_joint_target"),
    (ArmCommand(joint_target=(NAN,) * 7), "non_finite"),
    (ArmCommand(), "no_target"),
    (ArmCommand(hold=True, gripper_width_m=INF), "non_finite"),
]


@pytest.mark.parametrize(("cmd", "reason"), BAD, ids=[r for _, r in BAD])
def test_a_command_it_cannot_act_on_is_held_and_counted(kin: PandaKinematics, cmd: ArmCommand,
                                                         reason: str) -> None:
    act = Actuator(kin)
    first = act.update(STATE, 0.0, ArmCommand(ee_position_m=(0.45, 0.1, 0.3)))
    moving = act.update(STATE, 0.05)
    assert not moving.holding and not np.allclose(moving.arm_q, first.arm_q)
    held = [act.update(STATE, 0.1 + 0.0125 * i, cmd) for i in range(4)]
    assert all(t.holding and np.all(np.isfinite(t.arm_q)) for t in held)
    assert all(np.array_equal(t.arm_q, moving.arm_q) for t in held)  # holds where it was
    assert math.isfinite(held[-1].finger_width_m)
    assert act.refused == {reason: 4} and reason in REFUSALS
    recovered = act.update(STATE, 0.2, ArmCommand(ee_position_m=(0.45, 0.1, 0.3)))
    assert not recovered.holding


def test_reachable_targets_pass_the_checks() -> None:
    reach = Reach()
    for target in [(0.5, 0.0, 0.02), (0.3, -0.4, 0.3), (0.8, 0.0, 0.3), (0.2, 0.5, 0.6)]:
        assert refusal(target, 0.0, 0.08, None, 7, reach) is None, target
    assert refusal(None, 0.0, 0.0, [0.0] * 7, 7, reach) is None


def test_non_finite_inputs_never_reach_pybullet(kin: PandaKinematics) -> None:
    sol = kin.ik(np.array([NAN, 0.0, 0.2]), top_down_quat(0.0), kin.home)
    assert sol.iterations == 0 and sol.position_error_m == INF
    assert np.array_equal(sol.q, np.clip(kin.home, kin.lower, kin.upper))
    good = kin.ik(np.array([0.5, 0.0, 0.2]), top_down_quat(0.0), np.full(7, NAN))
    assert good.reached()  # a NaN seed falls back to the home posture
    with pytest.raises(ValueError, match="finite"):
        kin.fk(np.full(7, NAN))


def test_ik_stops_refining_when_its_time_budget_is_spent(kin: PandaKinematics) -> None:
    far = np.array([0.5, 0.0, -0.5])  # below the table: never converges, so every round runs
    assert kin.ik(far, top_down_quat(0.0), kin.home).iterations == 6
    assert kin.ik(far, top_down_quat(0.0), kin.home, max_time_s=1e-9).iterations == 1
