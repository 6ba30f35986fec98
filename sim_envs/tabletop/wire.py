"""Conversions between the sim side's plain objects and the bus messages.

The sim, perception and actuation classes know nothing of the bus; a process
wrapping one of them converts with these functions (both directions are
lossless for everything the other side uses).

- sim -> everyone: :func:`joint_state_msg`, :func:`camera_frame_msg`
- perception -> decision: :func:`world_state_msg` / :func:`world_state_from_msg`
- decision -> actuation: :func:`command_msg` / :func:`command_from_msg`
- actuation -> sim: :func:`joint_targets_msg` / :func:`joint_targets_from_msg`
"""

from __future__ import annotations

import numpy as np

from realtime import messages as m
from sim_envs.tabletop.actuation import ArmCommand, JointTargets
from sim_envs.tabletop.camera import Camera, CameraFrame, Intrinsics
from sim_envs.tabletop.perception import GripperState, ObjectState, WorldState
from sim_envs.tabletop.scene import FINGER_OPEN_M, JointState

__all__ = ["camera_frame_from_msg", "camera_frame_msg", "command_from_msg", "command_msg",
           "joint_state_from_msg", "joint_state_msg", "joint_targets_from_msg",
           "joint_targets_msg", "world_state_from_msg", "world_state_msg"]

JOINT_NAMES = [f"panda_joint{i}" for i in range(1, 8)] + ["panda_finger_joint1",
                                                           "panda_finger_joint2"]


def joint_state_msg(js: JointState) -> m.JointState:
    return m.JointState(names=list(JOINT_NAMES), positions_rad=js.positions.tolist(),
                        velocities_rad_s=js.velocities.tolist(),
                        gripper_opening_m=js.finger_width_m, sim_time_s=js.sim_time_s)


def joint_state_from_msg(msg: m.JointState) -> JointState:
    return JointState(np.asarray(msg.positions_rad, dtype=np.float64),
                      np.asarray(msg.velocities_rad_s, dtype=np.float64), msg.sim_time_s)


def camera_frame_msg(frame: CameraFrame, camera: Camera) -> m.CameraFrame:
    k, o = frame.intrinsics, camera.options
    return m.CameraFrame(
        width_px=k.width_px, height_px=k.height_px, rgb=frame.rgb, depth_m=frame.depth_m,
        segmentation=frame.segmentation,
        intrinsics=m.CameraIntrinsics(fx_px=k.fx, fy_px=k.fy, cx_px=k.cx, cy_px=k.cy),
        view_matrix=[float(v) for v in camera.view],
        projection_matrix=[float(v) for v in camera.projection],
        camera_position_m=tuple(float(v) for v in o.eye_m),  # type: ignore[arg-type]
        near_m=o.near_m, far_m=o.far_m, sim_time_s=frame.sim_time_s)


def camera_frame_from_msg(msg: m.CameraFrame) -> CameraFrame:
    if msg.rgb is None or msg.depth_m is None or msg.intrinsics is None or not msg.view_matrix:
        raise ValueError("a camera frame for perception needs rgb, depth_m, intrinsics and "
                         "view_matrix")
    world_to_cam = np.asarray(msg.view_matrix, dtype=np.float64).reshape(4, 4).T
    seg = msg.segmentation if msg.segmentation is not None else \
        np.zeros((msg.height_px, msg.width_px), np.int32)
    k = msg.intrinsics
    return CameraFrame(np.asarray(msg.rgb), np.asarray(msg.depth_m), np.asarray(seg),
                       Intrinsics(k.fx_px, k.fy_px, k.cx_px, k.cy_px, msg.width_px,
                                  msg.height_px),
                       np.linalg.inv(world_to_cam), msg.sim_time_s)


def world_state_msg(ws: WorldState) -> m.WorldState:
    objects = [m.ObjectState(id=o.name, colour=o.colour,
                             shape="bin" if o.name == "bin" else "cube",
                             position_m=o.position_m, visible=o.visible, yaw_rad=o.yaw_rad,
                             held=o.held, pixels=o.pixels, seen_s=o.seen_s)
               for o in ws.objects.values()]
    g = ws.gripper
    return m.WorldState(version=ws.version, objects=objects,
                        gripper=m.GripperState(position_m=g.position_m, opening_m=g.width_m,
                                               holding=g.holding),
                        arm_q_rad=list(ws.arm_q), sim_time_s=ws.sim_time_s, seq=ws.seq)


def world_state_from_msg(msg: m.WorldState) -> WorldState:
    objects = {o.id: ObjectState(o.id, o.colour, tuple(o.position_m), o.yaw_rad,  # type: ignore[arg-type]
                                 o.visible, o.pixels, o.seen_s, o.held) for o in msg.objects}
    g = msg.gripper
    return WorldState(objects, GripperState(tuple(g.position_m), g.opening_m, g.holding),  # type: ignore[arg-type]
                      tuple(msg.arm_q_rad), msg.sim_time_s, msg.seq, msg.version)


def command_msg(cmd: ArmCommand, tick: int = 0, deadline_ns: int = 0) -> m.Command:
    return m.Command(mode="hold" if cmd.hold else "move", target_position_m=cmd.ee_position_m,
                     yaw_rad=cmd.yaw_rad,
                     gripper_width_m=cmd.gripper_width_m,
                     joint_target_rad=list(cmd.joint_target) if cmd.joint_target else None,
                     tick=tick, deadline_ns=deadline_ns)


def command_from_msg(msg: m.Command) -> ArmCommand:
    """``hold`` and ``safe_stop`` both hold; the actuation process calls ``safe_stop()``
    on the latter itself."""
    if msg.gripper_width_m is not None:
        width = msg.gripper_width_m
    else:
        width = 0.0 if msg.gripper == "close" else FINGER_OPEN_M
    if msg.mode != "move":
        return ArmCommand.hold_here(width)
    return ArmCommand(ee_position_m=msg.target_position_m, yaw_rad=msg.yaw_rad,
                      gripper_width_m=width,
                      joint_target=tuple(msg.joint_target_rad) if msg.joint_target_rad else None)


def joint_targets_msg(t: JointTargets, command_seq: int = 0) -> m.JointTargets:
    return m.JointTargets(positions_rad=t.arm_q.tolist(), gripper_opening_m=t.finger_width_m,
                          command_seq=command_seq, held=t.holding)


def joint_targets_from_msg(msg: m.JointTargets) -> tuple[np.ndarray, float]:
    """``(arm_q, finger_width_m)`` for :meth:`TabletopScene.set_joint_targets`."""
    width = FINGER_OPEN_M if msg.gripper_opening_m is None else msg.gripper_opening_m
    return np.asarray(msg.positions_rad, dtype=np.float64), float(width)
