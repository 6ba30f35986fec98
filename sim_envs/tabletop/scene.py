"""The PyBullet tabletop scene: a Franka Panda, a table, four coloured cubes and a bin.

The scene is the "hardware": it steps physics at 240 Hz, applies joint targets
with position control (forces and speeds from the URDF) and reports joint
states. Object poses are available as *ground truth* for tests and task
success checks only; the agent sees the world through :mod:`sim_envs.tabletop.perception`.

Frames: the world frame is the robot base frame (the Panda's base sits at the
origin), and the table top is the plane ``z = 0``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pybullet as pb
import pybullet_data

from realtime.errors import ConfigError, RtAgentError
from sim_envs.tabletop.camera import Camera, CameraFrame, CameraOptions

__all__ = [
    "ARM_JOINTS",
    "BIN_ID",
    "CUBE_COLOURS",
    "CUBE_IDS",
    "CUBE_SIZE_M",
    "FINGER_JOINTS",
    "GRASP_LINK",
    "HOME_Q",
    "JointState",
    "SceneOptions",
    "ScenePoses",
    "TabletopScene",
    "panda_urdf_path",
]

CUBE_IDS = ("red_cube", "green_cube", "blue_cube", "yellow_cube")
BIN_ID = "bin"
CUBE_SIZE_M = 0.05
CUBE_MASS_KG = 0.08
CUBE_COLOURS: dict[str, tuple[float, float, float]] = {
    "red_cube": (0.85, 0.10, 0.08),
    "green_cube": (0.10, 0.70, 0.15),
    "blue_cube": (0.10, 0.25, 0.90),
    "yellow_cube": (0.95, 0.85, 0.10),
}
BIN_COLOUR = (0.75, 0.20, 0.80)  # magenta: far in hue from the four cubes
BIN_SCALE = 0.5  # traybox.urdf is 0.6 m square; scaled to 0.3 m with 6.7 cm walls
BIN_HALF_INNER_M = 0.11
BIN_WALL_TOP_M = 0.067
TABLE_COLOUR = (0.62, 0.62, 0.60)

ARM_JOINTS = tuple(range(7))
FINGER_JOINTS = (9, 10)
GRASP_LINK = 11  # panda_grasptarget: between the finger tips
HOME_Q = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)
FINGER_OPEN_M = 0.08
FINGER_FORCE_N = 40.0


def _data(name: str) -> str:
    return os.path.join(pybullet_data.getDataPath(), name)


def panda_urdf_path() -> str:
    """The stock Panda URDF from pybullet_data (the kinematic model both sides use)."""
    return _data("franka_panda/panda.urdf")


@cache
def _lowpoly_panda_urdf() -> str:
    """The same Panda with its collision meshes as visuals: 2-5x faster to render on CPU."""
    src = Path(panda_urdf_path()).read_text()
    meshes = _data("franka_panda/meshes") + "/"
    text = src.replace("package://meshes/visual/", "package://meshes/collision/")
    text = text.replace("package://meshes/", meshes)
    text = re.sub(r"collision/(\w+)\.dae", r"collision/\1.obj", text)
    out = Path(tempfile.gettempdir()) / f"rtagent_panda_lowpoly_{os.getuid()}.urdf"
    if not out.exists() or out.read_text() != text:
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(out)
    return str(out)


@dataclass(frozen=True)
class SceneOptions:
    """How the tabletop scene is built and stepped."""

    gui: bool = False
    """Open the PyBullet GUI (needs a display); DIRECT (headless) otherwise."""
    physics_hz: int = 240
    """Physics steps per simulated second."""
    lowpoly_visuals: bool = True
    """Render the arm with its collision meshes (much faster on CPU, same kinematics)."""
    randomize_bin: bool = True
    """Put the bin on the left or right side by seed (else always on the right, y < 0)."""
    camera: CameraOptions = field(default_factory=CameraOptions)

    def __post_init__(self) -> None:
        if not 60 <= self.physics_hz <= 2000:
            raise ConfigError(f"physics_hz: expected 60..2000, got {self.physics_hz}")


@dataclass(frozen=True)
class JointState:
    """Measured joint positions and velocities: 7 arm joints then 2 finger joints."""

    positions: np.ndarray
    velocities: np.ndarray
    sim_time_s: float = 0.0

    @property
    def arm_q(self) -> np.ndarray:
        return self.positions[:7]

    @property
    def finger_width_m(self) -> float:
        return float(self.positions[7] + self.positions[8])


@dataclass(frozen=True)
class ScenePoses:
    """Where every movable body is: all a camera needs to draw the scene.

    The sim process sends these to the camera process, which draws them in its own
    (never stepped) scene, so rendering never stalls the physics loop."""

    objects: dict[str, tuple[tuple[float, float, float], tuple[float, float, float, float]]]
    """Cubes and bin: position (m) and orientation quaternion (x, y, z, w)."""
    joint_positions: tuple[float, ...]
    """The 7 arm joints, then the 2 finger joints."""
    sim_time_s: float = 0.0

    def same_picture(self, other: ScenePoses | None, tol_m: float = 2e-4,
                     tol_rad: float = 1e-3) -> bool:
        """Whether ``other`` draws the same image: nothing moved by more than a small
        fraction of a pixel (a pixel is ~3 mm on the table)."""
        if other is None or other.objects.keys() != self.objects.keys():
            return False
        for name, (pos, quat) in self.objects.items():
            opos, oquat = other.objects[name]
            if max(abs(a - b) for a, b in zip(pos, opos, strict=True)) > tol_m:
                return False
            # q and -q are the same rotation; |<q, q'>| near 1 means (almost) no turn.
            if 1.0 - abs(sum(a * b for a, b in zip(quat, oquat, strict=True))) > tol_rad ** 2 / 8:
                return False
        return max(abs(a - b) for a, b in zip(self.joint_positions, other.joint_positions,
                                              strict=True)) <= tol_rad


class TabletopScene:
    """Owns one PyBullet client with the tabletop world in it."""

    def __init__(self, options: SceneOptions | None = None) -> None:
        self.options = options or SceneOptions()
        if self.options.gui and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise RtAgentError("--gui needs a display, but DISPLAY is not set; "
                               "run without --gui (headless) or from a desktop session")
        mode = pb.GUI if self.options.gui else pb.DIRECT
        self.client = pb.connect(mode)
        if self.client < 0:
            raise RtAgentError("could not start PyBullet; check that pybullet is installed")
        self._closed = False
        self.dt_s = 1.0 / self.options.physics_hz
        self.sim_time_s = 0.0
        self.steps = 0
        c = self.client
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=c)
        pb.setGravity(0, 0, -9.81, physicsClientId=c)
        pb.setTimeStep(self.dt_s, physicsClientId=c)
        pb.setPhysicsEngineParameter(numSolverIterations=80, physicsClientId=c)
        self._build()
        self.camera = Camera(self.options.camera)
        self.rng = np.random.default_rng(0)
        self.bin_side = -1.0

    # -- construction -------------------------------------------------------

    def _build(self) -> None:
        c = self.client
        table_half = (0.55, 0.75, 0.025)
        col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=table_half, physicsClientId=c)
        vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=table_half,
                                   rgbaColor=(*TABLE_COLOUR, 1), physicsClientId=c)
        self.table = pb.createMultiBody(0, col, vis, basePosition=(0.35, 0.0, -table_half[2]),
                                        physicsClientId=c)
        pb.changeDynamics(self.table, -1, lateralFriction=0.8, physicsClientId=c)
        urdf = _lowpoly_panda_urdf() if self.options.lowpoly_visuals else panda_urdf_path()
        self.robot = pb.loadURDF(urdf, (0, 0, 0), useFixedBase=True,
                                 flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=c)
        info = [pb.getJointInfo(self.robot, j, physicsClientId=c) for j in ARM_JOINTS]
        self.arm_force_n = [float(i[10]) for i in info]
        self.arm_max_velocity = [float(i[11]) for i in info]
        for j in FINGER_JOINTS:
            pb.changeDynamics(self.robot, j, lateralFriction=1.5, spinningFriction=0.05,
                              frictionAnchor=True, physicsClientId=c)
        self.bin = pb.loadURDF(_data("tray/traybox.urdf"), (0.45, -0.33, 0.0),
                               globalScaling=BIN_SCALE, useFixedBase=True, physicsClientId=c)
        pb.changeVisualShape(self.bin, -1, textureUniqueId=-1, rgbaColor=(*BIN_COLOUR, 1),
                             physicsClientId=c)
        half = CUBE_SIZE_M / 2
        self.cubes: dict[str, int] = {}
        for name in CUBE_IDS:
            col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=(half,) * 3, physicsClientId=c)
            vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=(half,) * 3,
                                       rgbaColor=(*CUBE_COLOURS[name], 1), physicsClientId=c)
            body = pb.createMultiBody(CUBE_MASS_KG, col, vis, basePosition=(0.5, 0, half),
                                      physicsClientId=c)
            pb.changeDynamics(body, -1, lateralFriction=1.0, spinningFriction=0.01,
                              rollingFriction=0.0001, physicsClientId=c)
            self.cubes[name] = body

    # -- episode ------------------------------------------------------------

    def reset(self, seed: int | None = None, *, bin_side: float | None = None,
              arm_q: tuple[float, ...] | None = None) -> None:
        """Put the arm at ``arm_q`` (home by default) with the gripper open, and place the
        bin and cubes at random by ``seed``."""
        self.rng = np.random.default_rng(seed)
        c = self.client
        start = HOME_Q if arm_q is None else tuple(arm_q)
        for j, q in zip(ARM_JOINTS, start, strict=True):
            pb.resetJointState(self.robot, j, q, 0.0, physicsClientId=c)
        for j in FINGER_JOINTS:
            pb.resetJointState(self.robot, j, FINGER_OPEN_M / 2, 0.0, physicsClientId=c)
        self.set_joint_targets(np.asarray(start), FINGER_OPEN_M)
        if bin_side is not None:
            self.bin_side = -1.0 if bin_side < 0 else 1.0
        elif self.options.randomize_bin:
            self.bin_side = float(self.rng.choice([-1.0, 1.0]))
        else:
            self.bin_side = -1.0
        bin_xy = np.array([0.45 + self.rng.uniform(-0.05, 0.05), self.bin_side * 0.33])
        pb.resetBasePositionAndOrientation(self.bin, (*bin_xy, 0.0), (0, 0, 0, 1),
                                           physicsClientId=c)
        placed: list[np.ndarray] = []
        for name in CUBE_IDS:
            for _ in range(1000):
                xy = np.array([self.rng.uniform(0.33, 0.62), self.rng.uniform(-0.25, 0.25)])
                if abs(xy[1] - bin_xy[1]) < 0.15 + 0.06:
                    continue
                if all(np.linalg.norm(xy - other) > 0.10 for other in placed):
                    break
            placed.append(xy)
            yaw = self.rng.uniform(-math.pi / 4, math.pi / 4)
            quat = pb.getQuaternionFromEuler((0, 0, yaw))
            pb.resetBasePositionAndOrientation(self.cubes[name], (*xy, CUBE_SIZE_M / 2 + 0.001),
                                               quat, physicsClientId=c)
            pb.resetBaseVelocity(self.cubes[name], (0, 0, 0), (0, 0, 0), physicsClientId=c)
        self.sim_time_s = 0.0
        self.steps = 0
        self.step(int(0.1 * self.options.physics_hz))  # let the cubes settle

    def set_joint_targets(self, arm_q: np.ndarray, finger_width_m: float) -> None:
        """Position-control the 7 arm joints to ``arm_q`` and the fingers to a total width."""
        c = self.client
        pb.setJointMotorControlArray(self.robot, list(ARM_JOINTS), pb.POSITION_CONTROL,
                                     targetPositions=[float(q) for q in arm_q],
                                     forces=self.arm_force_n, positionGains=[0.1] * 7,
                                     physicsClientId=c)
        half = float(np.clip(finger_width_m, 0.0, FINGER_OPEN_M)) / 2
        for j in FINGER_JOINTS:
            pb.setJointMotorControl2(self.robot, j, pb.POSITION_CONTROL, targetPosition=half,
                                     force=FINGER_FORCE_N, maxVelocity=0.1, physicsClientId=c)

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            pb.stepSimulation(physicsClientId=self.client)
        self.steps += n
        self.sim_time_s = self.steps * self.dt_s

    # -- sensors --------------------------------------------------------------

    def joint_state(self) -> JointState:
        joints = list(ARM_JOINTS) + list(FINGER_JOINTS)
        states = pb.getJointStates(self.robot, joints, physicsClientId=self.client)
        return JointState(np.array([s[0] for s in states]), np.array([s[1] for s in states]),
                          self.sim_time_s)

    def render(self) -> CameraFrame:
        """One camera frame (RGB, depth in metres, segmentation) at the current sim time."""
        return self.camera.capture(self.client, self.sim_time_s)

    def poses(self) -> ScenePoses:
        """Every movable body's pose now (ground truth: for drawing it elsewhere)."""
        c = self.client
        objects = {}
        for name, body in (*self.cubes.items(), (BIN_ID, self.bin)):
            pos, quat = pb.getBasePositionAndOrientation(body, physicsClientId=c)
            objects[name] = (tuple(pos), tuple(quat))
        joints = pb.getJointStates(self.robot, list(ARM_JOINTS) + list(FINGER_JOINTS),
                                   physicsClientId=c)
        return ScenePoses(objects, tuple(float(j[0]) for j in joints),  # type: ignore[arg-type]
                          self.sim_time_s)

    def set_poses(self, poses: ScenePoses) -> None:
        """Put every body where ``poses`` says, without stepping physics (a camera's mirror)."""
        c = self.client
        bodies = {**self.cubes, BIN_ID: self.bin}
        for name, (pos, quat) in poses.objects.items():
            pb.resetBasePositionAndOrientation(bodies[name], pos, quat, physicsClientId=c)
        for j, q in zip(list(ARM_JOINTS) + list(FINGER_JOINTS), poses.joint_positions, strict=True):
            pb.resetJointState(self.robot, j, q, 0.0, physicsClientId=c)
        self.sim_time_s = poses.sim_time_s

    # -- ground truth (tests, success checks, never the agent) ----------------

    def object_position(self, name: str) -> np.ndarray:
        body = self.bin if name == BIN_ID else self.cubes[name]
        pos, _ = pb.getBasePositionAndOrientation(body, physicsClientId=self.client)
        return np.array(pos)

    def object_yaw(self, name: str) -> float:
        _, quat = pb.getBasePositionAndOrientation(self.cubes[name], physicsClientId=self.client)
        return float(pb.getEulerFromQuaternion(quat)[2])

    def grasp_point(self) -> np.ndarray:
        state = pb.getLinkState(self.robot, GRASP_LINK, computeForwardKinematics=True,
                                physicsClientId=self.client)
        return np.array(state[4])

    def in_bin(self, name: str) -> bool:
        p = self.object_position(name)
        b = self.object_position(BIN_ID)
        inside = bool(np.all(np.abs(p[:2] - b[:2]) < BIN_HALF_INNER_M + 0.01))
        # Resting inside: below the rim, or on another cube that is (at most two high).
        return inside and p[2] < BIN_WALL_TOP_M + CUBE_SIZE_M and not self.touching_gripper(name)

    def on_top_of(self, top: str, bottom: str) -> bool:
        a, b = self.object_position(top), self.object_position(bottom)
        return bool(np.linalg.norm(a[:2] - b[:2]) < CUBE_SIZE_M * 0.5
                    and abs(a[2] - b[2] - CUBE_SIZE_M) < 0.01)

    def touching_gripper(self, name: str) -> bool:
        """Whether both fingers touch the cube (it is held)."""
        contacts = {pt[3] for pt in pb.getContactPoints(self.robot, self.cubes[name],
                                                        physicsClientId=self.client)}
        return all(j in contacts for j in FINGER_JOINTS)

    # -- lifetime --------------------------------------------------------------

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            pb.disconnect(self.client)

    def __enter__(self) -> TabletopScene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a last resort; prefer close() or `with`
        with contextlib.suppress(Exception):
            self.close()
