"""What a :class:`~realtime.supervisor.Supervisor` is told and what it reports:
one :class:`ProcessSpec` per process, :class:`SupervisorOptions`, the states a
process goes through (:class:`ProcState`) and the :class:`SupervisorReport`."""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from realtime.errors import ConfigError

__all__ = [
    "ProcState",
    "ProcessSpec",
    "SupervisorOptions",
    "SupervisorReport",
    "describe_exit",
    "python_module",
]


def python_module(module: str, *args: str) -> tuple[str, ...]:
    """``argv`` running ``python -m module args…`` with this interpreter."""
    return (sys.executable, "-m", module, *args)


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process. ``heartbeat_timeout_ms=None``: watch exits only.

    ``startup_grace_ms``: time allowed from the start until the node is ready
    (its first heartbeat in a state other than ``starting``; beats meanwhile keep
    it from the heartbeat timeout, not from this one). ``stall_timeout_ms``: once
    ready, the longest its heartbeats may carry an unchanged tick count (None:
    ``heartbeat_timeout_ms``). ``turn_timeout_ms``: the longest one agent turn
    may run (None: not checked). ``stable_reset_ms``: how long a process must
    run after becoming ready for its restart count to reset (None: never).
    """

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    restart: bool = True
    max_restarts: int = 3
    backoff_initial_ms: float = 200.0
    backoff_max_ms: float = 5000.0
    heartbeat_timeout_ms: float | None = 2000.0
    startup_grace_ms: float = 15000.0
    critical: bool = True
    stall_timeout_ms: float | None = None
    turn_timeout_ms: float | None = None
    stable_reset_ms: float | None = 60_000.0

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"ProcessSpec.name: expected letters, digits, -, _; got {self.name!r}")
        if not self.argv:
            raise ConfigError(f"ProcessSpec {self.name!r}: argv is empty")
        if self.max_restarts < 0 or self.backoff_initial_ms < 0 or self.backoff_max_ms < 0:
            raise ConfigError(f"ProcessSpec {self.name!r}: restarts and back-off must be >= 0")
        for name in ("heartbeat_timeout_ms", "stall_timeout_ms", "turn_timeout_ms",
                     "stable_reset_ms"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"ProcessSpec.{name}: expected > 0 or None, got {value!r}")
        if not self.startup_grace_ms > 0:
            raise ConfigError(
                f"ProcessSpec.startup_grace_ms: expected > 0, got {self.startup_grace_ms!r}")

    @property
    def stall_ms(self) -> float | None:
        """The tick stall timeout in force."""
        return self.stall_timeout_ms if self.stall_timeout_ms is not None else (
            self.heartbeat_timeout_ms)


@dataclass(frozen=True)
class SupervisorOptions:
    stop_grace_ms: float = 3000.0  # SIGTERM -> SIGKILL
    poll_ms: float = 50.0  # how often run() checks its processes
    orphan_grace_ms: float = 500.0  # the supervisor died: its watcher's SIGTERM -> SIGKILL

    def __post_init__(self) -> None:
        if self.stop_grace_ms < 0 or self.poll_ms <= 0 or self.orphan_grace_ms < 0:
            raise ConfigError(
                f"SupervisorOptions: expected stop_grace_ms >= 0, poll_ms > 0 and "
                f"orphan_grace_ms >= 0, got {self.stop_grace_ms!r}, {self.poll_ms!r}, "
                f"{self.orphan_grace_ms!r}"
            )


class ProcState(StrEnum):
    STARTING = "starting"  # started, not ready yet
    RUNNING = "running"  # ready: said so in a heartbeat
    BACKOFF = "backoff"  # crashed, waiting to restart
    EXITED = "exited"  # finished with status 0, not restarted
    FAILED = "failed"  # gave up restarting
    STOPPED = "stopped"  # stopped by the supervisor


@dataclass
class SupervisorReport:
    """What happened: per-process starts, restarts, exits and final state, plus events."""

    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (t_s, name, what)
    stopped_because: str = ""

    def format(self) -> str:
        lines = [f"supervisor: stopped ({self.stopped_because or 'not stopped'})"]
        for name, p in self.processes.items():
            exits = ", ".join(p["exits"]) or "none"
            lines.append(
                f"  {name:<16} {p['state']:<9} starts={p['starts']} restarts={p['restarts']} "
                f"exits: {exits}"
            )
        return "\n".join(lines)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"
