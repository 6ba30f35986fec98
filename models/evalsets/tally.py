"""A decoder scored over eval cases: latency, cost and accuracy, tallied per decoder
(and per set), as `rtagent bench decoder` reports them.

:func:`decode_case` decodes one case into any number of :class:`Tally` objects
(a decoder's overall tally and its per-set one) and returns the case's row;
:func:`spread` and :func:`heldout_cases` choose the cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from control.tools import ToolSpec
from models.evalsets.score import Case, Score

__all__ = ["Tally", "decode_case", "heldout_cases", "spread"]

# Calls with three numeric arguments (a position): their latency is reported apart.
THREE_NUMERIC_TOOLS = ("move_to", "plan_path")


def _nearest_rank(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


class Tally:
    """What a decoder's answers cost and how many were right."""

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.lat3: list[float] = []
        self.passes: list[int] = []
        self.sampled = 0
        self.json_tokens = 0
        self.score = Score()

    def summary(self) -> dict[str, Any]:
        n = max(1, len(self.passes))
        return {
            "cases": self.score.cases, "errors": self.score.errors,
            "p50_ms": _nearest_rank(self.lat, 0.5), "p95_ms": _nearest_rank(self.lat, 0.95),
            "p50_3num_ms": _nearest_rank(self.lat3, 0.5), "n_3num": len(self.lat3),
            "passes_per_answer": sum(self.passes) / n,
            "sampled_per_answer": self.sampled / n, "json_per_answer": self.json_tokens / n,
            "compression": self.json_tokens / self.sampled if self.sampled else float("nan"),
            "exact": self.score.exact_rate, "tool": self.score.tool_rate,
        }


def _three_numeric(expected: Sequence[Mapping[str, Any]] | None) -> bool:
    return (expected is not None and len(expected) == 1
            and expected[0]["name"] in THREE_NUMERIC_TOOLS)


def decode_case(decoder: Any, ctx: Any, case: Case, tools: Sequence[ToolSpec],
                tallies: Sequence[Tally],
                judge: Callable[[list[dict[str, Any]]], tuple[bool, bool]] | None = None
                ) -> dict[str, Any]:
    """Decode one case into ``tallies``; returns its row (calls, latency, passes, exact).
    A failed decode counts as a wrong answer: its row holds the error. ``judge`` scores
    the calls (exact, right tools) where the case has no expected calls (BFCL's match)."""
    from models.decoder import DecodeError

    try:
        res = decoder.decode(ctx, tools)
    except DecodeError as exc:
        for t in tallies:
            t.score.add(case.expected or [], None)
        return {"error": str(exc), "exact": False}
    calls = [c.to_json() for c in res.calls]
    verdict = judge(calls) if judge is not None else None
    exact = False
    for t in tallies:
        t.lat.append(res.latency_ms)
        if _three_numeric(case.expected):
            t.lat3.append(res.latency_ms)
        t.passes.append(res.forward_passes)
        t.sampled += res.sampled_tokens
        t.json_tokens += res.json_tokens
        exact = t.score.add(case.expected or [], calls, case.order, verdict)  # (the same for every tally)
    return {"calls": calls, "latency_ms": res.latency_ms, "forward_passes": res.forward_passes,
            "sampled_tokens": res.sampled_tokens, "exact": exact}


def spread(cases: list[Case], n: int) -> list[Case]:
    """``n`` cases evenly spaced over the set: its kinds come in blocks (the first 30
    robot cases are all one-object calls), so the first ``n`` would miss most."""
    if n >= len(cases):
        return cases
    return [cases[i * len(cases) // n] for i in range(n)]


def heldout_cases(n: int, tool_files: Mapping[str, Path]) -> list[tuple[Case, list[ToolSpec]]]:
    """Held-out phrasings from the tune data generator (seed 0) over the robot and
    voice tools: (case, tools) pairs, grouped by tool set (the prompt cache stays warm)."""
    from models.tune.data import DataOptions, generate, load_toolsets
    from models.tune.verify import heldout_cases as scored_heldout

    toolsets = load_toolsets([tool_files["robot"], tool_files["voice"]])
    _, held = generate(toolsets, DataOptions(n_train=0, n_heldout=n, seed=0))
    pairs = [(sc.case, list(sc.tools)) for sc in scored_heldout(held)]
    return sorted(pairs, key=lambda p: p[1][0].name)
