"""What one agent turn reports: its decode's costs (for the trace span), the calls in
short text (for the history), each call's result as JSON, and whether the run failed only
on values a tool did not know."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from control.dag_run import CallStatus, DagRun
from control.tools import ToolCall, canonical_json

__all__ = ["decode_costs", "forward_passes", "only_unknown_values", "result_json", "short",
           "timed_list"]


def timed_list(it: Iterator[ToolCall]) -> tuple[list[ToolCall], float]:
    t0 = time.perf_counter()
    calls = list(it)
    return calls, (time.perf_counter() - t0) * 1e3


def forward_passes(decoder: Any) -> int | None:
    n = getattr(getattr(decoder, "ctx", None), "forward_passes", None)
    return n if isinstance(n, int) else None


def decode_costs(decoder: Any, passes0: int | None) -> dict[str, int]:
    """What the last decode cost, for its trace span: prompt tokens (and how many
    were evaluated, not served from the prefix cache), sampled tokens, forward
    passes — whichever the decoder exposes."""
    out: dict[str, int] = {}
    stats = getattr(decoder, "stats", None)
    for key, attr in (("prompt_tokens", "prompt_tokens"),
                      ("prompt_evaluated", "prompt_evaluated"), ("sampled_tokens", "sampled")):
        v = getattr(stats, attr, None)
        if isinstance(v, int):
            out[key] = v
    passes = forward_passes(decoder)
    if passes is not None and passes0 is not None:
        out["forward_passes"] = passes - passes0
    return out


def only_unknown_values(run: DagRun) -> bool:
    """Whether the run failed only because tools did not know values the calls gave
    (calls cancelled because of such a failure follow from it)."""
    failed = [r for i, r in run.results.items()
              if not r.ok and run.timeline[i].status is not CallStatus.CANCELLED]
    return (run.plan_error is None and bool(failed)
            and all(getattr(r, "unknown_value", False) for r in failed))


def short(call: ToolCall) -> str:
    args = ", ".join(f"{k}={canonical_json(v)}" for k, v in call.arguments.items())
    return f"{call.name}({args})"


def result_json(run: DagRun, call: ToolCall) -> dict[str, Any]:
    r = run.results.get(call.id)
    if r is None:
        entry = run.timeline.get(call.id)
        return {"name": call.name, "ok": False,
                "error": entry.error if entry else "not run", "speculative": False}
    return {"name": call.name, "ok": r.ok, "value": r.value, "error": r.error,
            "speculative": r.speculative, "ms": round(r.duration_ms, 2)}
