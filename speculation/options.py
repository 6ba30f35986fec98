"""How much the speculative executor may speculate (its budget and policy knobs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from control.tools import ToolCall
from realtime.errors import ConfigError

__all__ = ["SpeculationOptions"]


@dataclass(frozen=True)
class SpeculationOptions:
    """How much to speculate."""

    max_concurrency: int = 4         # speculative runs in flight at once
    top_k: int = 3                   # predictions launched after each call
    min_probability: float = 0.05    # below this a prediction is not launched
    max_depth: int = 2               # 2: also prepare the call after next
    multi_step_min_probability: float = 0.5  # only likely runs get a follow-up predicted
    max_expected_waste: float = 0.5  # launch only if (1 - p) * CPU share <= this (cpu_s_fn)
    launch_at_issue: bool = True     # predict the next call as soon as one is issued
    dry_runs: bool = True            # run dry runs of dry_run tools ahead
    cpu_headroom: float = 0.0        # cores that must stay spare (needs spare_cores_fn)
    spare_cores_fn: Callable[[], float] | None = None
    slack_fn: Callable[[], float] | None = None  # the control loop's spare time now, in ms
    min_slack_ms: float = 0.0        # speculate only while slack_fn() > this
    max_entries: int = 256           # speculative results kept
    history_len: int = 64            # committed calls kept for derivations
    cpu_s_fn: Callable[[ToolCall, float], float] | None = None  # CPU-s of a run lasting s
    cpu_clock: Callable[[], float] = time.thread_time  # for the overhead figure only
    # Reads that change with time (x-depends-on-clock) and declare no x-max-age-ms are served
    # at most this old: a turn (from a partial transcript's speculation to the decoded call).
    clock_read_max_age_ms: float = 5000.0
    clock_s: Callable[[], float] | None = None  # ages are measured on it; None: the event loop's

    def __post_init__(self) -> None:
        for name in ("max_concurrency", "top_k", "max_depth", "max_entries", "history_len"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < (0 if name == "top_k" else 1):
                raise ConfigError(f"SpeculationOptions.{name}: expected a positive int, got {v!r}")
        if not 0.0 <= self.min_probability <= 1.0:
            raise ConfigError("SpeculationOptions.min_probability: expected 0..1, "
                              f"got {self.min_probability}")
        if not 0.0 <= self.clock_read_max_age_ms < float("inf"):
            raise ConfigError("SpeculationOptions.clock_read_max_age_ms: expected a finite "
                              f"number of ms >= 0, got {self.clock_read_max_age_ms}")
        if self.cpu_headroom < 0:
            raise ConfigError(f"SpeculationOptions.cpu_headroom: expected >= 0 cores, "
                              f"got {self.cpu_headroom}")
