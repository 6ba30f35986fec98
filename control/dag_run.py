"""What a DAG run produced: per-call status and results, a timeline, options.

:class:`DagRun` is what :class:`control.dag_executor.DagExecutor` returns:
``results`` (a :class:`ToolResult` per call, failures included),
``timeline`` (when each call was added, became ready, started and ended, for
drawing; :meth:`DagRun.trace` records it into ``realtime.trace``), the
exceptions behind failures, and :meth:`DagRun.failure_report` for a replan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from control.plan import Plan, PlanError
from control.tools import ToolResult
from realtime.errors import ConfigError

if TYPE_CHECKING:
    from realtime.trace import Tracer

__all__ = ["DONE", "CallStatus", "DagOptions", "DagRun", "ReplanOutcome", "TimelineEntry"]


class CallStatus(StrEnum):
    WAITING = "waiting"  # added, waiting for calls it depends on
    RUNNING = "running"  # launched (may still wait for a concurrency slot)
    OK = "ok"
    FAILED = "failed"  # the tool reported a failure, raised, or arguments were wrong
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"  # never started: a call it depends on did not succeed


DONE = frozenset({CallStatus.OK, CallStatus.FAILED, CallStatus.TIMED_OUT, CallStatus.CANCELLED})


@dataclass(frozen=True)
class DagOptions:
    """How the executor runs calls.

    Attributes:
        max_concurrency: calls running at once (at least 1).
        call_timeout_s: seconds one call may take before it fails; None: no limit. A
            blocking tool in a worker thread cannot be interrupted: its thread ends in
            the background and its result is ignored.
        tool_timeouts_s: per-tool overrides of ``call_timeout_s`` (tool name -> seconds).
        validate_substituted: check arguments that came from references against the
            tool's JSON Schema before invoking (a clear error naming the reference).
    """

    max_concurrency: int = 16
    call_timeout_s: float | None = 10.0
    tool_timeouts_s: Mapping[str, float] = field(default_factory=dict)
    validate_substituted: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.max_concurrency, int) or self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency: expected an int >= 1, got {self.max_concurrency!r}")
        for name, t in {"call_timeout_s": self.call_timeout_s, **self.tool_timeouts_s}.items():
            if t is not None and not t > 0:
                raise ConfigError(f"timeout for {name}: expected seconds > 0 or None, got {t!r}")

    def timeout_s(self, tool: str) -> float | None:
        return self.tool_timeouts_s.get(tool, self.call_timeout_s)


@dataclass
class TimelineEntry:
    """When one call was added, became ready, started and ended (clock ns; 0: never)."""

    id: str
    name: str
    deps: tuple[str, ...]
    status: CallStatus = CallStatus.WAITING
    added_ns: int = 0
    ready_ns: int = 0
    started_ns: int = 0
    ended_ns: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "deps": list(self.deps), "status": str(self.status)}


@dataclass
class DagRun:
    """The outcome of a plan: per-call results, a timeline, what failed and why."""

    plan: Plan
    results: dict[str, ToolResult] = field(default_factory=dict)
    timeline: dict[str, TimelineEntry] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    plan_error: PlanError | None = None

    @property
    def ok(self) -> bool:
        return self.plan_error is None and all(r.ok for r in self.results.values())

    def status(self, call_id: str) -> CallStatus:
        return self.timeline[call_id].status

    def ids(self, status: CallStatus) -> list[str]:
        return [i for i, e in self.timeline.items() if e.status is status]

    def values(self) -> dict[str, Any]:
        return {i: r.value for i, r in self.results.items() if r.ok}

    def trace(self, tracer: Tracer, track: str = "tools") -> None:
        """Record each call that ran as a span (``realtime.trace``, Chrome/Perfetto)."""
        for e in self.timeline.values():
            if e.started_ns:
                tracer.complete(f"{e.id} {e.name}", track, e.started_ns, e.ended_ns, "dag",
                                status=str(e.status), deps=",".join(e.deps),
                                ready_ns=e.ready_ns)

    def failure_report(self) -> str:
        """What went wrong, one line per failed call, worded for a replanning model."""
        lines = [f"plan error: {self.plan_error}"] if self.plan_error else []
        for call_id, entry in self.timeline.items():
            if entry.status in (CallStatus.FAILED, CallStatus.TIMED_OUT, CallStatus.CANCELLED):
                call = self.results[call_id].call if call_id in self.results else None
                shown = f"{call.name}({call.to_json()['arguments']})" if call else entry.name
                lines.append(f"call {call_id} {shown} {entry.status}: {entry.error}")
        return "\n".join(lines)


@dataclass
class ReplanOutcome:
    """Every attempt of :meth:`DagExecutor.run_with_replans`; the last one decides."""

    runs: list[DagRun]

    @property
    def final(self) -> DagRun:
        return self.runs[-1]

    @property
    def ok(self) -> bool:
        return self.final.ok

    @property
    def replans(self) -> int:
        return len(self.runs) - 1
