"""Speculation policy over the tool metadata in :mod:`control.tools`.

A tool's ``x-effect``, ``x-speculation`` and ``x-resources`` decide what the
speculative executor may do with a predicted call:

- :func:`ahead_mode` says whether the call may run ahead for real, only as
  its dry run, or not at all;
- :func:`guard_speculative` is the check made at the point of invocation
  (the executor calls it immediately before it runs anything speculatively);
- :class:`ResourceVersions` counts writes per resource, so a result is valid
  only while the resources it read keep the version they had when it started;
- :func:`max_age_s` bounds how long a result stays valid at all, for reads that
  change with time, which no write announces (``x-max-age-ms``, ``x-depends-on-clock``).

Resources are names such as ``"light:kitchen"``; a ``"*"`` part (an argument
the call did not give) matches any value there.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from enum import StrEnum

from control.tools import Effect, SpeculationPolicy, Tool, ToolCall, ToolRegistry, ToolSpec
from realtime.errors import RtAgentError

__all__ = [
    "AheadMode",
    "ResourceVersions",
    "SpeculationPolicyError",
    "ahead_mode",
    "call_resources",
    "max_age_s",
    "guard_speculative",
    "resources_overlap",
    "spare_cores",
]


class SpeculationPolicyError(RtAgentError):
    """Something tried to run a tool ahead that its metadata forbids."""


class AheadMode(StrEnum):
    RUN = "run"          # read-only, x-speculation "allow": may run ahead for real
    DRY_RUN = "dry_run"  # only its dry run may run ahead; never served as the real result
    NEVER = "never"      # x-speculation "deny" (or no dry run to use): never runs ahead


def ahead_mode(tool: Tool) -> AheadMode:
    """What may run ahead for ``tool`` (unsafe metadata means never)."""
    spec = tool.spec
    if spec.speculation is SpeculationPolicy.ALLOW and spec.effect is Effect.READ:
        return AheadMode.RUN
    if spec.speculation is SpeculationPolicy.DRY_RUN and tool.dry_run is not None:
        return AheadMode.DRY_RUN
    return AheadMode.NEVER


def guard_speculative(tool: Tool, *, dry_run: bool) -> None:
    """Raise unless ``tool`` may be invoked ahead of the agent in this way.

    Called at the point of invocation, so a bug elsewhere (a predictor, a
    cache, a caller of ``speculate``) cannot make a side effect happen early.
    """
    mode = ahead_mode(tool)
    if dry_run:
        if mode is AheadMode.NEVER or tool.dry_run is None:
            raise SpeculationPolicyError(
                f"tool {tool.spec.name!r} has x-speculation {tool.spec.speculation!s}; "
                "its dry run may not run ahead")
        return
    if mode is not AheadMode.RUN:
        raise SpeculationPolicyError(
            f"tool {tool.spec.name!r} (x-effect {tool.spec.effect!s}, x-speculation "
            f"{tool.spec.speculation!s}) may not run ahead for real")


def max_age_s(spec: ToolSpec, clock_read_max_age_ms: float) -> float | None:
    """How long after it started a speculative result of ``spec`` may be served (None: for
    as long as what it read is unchanged): the spec's ``x-max-age-ms``, else, for a read that
    depends on the clock, ``clock_read_max_age_ms``."""
    if spec.max_age_ms is not None:
        return spec.max_age_ms / 1000.0
    if spec.depends_on_clock:
        return clock_read_max_age_ms / 1000.0
    return None


def call_resources(spec: ToolSpec, call: ToolCall) -> tuple[frozenset[str], frozenset[str]]:
    """The concrete (reads, writes) of ``call``; ``"*"`` where an argument is missing."""
    return spec.resources(call.arguments)


def _match(a: str, b: str) -> bool:
    if a == b:
        return True
    return ("*" in a and fnmatch.fnmatchcase(b, a)) or ("*" in b and fnmatch.fnmatchcase(a, b))


def resources_overlap(a: Iterable[str], b: Iterable[str]) -> bool:
    """Whether any resource in ``a`` may be the same as one in ``b``."""
    bs = list(b)
    return any(_match(x, y) for x in a for y in bs)


class ResourceVersions:
    """A write counter per resource; a snapshot is valid while no overlapping write happened."""

    def __init__(self) -> None:
        self._seq = 0
        self._written: dict[str, int] = {}

    def bump(self, writes: Iterable[str]) -> None:
        """Record a write to each resource (call it when a write starts and when it ends)."""
        for r in writes:
            self._seq += 1
            self._written[r] = self._seq

    def version(self, resource: str) -> int:
        return max((s for w, s in self._written.items() if _match(resource, w)), default=0)

    def snapshot(self, reads: Iterable[str]) -> tuple[tuple[str, int], ...]:
        return tuple(sorted((r, self.version(r)) for r in reads))

    def valid(self, snapshot: tuple[tuple[str, int], ...]) -> bool:
        return all(self.version(r) == v for r, v in snapshot)


def spare_cores() -> float:
    """Cores not in use now, from the 1-minute load average (a coarse headroom signal)."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return float(os.cpu_count() or 1)
    return max(0.0, float(os.cpu_count() or 1) - load)


def registry_tool(registry: ToolRegistry, name: str) -> Tool | None:
    """The registered tool called ``name``, or None."""
    return registry.get(name) if name in registry else None
