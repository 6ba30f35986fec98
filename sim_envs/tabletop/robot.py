"""The whole robot in one process, stepped in simulated time (tests, benchmarks, the env).

:class:`LocalRobot` wires the same plain parts the demo runs as separate
processes — the scene (sim), :class:`~sim_envs.tabletop.perception.Perception`,
:class:`~sim_envs.tabletop.actuation.Actuator` and a :class:`~sim_envs.tabletop.skill_machine.SkillRunner`
— and advances them in lock-step: each control tick renders one frame,
perceives, asks the runner for a command, then runs physics with actuation
updates in between. Time is the simulator's, so it runs as fast as the CPU allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from realtime.errors import ConfigError, RtAgentError
from sim_envs.tabletop.actuation import Actuator, ActuatorOptions, ArmCommand, JointTargets
from sim_envs.tabletop.camera import CameraFrame
from sim_envs.tabletop.kinematics import PandaKinematics
from sim_envs.tabletop.perception import Perception, PerceptionOptions, WorldState
from sim_envs.tabletop.scene import SceneOptions, TabletopScene
from sim_envs.tabletop.skill_machine import Skill, SkillOptions, SkillOutcome, SkillRunner

__all__ = ["LocalRobot", "RobotOptions"]


@dataclass(frozen=True)
class RobotOptions:
    control_hz: float = 16.0
    """Decision rate: one camera frame, one perception update and one command per tick."""
    actuation_every_steps: int = 3
    """Physics steps between actuator updates (3 at 240 Hz = 80 Hz)."""
    frame_every_ticks: int = 1
    """Render and look at a camera frame every this many ticks (the gripper, from the
    encoders, is refreshed every tick). 1 matches the demo; 2 halves the render cost."""
    scene: SceneOptions = field(default_factory=SceneOptions)
    actuator: ActuatorOptions = field(default_factory=ActuatorOptions)
    perception: PerceptionOptions = field(default_factory=PerceptionOptions)

    def __post_init__(self) -> None:
        if not 1.0 <= self.control_hz <= 60.0:
            raise ConfigError(f"control_hz: expected 1..60, got {self.control_hz}")
        if not 1 <= self.actuation_every_steps <= 24:
            raise ConfigError(
                f"actuation_every_steps: expected 1..24, got {self.actuation_every_steps}")
        if not 1 <= self.frame_every_ticks <= 16:
            raise ConfigError(f"frame_every_ticks: expected 1..16, got {self.frame_every_ticks}")

    @property
    def steps_per_tick(self) -> int:
        return max(1, round(self.scene.physics_hz / self.control_hz))

    def skill_options(self) -> SkillOptions:
        return SkillOptions(tick_s=self.steps_per_tick / self.scene.physics_hz)


class LocalRobot:
    """Scene + perception + actuation + skills, advanced one control tick at a time."""

    def __init__(self, options: RobotOptions | None = None) -> None:
        self.options = options or RobotOptions()
        self.scene = TabletopScene(self.options.scene)
        self.actuator = Actuator(PandaKinematics(), self.options.actuator)
        self.perception = Perception(self.options.perception, PandaKinematics())
        self.runner = SkillRunner()
        self.world: WorldState | None = None
        self.frame: CameraFrame | None = None  # the last frame perceived
        self.last_targets: JointTargets | None = None
        self.ticks = 0
        self.tick_hooks: list[Callable[[LocalRobot], None]] = []
        """Called each tick between perceiving and acting: the world state, the frame and the
        simulator are at the same instant (e.g. to score perception against ground truth)."""

    @property
    def skill_options(self) -> SkillOptions:
        return self.options.skill_options()

    def reset(self, seed: int | None = None,
              arm_q: tuple[float, ...] | None = None) -> WorldState:
        """A new episode: scene by ``seed``, arm at ``arm_q`` (home if None)."""
        self.runner.reset()
        self.scene.reset(seed, arm_q=arm_q)
        self.actuator.reset()
        self.perception.reset()
        self.ticks = 0
        return self.perceive()

    def perceive(self) -> WorldState:
        look = self.ticks % self.options.frame_every_ticks == 0
        frame = self.scene.render() if look else None
        self.frame = frame or self.frame
        self.world = self.perception.update(frame, self.scene.joint_state())
        return self.world

    def apply(self, command: ArmCommand | None) -> None:
        """Run one control tick of physics, updating the actuator along the way."""
        n, every = self.options.steps_per_tick, self.options.actuation_every_steps
        done = 0
        while done < n:
            state = self.scene.joint_state()
            self.last_targets = self.actuator.update(state, self.scene.sim_time_s,
                                                     command if done == 0 else None)
            self.scene.set_joint_targets(self.last_targets.arm_q,
                                         self.last_targets.finger_width_m)
            k = min(every, n - done)
            self.scene.step(k)
            done += k

    def tick(self) -> WorldState:
        """Perceive, let the running skill decide, act. Returns the world it decided on."""
        world = self.perceive()
        for hook in self.tick_hooks:
            hook(self)
        self.apply(self.runner.step(world))
        self.ticks += 1
        return world

    def run_skill(self, skill: Skill, max_s: float = 30.0) -> SkillOutcome:
        """Submit ``skill`` and tick until it ends (or ``max_s`` of sim time passes)."""
        handle = self.runner.submit(skill)
        limit = int(max_s * self.options.control_hz)
        for _ in range(limit):
            self.tick()
            if handle.finished:
                break
        else:
            self.runner.cancel(f"no result after {max_s} s of sim time")
        return handle.wait(0)

    def close(self) -> None:
        self.runner.cancel("closed")
        self.scene.close()
        self.actuator.kin.close()
        if self.perception.kinematics is not None:
            self.perception.kinematics.close()

    def __enter__(self) -> LocalRobot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def require_world(robot: LocalRobot) -> WorldState:
    if robot.world is None:
        raise RtAgentError("no world state yet: call reset() first")
    return robot.world
