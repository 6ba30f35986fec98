"""Conversions between the tabletop's plain objects and the bus messages.

The scene, perception and actuation classes know nothing of the bus; the robot
demo's processes (:mod:`sim_envs.tabletop.nodes`, :mod:`control.robot_decision`)
convert at their edges with these functions. Each pair round-trips without loss
of anything the other side uses (tests/sim_envs/tabletop/test_wire.py).

- sim -> perception, actuation: :func:`joints_to_msg`
- sim -> camera: :func:`poses_to_msg` / :func:`poses_from_msg` (every body's pose, to draw)
- camera -> perception: :func:`frame_to_msg` / :func:`frame_from_msg`
- perception -> decision: :func:`world_to_msg` / :func:`world_from_msg`
- decision -> actuation: :func:`command_to_msg` / :func:`command_from_msg`
- actuation -> sim: :func:`targets_to_msg` / :func:`targets_from_msg`

A world state's own counter (:attr:`WorldState.seq`, one per perception update)
travels as ``frame_seq``: the message's ``seq`` belongs to the bus, which stamps
every message with its sender's sequence number (gaps show drops).
"""

from __future__ import annotations

import numpy as np

from realtime import messages as m
from sim_envs.tabletop.actuation import ArmCommand, JointTargets
from sim_envs.tabletop.camera import CameraFrame, Intrinsics
from sim_envs.tabletop.perception import GripperState, ObjectState, WorldState
from sim_envs.tabletop.scene import FINGER_OPEN_M, JointState, ScenePoses

__all__ = [
    "command_from_msg",
    "command_to_msg",
    "frame_from_msg",
    "frame_to_msg",
    "joints_from_msg",
    "joints_to_msg",
    "poses_from_msg",
    "poses_to_msg",
    "targets_from_msg",
    "targets_to_msg",
    "world_from_msg",
    "world_to_msg",
]


def joints_to_msg(state: JointState) -> m.JointState:
    return m.JointState(positions_rad=[float(v) for v in state.positions],
                        velocities_rad_s=[float(v) for v in state.velocities],
                        gripper_opening_m=state.finger_width_m, sim_time_s=state.sim_time_s)


def joints_from_msg(msg: m.JointState) -> JointState:
    return JointState(np.asarray(msg.positions_rad, dtype=np.float64),
                      np.asarray(msg.velocities_rad_s, dtype=np.float64), msg.sim_time_s)


def poses_to_msg(poses: ScenePoses) -> m.WorldState:
    """Ground-truth poses for the camera process, in a WorldState message (the bus has no
    scene-pose type): objects with their orientation, and ``arm_q_rad`` = all 9 joints."""
    objects = [m.ObjectState(id=name, position_m=pos, orientation_xyzw=quat)
               for name, (pos, quat) in poses.objects.items()]
    return m.WorldState(objects=objects, arm_q_rad=list(poses.joint_positions),
                        sim_time_s=poses.sim_time_s)


def poses_from_msg(msg: m.WorldState) -> ScenePoses:
    """Raises ValueError for poses the camera cannot draw (the node drops them)."""
    if len(msg.arm_q_rad) != 9 or any(o.orientation_xyzw is None for o in msg.objects):
        raise ValueError("poses: expected 9 joint positions and every object's orientation")
    objects = {o.id: (tuple(o.position_m), tuple(o.orientation_xyzw))  # type: ignore[arg-type]
               for o in msg.objects}
    return ScenePoses(objects, tuple(msg.arm_q_rad), msg.sim_time_s)  # type: ignore[arg-type]


def frame_to_msg(frame: CameraFrame) -> m.CameraFrame:
    k = frame.intrinsics
    # The view matrix (world -> camera) goes column-major, as PyBullet/OpenGL write it.
    view = np.linalg.inv(frame.cam_to_world)
    return m.CameraFrame(
        width_px=k.width_px, height_px=k.height_px, rgb=frame.rgb, depth_m=frame.depth_m,
        segmentation=frame.segmentation,
        intrinsics=m.CameraIntrinsics(fx_px=k.fx, fy_px=k.fy, cx_px=k.cx, cy_px=k.cy),
        view_matrix=[float(v) for v in view.T.ravel()],
        camera_position_m=tuple(float(v) for v in frame.cam_to_world[:3, 3]),  # type: ignore[arg-type]
        sim_time_s=frame.sim_time_s,
    )


def frame_from_msg(msg: m.CameraFrame) -> CameraFrame:
    """Raises ValueError for a frame perception cannot use (the node drops it)."""
    if msg.rgb is None or msg.depth_m is None or msg.segmentation is None or msg.intrinsics is None:
        raise ValueError("camera frame lacks rgb, depth, segmentation or intrinsics")
    if len(msg.view_matrix) != 16:
        raise ValueError(f"view_matrix: expected 16 numbers, got {len(msg.view_matrix)}")
    k = msg.intrinsics
    view = np.asarray(msg.view_matrix, dtype=np.float64).reshape(4, 4).T
    return CameraFrame(
        rgb=msg.rgb, depth_m=msg.depth_m, segmentation=msg.segmentation,
        intrinsics=Intrinsics(k.fx_px, k.fy_px, k.cx_px, k.cy_px, msg.width_px, msg.height_px),
        cam_to_world=np.linalg.inv(view), sim_time_s=msg.sim_time_s,
    )


def world_to_msg(world: WorldState) -> m.WorldState:
    objects = [
        m.ObjectState(id=o.name, colour=o.colour, shape="box" if o.name != "bin" else "tray",
                      position_m=tuple(o.position_m), visible=o.visible,  # type: ignore[arg-type]
                      yaw_rad=o.yaw_rad, held=o.held, pixels=o.pixels, seen_s=o.seen_s)
        for o in world.objects.values()
    ]
    g = world.gripper
    return m.WorldState(
        version=world.version, frame_seq=world.seq, objects=objects,
        gripper=m.GripperState(position_m=tuple(g.position_m), opening_m=g.width_m,  # type: ignore[arg-type]
                               holding=g.holding),
        arm_q_rad=[float(q) for q in world.arm_q], sim_time_s=world.sim_time_s,
    )


def world_from_msg(msg: m.WorldState) -> WorldState:
    objects = {
        o.id: ObjectState(o.id, o.colour, tuple(o.position_m), o.yaw_rad,  # type: ignore[arg-type]
                          o.visible, o.pixels, o.seen_s, o.held)
        for o in msg.objects
    }
    g = msg.gripper
    gripper = GripperState(tuple(g.position_m), g.opening_m, g.holding)  # type: ignore[arg-type]
    return WorldState(objects, gripper, tuple(msg.arm_q_rad), msg.sim_time_s, msg.frame_seq,
                      msg.version)


def command_to_msg(cmd: ArmCommand, tick: int = 0, deadline_ns: int = 0) -> m.Command:
    return m.Command(
        mode="hold" if cmd.hold else "move",
        target_position_m=tuple(cmd.ee_position_m) if cmd.ee_position_m else None,  # type: ignore[arg-type]
        gripper_width_m=cmd.gripper_width_m, yaw_rad=cmd.yaw_rad,
        joint_target_rad=list(cmd.joint_target) if cmd.joint_target else None,
        tick=tick, deadline_ns=deadline_ns,
    )


def command_from_msg(msg: m.Command) -> ArmCommand:
    """``hold`` and ``safe_stop`` both hold; ``gripper_width_m`` overrides ``gripper``."""
    width = msg.gripper_width_m
    if width is None:
        width = 0.0 if msg.gripper == "close" else FINGER_OPEN_M
    if msg.mode != "move":
        return ArmCommand.hold_here(width)
    return ArmCommand(
        ee_position_m=tuple(msg.target_position_m) if msg.target_position_m else None,  # type: ignore[arg-type]
        yaw_rad=msg.yaw_rad, gripper_width_m=width,
        joint_target=tuple(msg.joint_target_rad) if msg.joint_target_rad else None,
    )


def targets_to_msg(t: JointTargets, command_seq: int = 0) -> m.JointTargets:
    return m.JointTargets(positions_rad=[float(q) for q in t.arm_q],
                          gripper_opening_m=t.finger_width_m, command_seq=command_seq,
                          held=t.holding)


def targets_from_msg(msg: m.JointTargets) -> tuple[np.ndarray, float]:
    """(arm joint targets, finger opening) for :meth:`TabletopScene.set_joint_targets`."""
    width = FINGER_OPEN_M if msg.gripper_opening_m is None else msg.gripper_opening_m
    return np.asarray(msg.positions_rad, dtype=np.float64), float(width)
