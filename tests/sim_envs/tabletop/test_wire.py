"""The robot's plain objects survive the trip through bus messages and the codec."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.codec import Codec
from sim_envs.tabletop import wire as w
from sim_envs.tabletop.actuation import Actuator, ActuatorOptions, ArmCommand
from sim_envs.tabletop.kinematics import PandaKinematics
from sim_envs.tabletop.perception import Perception, PerceptionOptions
from sim_envs.tabletop.scene import TabletopScene


@pytest.fixture(scope="module")
def scene():
    s = TabletopScene()
    s.reset(3)
    s.step(60)
    yield s
    s.close()


def _through_codec(msg):
    codec = Codec()
    return codec.decode(codec.encode(msg))


def test_frames_and_joints_round_trip_and_perceive_the_same(scene) -> None:
    frame, joints = scene.render(), scene.joint_state()
    frame2 = w.frame_from_msg(_through_codec(w.frame_to_msg(frame)))
    joints2 = w.joints_from_msg(_through_codec(w.joints_to_msg(joints)))
    np.testing.assert_array_equal(frame2.rgb, frame.rgb)
    np.testing.assert_allclose(frame2.cam_to_world, frame.cam_to_world, atol=1e-9)
    np.testing.assert_allclose(joints2.positions, joints.positions)
    kin = PandaKinematics()
    try:
        direct = Perception(PerceptionOptions(), kin).update(frame, joints)
        wired = Perception(PerceptionOptions(), kin).update(frame2, joints2)
    finally:
        kin.close()
    assert direct.to_json() == wired.to_json()
    msg = w.world_to_msg(direct)
    # The world's own counter rides in frame_seq; seq is left for the bus to stamp.
    assert (msg.frame_seq, msg.seq) == (direct.seq, 0)
    world = w.world_from_msg(_through_codec(msg))
    assert world.to_json() == direct.to_json()
    assert world.arm_q == pytest.approx(direct.arm_q)


@pytest.mark.parametrize("cmd", [
    ArmCommand(ee_position_m=(0.4, -0.1, 0.2), yaw_rad=0.3, gripper_width_m=0.02),
    ArmCommand(joint_target=(0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8)),
    ArmCommand.hold_here(0.01),
])
def test_commands_round_trip(cmd: ArmCommand) -> None:
    assert w.command_from_msg(_through_codec(w.command_to_msg(cmd, tick=3))) == cmd


def test_joint_targets_round_trip(scene) -> None:
    kin = PandaKinematics()
    try:
        joints = scene.joint_state()
        cmd = ArmCommand(ee_position_m=(0.5, 0.1, 0.2), yaw_rad=0.3, gripper_width_m=0.0)
        targets = Actuator(kin, ActuatorOptions()).update(joints, 0.0, cmd)
    finally:
        kin.close()
    q, width = w.targets_from_msg(_through_codec(w.targets_to_msg(targets, command_seq=7)))
    np.testing.assert_array_equal(q, targets.arm_q)
    assert width == targets.finger_width_m


def test_a_frame_without_images_is_refused() -> None:
    from realtime import messages as m

    with pytest.raises(ValueError, match="lacks"):
        w.frame_from_msg(m.CameraFrame(width_px=4, height_px=3))
