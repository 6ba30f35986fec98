"""Eval cases and the exact-match scorer.

A case is one line of ``robot.jsonl`` / ``voice.jsonl`` / ``compound.jsonl``: ``{"id",
"messages", "enums"?, "tools"?, "toolset"?, "expected": [{"name", "arguments"}],
"order"?: [[i, j], ...]}``. ``toolset`` names the tools the case is decoded against
(``robot`` / ``voice``; default: the set's own, :data:`SET_TOOLS`); ``order`` lists the
order constraints that matter: expected call ``i`` must come before call ``j``.

Exact match: the full set of calls (as a multiset: independent calls may come in any
order), each with the same arguments — numbers equal within 1e-6, enum ids equal, free
text equal after case folding, trimming and dropping end punctuation — and every
order constraint kept. ``tool_match`` only compares the multiset of tool names.

Lines are read with ``msgspec`` against :class:`CaseRecord` (a case's own
``tools`` with :func:`control.tools.load_tool_specs`): a malformed line is an
:class:`EvalSetError` naming the file, the line and the field.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec

from control.tools import ToolError, load_tool_specs
from realtime.errors import RtAgentError

__all__ = ["EVALSETS", "SET_TOOLS", "Case", "Score", "call_key", "exact_match", "load_cases",
           "order_kept", "tool_match"]

EVALSETS = {name: Path(__file__).resolve().parent / f"{name}.jsonl"
            for name in ("robot", "voice", "compound")}
SET_TOOLS = {"robot": "robot", "voice": "voice"}
"""The tool set (``speculation.workloads.SPEC_FILES`` name) of a set's cases that name none."""


class EvalSetError(RtAgentError):
    """An eval-set or input file is malformed."""


class MessageRecord(msgspec.Struct):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class CallRecord(msgspec.Struct):
    name: str
    arguments: dict[str, Any] = {}


class CaseRecord(msgspec.Struct):
    """One line of an eval set."""

    messages: list[MessageRecord]
    id: str | int | None = None
    expected: list[CallRecord] | None = None
    enums: dict[str, list[str | int | float | bool | None]] | None = None
    tools: list[Any] | None = None
    toolset: str | None = None
    order: list[tuple[int, int]] | None = None


_EXPECTED = ('an object {"id", "messages": [{"role", "content"}], "expected": '
             '[{"name", "arguments"}], "enums"?, "tools"?, "toolset"?, "order"?: [[i, j]]}')


@dataclass(frozen=True)
class Case:
    id: str
    messages: tuple[Mapping[str, str], ...]
    expected: tuple[Mapping[str, Any], ...] | None = None
    enums: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    tools: tuple[Mapping[str, Any], ...] | None = None
    toolset: str | None = None
    order: tuple[tuple[int, int], ...] = ()

    def toolset_in(self, set_name: str) -> str:
        """The tool set this case is decoded against, as a case of set ``set_name``."""
        return self.toolset or SET_TOOLS.get(set_name, set_name)


def load_cases(path: str | Path, limit: int | None = None) -> list[Case]:
    """Cases of a JSONL file (a name in :data:`EVALSETS` also works)."""
    p = EVALSETS.get(str(path), Path(path))
    try:
        lines = p.read_bytes().splitlines()
    except OSError as exc:
        raise EvalSetError(f"cannot read cases from {p}: {exc}") from exc
    decoder = msgspec.json.Decoder(CaseRecord)
    cases = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cases.append(_case(decoder, line, f"{p}:{n}", n))
        if limit is not None and len(cases) >= limit:
            break
    return cases


def _case(decoder: msgspec.json.Decoder[CaseRecord], line: bytes, where: str, n: int) -> Case:
    try:
        r = decoder.decode(line)
    except msgspec.ValidationError as exc:
        raise EvalSetError(f"{where}: {exc}; expected {_EXPECTED}") from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise EvalSetError(f"{where}: not a JSON case ({exc}); expected {_EXPECTED}") from None
    if r.tools is not None:
        try:
            load_tool_specs(r.tools, f"{where}: tools")
        except ToolError as exc:
            raise EvalSetError(str(exc)) from None
    return Case(
        id=str(n if r.id is None else r.id),
        messages=tuple({"role": m.role, "content": m.content} for m in r.messages),
        expected=None if r.expected is None else tuple(
            {"name": c.name, "arguments": c.arguments} for c in r.expected),
        enums=r.enums or {}, tools=None if r.tools is None else tuple(r.tools),
        toolset=r.toolset, order=tuple((int(i), int(j)) for i, j in r.order or ()))


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


def order_kept(expected: Sequence[Mapping[str, Any]], got: Sequence[Mapping[str, Any]],
               order: Iterable[tuple[int, int]]) -> bool:
    """Whether ``got`` (the same calls as ``expected``) keeps every ``(i, j)``: expected call
    ``i`` before call ``j``. Identical expected calls may be matched either way round."""
    pairs = list(order)
    if not pairs:
        return True
    where: dict[str, list[int]] = {}
    for pos, c in enumerate(got):
        where.setdefault(call_key(c), []).append(pos)
    keys = [call_key(c) for c in expected]
    groups = {k: [i for i, kk in enumerate(keys) if kk == k] for k in dict.fromkeys(keys)}
    for choice in itertools.product(*(itertools.permutations(where.get(k, []))
                                      for k in groups)):
        pos = {i: p for idx, (_, ids) in zip(choice, groups.items(), strict=True)
               for i, p in zip(ids, idx, strict=False)}
        if all(i in pos and j in pos and pos[i] < pos[j] for i, j in pairs):
            return True
    return False


def exact_match(expected: Sequence[Mapping[str, Any]], got: Sequence[Mapping[str, Any]],
                order: Iterable[tuple[int, int]] = ()) -> bool:
    """The same calls (any order), and the order constraints ``order`` kept."""
    if sorted(call_key(c) for c in expected) != sorted(call_key(c) for c in got):
        return False
    return order_kept(expected, got, order)


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
            order: Iterable[tuple[int, int]] = (), verdict: tuple[bool, bool] | None = None) -> bool:
        """Count one case; ``verdict`` (exact, right tools) is another scorer's (BFCL's)."""
        self.cases += 1
        if got is None:
            self.errors += 1
            return False
        ok, tools = verdict or (exact_match(expected, got, order), tool_match(expected, got))
        self.exact += ok
        self.tools += tools
        return ok

    @property
    def exact_rate(self) -> float:
        return self.exact / self.cases if self.cases else 0.0

    @property
    def tool_rate(self) -> float:
        return self.tools / self.cases if self.cases else 0.0
