"""The PyBullet tabletop: a Franka Panda arm, cubes and a bin.

The scene (physics, camera), perception from images, kinematics, motion
planning, skills, IK actuation, the robot tools and tasks, the Gymnasium env,
the in-process :class:`~sim_envs.tabletop.robot.LocalRobot`, and what the robot
demo's sim, perception and actuation processes run (:mod:`sim_envs.tabletop.nodes`,
converting at their edges with :mod:`sim_envs.tabletop.wire`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys


def _import_pybullet_quietly() -> None:
    """Import pybullet with the C-level stdout and stderr pointed at /dev/null: its
    module init prints "pybullet build time: ..." (to stderr) once per process, and
    the robot demo runs four. Every module here imports pybullet after this, so the
    banner never shows; errors still do (a failed import raises after the restore)."""
    if "pybullet" in sys.modules:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(fd) for fd in (1, 2)]
    except (OSError, ValueError, AttributeError):  # no usable fds: nothing to keep clean
        import pybullet  # noqa: F401
        return
    try:
        with open(os.devnull, "wb") as null:
            for fd in (1, 2):
                os.dup2(null.fileno(), fd)
        import pybullet  # noqa: F401

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).fflush(None)  # anything C buffered goes to /dev/null too
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


_import_pybullet_quietly()
