"""What speculation did: hits, accuracy, latency saved, waste, writes blocked."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["SpeculationMetrics"]


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


@dataclass
class SpeculationMetrics:
    """Counters of one executor (or a sum of several, see :meth:`merge`)."""

    calls: int = 0             # real calls the agent made
    hits: int = 0              # served from a finished speculative run
    joins: int = 0             # served by joining a speculative run still in flight
    direct: int = 0            # ran for real
    top1: int = 0              # the call was the top prediction made before it
    topk: int = 0              # the call was among the top-K predictions made before it
    launched: int = 0          # speculative runs started (real runs of read-only tools)
    dry_runs: int = 0          # dry runs started ahead (never served as results)
    cancelled: int = 0         # speculative runs cancelled as useless
    invalidated: int = 0       # speculative results dropped because a write changed a read
    expired: int = 0           # speculative results not served: older than their tool's max age
    unused: int = 0            # speculative results never served
    writes_attempted: int = 0  # predictions of tools that write or are denied
    writes_blocked: int = 0    # ...of which none ran for real (all of them, by construction)
    writes_executed: int = 0   # real runs of write/deny tools ahead of the agent: must be 0
    predictor_errors: int = 0  # predictor or guesser raised (speculation skipped)
    refused: int = 0           # speculative invocations the policy guard refused
    skipped_budget: int = 0    # predictions not launched for lack of budget or slack
    latency_saved_s: float = 0.0
    wasted_s: float = 0.0      # tool time of speculative runs never served
    wasted_cpu_s: float = 0.0  # CPU of those runs (from the executor's cpu_s_fn)
    dry_run_s: float = 0.0
    overhead_cpu_s: float = 0.0  # CPU of predicting and bookkeeping
    flags: deque[tuple[str, bool]] = field(default_factory=lambda: deque(maxlen=1000))

    @property
    def served(self) -> int:
        return self.hits + self.joins

    @property
    def hit_rate(self) -> float:
        return _ratio(self.served, self.calls)

    @property
    def top1_rate(self) -> float:
        return _ratio(self.top1, self.calls)

    @property
    def topk_rate(self) -> float:
        return _ratio(self.topk, self.calls)

    @property
    def overhead_per_saved(self) -> float:
        """Core-seconds of speculation overhead per second of latency saved."""
        return _ratio(self.overhead_cpu_s, self.latency_saved_s)

    def flag(self, key: str, speculative: bool) -> None:
        """Record whether a call was served from speculation (True) or ran directly."""
        self.flags.append((key, speculative))

    def merge(self, other: SpeculationMetrics) -> None:
        for f in fields(self):
            if f.name != "flags":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)
                               if f.name != "flags"}
        out.update(hit_rate=self.hit_rate, top1_rate=self.top1_rate, topk_rate=self.topk_rate,
                   overhead_core_s_per_s_saved=self.overhead_per_saved)
        return out
