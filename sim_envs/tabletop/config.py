"""The robot demo's settings: one validated dataclass, sent to every process as JSON.

The front-end (``demos/robot.py``) builds a :class:`RobotDemoConfig`;
:class:`demos.robot_session.RobotSession` starts each process as
``python -m MODULE NAME CONFIG_JSON``; the processes (:mod:`sim_envs.tabletop.nodes`,
:mod:`control.robot_node`) read it back with :meth:`RobotDemoConfig.from_json`.
A bad value is refused here, in the front-end, before any process starts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from realtime.errors import ConfigError

__all__ = ["JOINTS_MAX_AGE_MS", "WORLD_MAX_AGE_MS", "RobotDemoConfig"]

WORLD_MAX_AGE_MS = 500.0  # older world states are not acted on
JOINTS_MAX_AGE_MS = 200.0  # older joint states are not perceived or actuated on
PHYSICS_HZ = 240.0  # the scene's step rate (SceneOptions.physics_hz)


@dataclass(frozen=True)
class RobotDemoConfig:
    """Everything the five processes need.

    ``hz``: the decision loop's rate. ``physics_wake_hz``: how often the sim process
    wakes to step physics (to 240 Hz of simulated time). ``watchdog_ms``: actuation
    holds the arm when no command came for this long, and the sim ignores joint
    targets older than it. ``lora``: ``"default"`` is the shipped adapter when there
    is one; ``None`` decodes with the base model only.
    """

    seed: int = 0
    hz: float = 16.0
    camera_hz: float = 16.0
    # 60: 4 physics steps (~1 ms) per wake. At 120 the sim missed 10% of its ticks with
    # the decoder running on 2 busy cores, at 60 2% (measured); the actuator's set-points
    # are time-based, so applying them at 60 Hz samples the same trajectory.
    physics_wake_hz: float = 60.0
    actuation_hz: float = 80.0
    watchdog_ms: float = 300.0
    gui: bool = False
    decoder: str = "simpletool"
    model: str | None = None
    lora: str | None = "default"
    # One: the sim holds a core, and the demos' threads sleep at each barrier, so a second
    # decoder thread costs more waking than it computes (20 tokens: 61 vs 70 ms here).
    decoder_threads: int = 1
    speculation: bool = True
    foresight: bool = True  # decode the next queued instruction while a motion runs
    fifo: bool = True  # the decision and physics loops SCHED_FIFO where permitted (else as is)
    camera_noise: bool = False  # the camera process adds sensor noise and varies the light
    trace_label: str = ""  # with tracing on: process names become "LABEL/sim", ...

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed: expected an int >= 0, got {self.seed!r}")
        for name, low, high in (("hz", 1.0, 60.0), ("camera_hz", 0.5, 60.0),
                                ("physics_wake_hz", 1.0, PHYSICS_HZ),
                                ("actuation_hz", 1.0, PHYSICS_HZ)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"{name}: expected {low:g}..{high:g}, got {value!r}")
        period_ms = 1000.0 / self.hz
        if not period_ms < self.watchdog_ms <= 10_000.0:
            raise ConfigError(f"watchdog_ms: expected more than one decision period "
                              f"({period_ms:g} ms at {self.hz:g} Hz) and at most 10000, "
                              f"got {self.watchdog_ms!r}")
        if not self.decoder:
            raise ConfigError("decoder: expected a decoder name (simpletool or baseline), got ''")
        if not isinstance(self.decoder_threads, int) or not 1 <= self.decoder_threads <= 64:
            raise ConfigError(f"decoder_threads: expected 1..64, got {self.decoder_threads!r}")
        if "/" in self.trace_label:
            raise ConfigError(f"trace_label: expected no '/', got {self.trace_label!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RobotDemoConfig:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ConfigError(f"RobotDemoConfig: expected a JSON object, got {text[:80]!r}")
        unknown = sorted(data.keys() - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"RobotDemoConfig: unknown field(s) {unknown}; "
                              "the front-end and the processes must come from the same version")
        return cls(**data)
