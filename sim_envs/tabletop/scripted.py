"""Run a task's expected tool calls on a :class:`LocalRobot` (no model, no bus).

This is the upper bound an agent can reach on the suite (the right calls, in
order), and the check that every task is physically solvable by the skills.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from control.tools import Effect
from sim_envs.tabletop.robot import LocalRobot, require_world
from sim_envs.tabletop.robot_tools import RobotToolBackend, robot_tool_specs, skill_for
from sim_envs.tabletop.skill_machine import SkillOutcome
from sim_envs.tabletop.tasks import Task

__all__ = ["ScriptedResult", "run_scripted"]


@dataclass
class ScriptedResult:
    task: str
    success: bool
    sim_time_s: float
    ticks: int
    outcomes: list[SkillOutcome] = field(default_factory=list)
    reads: list[Any] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "success": self.success, "sim_time_s": round(self.sim_time_s, 2),
                "ticks": self.ticks, "skills": [o.to_json() for o in self.outcomes]}


def run_scripted(robot: LocalRobot, task: Task, settle_s: float = 0.5) -> ScriptedResult:
    """Reset to the task's seed, run its expected calls one by one, check success."""
    robot.reset(task.seed, task.start_arm_q)
    effects = {s.name: s.effect for s in robot_tool_specs()}
    backend = RobotToolBackend(lambda: require_world(robot), robot.runner,
                               robot.actuator.kin, robot.skill_options)
    result = ScriptedResult(task.id, False, 0.0, 0)
    for call in task.expected:
        if effects[call.name] is Effect.READ:
            result.reads.append(getattr(backend, call.name)(**call.arguments))
            continue
        left = task.max_time_s - robot.scene.sim_time_s
        outcome = robot.run_skill(skill_for(call, robot.skill_options), max_s=max(left, 0.1))
        result.outcomes.append(outcome)
        if not outcome.ok:
            break
    for _ in range(int(settle_s * robot.options.control_hz)):
        robot.tick()
    result.success = task.success(robot.scene)
    result.sim_time_s = robot.scene.sim_time_s
    result.ticks = robot.ticks
    return result
