"""Eval cases and the exact-match scorer.

A case is one line of ``robot.jsonl`` / ``voice.jsonl``: ``{"id", "messages",
"enums"?, "tools"?, "expected": [{"name", "arguments"}]}``.

Exact match: the same calls (as a multiset: independent calls may come in any
order), each with the same arguments — numbers equal within 1e-6, enum ids
equal, free text equal after case folding, trimming and dropping end
punctuation. ``tool_match`` only compares the multiset of tool names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realtime.errors import RtAgentError

__all__ = ["EVALSETS", "Case", "Score", "call_key", "exact_match", "load_cases", "tool_match"]

EVALSETS = {name: Path(__file__).resolve().parent / f"{name}.jsonl" for name in ("robot", "voice")}


class EvalSetError(RtAgentError):
    """An eval-set or input file is malformed."""


@dataclass(frozen=True)
class Case:
    id: str
    messages: tuple[Mapping[str, str], ...]
    expected: tuple[Mapping[str, Any], ...] | None = None
    enums: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    tools: tuple[Mapping[str, Any], ...] | None = None


def load_cases(path: str | Path, limit: int | None = None) -> list[Case]:
    """Cases of a JSONL file (a name in :data:`EVALSETS` also works)."""
    p = EVALSETS.get(str(path), Path(path))
    try:
        lines = p.read_text().splitlines()
    except OSError as exc:
        raise EvalSetError(f"cannot read cases from {p}: {exc}") from exc
    cases = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            cases.append(Case(
                id=str(d.get("id", n)), messages=tuple(d["messages"]),
                expected=None if "expected" not in d else tuple(d["expected"]),
                enums=d.get("enums") or {}, tools=None if "tools" not in d else tuple(d["tools"])))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise EvalSetError(f"{p}:{n}: expected a JSON object with 'messages' ({exc})") from exc
        if limit is not None and len(cases) >= limit:
            break
    return cases


def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return round(float(value), 6)
    if isinstance(value, str):
        return " ".join(value.casefold().split()).rstrip(".!?")
    return value


def call_key(call: Mapping[str, Any]) -> str:
    args = {k: _norm(v) for k, v in (call.get("arguments") or {}).items()}
    return f"{call['name']}:{json.dumps(args, sort_keys=True)}"


def exact_match(expected: Iterable[Mapping[str, Any]], got: Iterable[Mapping[str, Any]]) -> bool:
    return sorted(call_key(c) for c in expected) == sorted(call_key(c) for c in got)


def tool_match(expected: Iterable[Mapping[str, Any]], got: Iterable[Mapping[str, Any]]) -> bool:
    return sorted(c["name"] for c in expected) == sorted(c["name"] for c in got)


@dataclass
class Score:
    """Running totals over scored cases."""

    cases: int = 0
    exact: int = 0
    tools: int = 0
    errors: int = 0

    def add(self, expected: Sequence[Mapping[str, Any]], got: Sequence[Mapping[str, Any]] | None,
            verdict: tuple[bool, bool] | None = None) -> bool:
        """Count one case; ``verdict`` (exact, right tools) is another scorer's (BFCL's)."""
        self.cases += 1
        if got is None:
            self.errors += 1
            return False
        ok, tools = verdict or (exact_match(expected, got), tool_match(expected, got))
        self.exact += ok
        self.tools += tools
        return ok

    @property
    def exact_rate(self) -> float:
        return self.exact / self.cases if self.cases else 0.0

    @property
    def tool_rate(self) -> float:
        return self.tools / self.cases if self.cases else 0.0
