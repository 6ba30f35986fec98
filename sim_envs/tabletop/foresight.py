"""What the robot's calls should leave behind: the next instruction decoded early.

:class:`RobotForesight` is the robot's :class:`control.agent.Foresight`. While a
motion runs (seconds), the agent decodes the next queued instruction (about a
second) on the world the running calls predict — the placed cube on its target,
the gripper empty or holding — and, when that instruction's turn starts, keeps
those calls only if perception then agrees: the same objects in view, the same
held object, every cube within ``tolerance_m`` of where it was predicted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from control.tools import ToolCall
from sim_envs.tabletop.perception import WorldState
from sim_envs.tabletop.scene import BIN_ID, CUBE_SIZE_M

__all__ = ["RobotForesight"]

# Calls that leave the cubes and the gripper's load as they were.
_NO_CHANGE = frozenset({"move_to", "point_at", "go_home", "detect_objects", "locate_object",
                        "plan_grasp", "plan_path"})


class RobotForesight:
    """``world``: the latest perceived world; ``context``: ``(text, world) -> DecodeContext``."""

    def __init__(self, world: Callable[[], WorldState],
                 context: Callable[[str, WorldState], Any], tolerance_m: float = 0.08) -> None:
        self.world = world
        self._context = context
        self.tolerance_m = tolerance_m

    def predict(self, calls: Sequence[ToolCall]) -> WorldState | None:
        w = self.world()
        objects = dict(w.objects)
        holding = w.gripper.holding
        for call in calls:
            a = call.arguments
            if call.name == "grasp":
                holding = str(a["object"])
            elif call.name == "release":
                holding = None
            elif call.name == "place_on":
                obj, target = str(a["object"]), str(a["target"])
                if obj not in objects or target not in objects:
                    return None
                x, y, z = objects[target].position_m
                z += CUBE_SIZE_M / 2 if target == BIN_ID else CUBE_SIZE_M
                objects[obj] = replace(objects[obj], position_m=(x, y, z), held=False)
                holding = None
            elif call.name not in _NO_CHANGE:
                return None  # a tool whose outcome this does not model
        return replace(w, objects=objects, gripper=replace(w.gripper, holding=holding))

    def context(self, text: str, observation: WorldState) -> Any:
        return self._context(text, observation)

    def matches(self, predicted: WorldState) -> bool:
        w = self.world()
        if w.gripper.holding != predicted.gripper.holding:
            return False
        if set(w.visible()) != set(predicted.visible()):
            return False
        return all(
            float(np.linalg.norm(np.subtract(w.objects[n].position_m,
                                             predicted.objects[n].position_m))) <= self.tolerance_m
            for n in w.visible() if n != BIN_ID)
