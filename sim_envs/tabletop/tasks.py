"""The task suite: instructions, the tool calls that solve them, success checks.

Each :class:`Task` has the instruction a user would type, the scene seed, the
expected tool calls (what a perfect agent calls, in order) and a success check:
an outcome predicate (:mod:`sim_envs.tabletop.predicates`) evaluated on the
*simulator's* ground truth after the run — never perception.
:func:`task_suite` gives the standard suite (31 tasks over 6 seeds).
"""

from __future__ import annotations

from dataclasses import dataclass

from control.tools import ToolCall
from realtime.errors import RtAgentError
from sim_envs.tabletop.predicates import Verdict, parse
from sim_envs.tabletop.scene import CUBE_IDS, TabletopScene
from sim_envs.tabletop.truth import WorldTruth

__all__ = ["Task", "get_task", "task_suite"]

# Arm postures away from home (grasp point over the table, gripper down).
AWAY_POSES = ((0.145, -0.0, 0.235, -2.139, 0.0, 2.139, 0.866),
              (-0.008, -0.072, -0.409, -2.358, -0.038, 2.292, 0.095),
              (0.056, 0.14, -0.059, -1.828, 0.009, 1.968, 0.479))


@dataclass(frozen=True)
class Task:
    id: str
    instruction: str
    seed: int
    expected: tuple[ToolCall, ...]
    check: str
    """An outcome predicate, e.g. ``on(blue_cube, red_cube)``."""
    max_time_s: float = 30.0
    """Sim-time budget for the whole task."""
    start_arm_q: tuple[float, ...] | None = None
    """Where the arm starts (home if None): "go home" tasks start away from home."""

    def __post_init__(self) -> None:
        parse(self.check)  # a bad check fails when the suite is built

    def verdict(self, scene: TabletopScene) -> Verdict:
        return parse(self.check).evaluate(WorldTruth.of(scene))

    def success(self, scene: TabletopScene) -> bool:
        return self.verdict(scene).success

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "instruction": self.instruction, "seed": self.seed,
                "expected": [c.to_json() for c in self.expected], "check": self.check}


def _word(obj: str) -> str:
    return obj.replace("_", " ")


def _call(name: str, **arguments: object) -> ToolCall:
    return ToolCall(name, arguments)


def _in_bin(*objs: str) -> str:
    return " and ".join(f"inside({o}, bin)" for o in objs)


def _lifted(obj: str) -> str:
    return f"height({obj}) > 0.08 and held({obj})"


# Read-only tasks: no cube was moved off the table or lifted.
_UNDISTURBED = " and ".join(f"on({c}, table)" for c in CUBE_IDS)


def _bin_task(seed: int, obj: str, text: str) -> Task:
    return Task(f"bin-{obj}-s{seed}", text.format(_word(obj)), seed,
                (_call("place_on", object=obj, target="bin"),), _in_bin(obj))


def _stack_task(seed: int, top: str, bottom: str) -> Task:
    return Task(f"stack-{top}-on-{bottom}-s{seed}",
                f"stack the {_word(top)} on the {_word(bottom)}", seed,
                (_call("place_on", object=top, target=bottom),),
                f"on({top}, {bottom})")


def _point_task(seed: int, obj: str) -> Task:
    return Task(f"point-{obj}-s{seed}", f"point at the {_word(obj)}", seed,
                (_call("point_at", object=obj),), f"pointing_at({obj})", 15.0)


def _move_task(seed: int, x: float, y: float, z: float) -> Task:
    return Task(f"move-{x}-{y}-{z}-s{seed}", f"move the gripper to x {x} y {y} z {z}", seed,
                (_call("move_to", x=x, y=y, z=z),), f"gripper_at({x}, {y}, {z})", 15.0)


def task_suite(seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5)) -> list[Task]:
    """The standard suite: every kind of task, objects rotating over the seeds."""
    tasks: list[Task] = []
    bin_texts = ("put the {} in the bin", "drop the {} into the bin",
                 "throw the {} in the bin")
    home_texts = ("go home", "return to the home position", "go back to your start pose")
    moves = ((0.5, 0.0, 0.3), (0.4, 0.2, 0.25), (0.55, -0.15, 0.2), (0.45, 0.1, 0.4))
    for k, seed in enumerate(seeds):
        a, b = CUBE_IDS[k % 4], CUBE_IDS[(k + 1) % 4]
        c, d = CUBE_IDS[(k + 2) % 4], CUBE_IDS[(k + 3) % 4]
        tasks.append(_bin_task(seed, a, bin_texts[k % len(bin_texts)]))
        tasks.append(_stack_task(seed, b, c))
        tasks.append(_point_task(seed, d))
        if k % 2 == 0:
            tasks.append(_move_task(seed, *moves[(k // 2) % len(moves)]))
        else:
            tasks.append(Task(f"home-s{seed}", home_texts[(k // 2) % len(home_texts)], seed,
                              (_call("go_home"),), "at_home()", 15.0,
                              AWAY_POSES[(k // 2) % len(AWAY_POSES)]))
        if k % 3 == 0:
            tasks.append(Task(f"pick-{c}-s{seed}", f"pick up the {_word(c)}", seed,
                              (_call("grasp", object=c),), _lifted(c), 20.0))
        elif k % 3 == 1:
            tasks.append(Task(f"two-in-bin-{a}-{c}-s{seed}",
                              f"put the {_word(a)} and the {_word(c)} in the bin", seed,
                              (_call("place_on", object=a, target="bin"),
                               _call("place_on", object=c, target="bin")),
                              _in_bin(a, c), 45.0))
        else:
            tasks.append(Task(f"bin-then-home-{d}-s{seed}",
                              f"put the {_word(d)} in the bin and go home", seed,
                              (_call("place_on", object=d, target="bin"), _call("go_home")),
                              f"{_in_bin(d)} and at_home()", 40.0))
    tasks.append(Task("where-is-green-s0", "where is the green cube?", seeds[0],
                      (_call("locate_object", object="green_cube"),), _UNDISTURBED, 5.0))
    return tasks


def get_task(task_id: str) -> Task:
    for t in task_suite():
        if t.id == task_id:
            return t
    raise RtAgentError(f"no task {task_id!r}; run `rtagent bench sim --list-tasks` for the ids")
