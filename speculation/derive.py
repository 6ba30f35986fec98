"""What a predictor sees and how it fills arguments.

A :class:`Context` is the calls made so far (committed ones, then perhaps
hypothetical ones whose result is :data:`UNKNOWN` or a guess) and the current
observation. A :class:`Derivation` says where one argument of a predicted
call comes from: a constant, an argument of the latest call of some tool, a
field of the latest result of some tool, or a field of the observation —
numbers optionally with a constant offset (``z`` = located ``z`` + 0.1).
:func:`candidates` lists every derivation that explains a value in a context;
the miner and the draft model count them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from control.tools import ToolCall, canonical_json
from speculation.traces import Step

__all__ = [
    "UNKNOWN",
    "Context",
    "Derivation",
    "Prediction",
    "candidates",
    "context_keys",
    "features",
    "leaves",
]

Path = tuple[str | int, ...]


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
"""The result of a hypothetical call that has not run (nothing can be derived from it)."""

_MAX_LEAF_CHARS = 200
_KIND_RANK = {"obs": 0, "arg": 1, "result": 2, "const": 3}


@dataclass(frozen=True)
class Context:
    """Calls so far (oldest first) and the observation now."""

    history: tuple[Step, ...] = ()
    observation: Mapping[str, Any] = field(default_factory=dict)

    def latest(self, tool: str) -> Step | None:
        for s in reversed(self.history):
            if s.name == tool:
                return s
        return None

    def then(self, call: ToolCall, result: Any = UNKNOWN) -> Context:
        """This context followed by ``call`` (with ``result``, or UNKNOWN if it has not run)."""
        step = Step(name=call.name, arguments=dict(call.arguments), result=result)
        return Context(self.history + (step,), self.observation)


@dataclass(frozen=True)
class Prediction:
    """A predicted next call and how likely it is to be exactly the agent's next call."""

    call: ToolCall
    probability: float
    source: str = ""


def _get(obj: Any, path: Path) -> tuple[bool, Any]:
    for p in path:
        in_list = isinstance(p, int) and isinstance(obj, list) and -len(obj) <= p < len(obj)
        if not (in_list or (isinstance(p, str) and isinstance(obj, Mapping) and p in obj)):
            return False, None
        obj = obj[p]
    return True, obj


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Derivation:
    """Where one argument's value comes from."""

    kind: str  # "const" | "arg" | "result" | "obs"
    tool: str = ""
    path: Path = ()
    value: Any = None
    offset: float = 0.0

    def apply(self, ctx: Context) -> tuple[bool, Any]:
        """(True, value) if this derivation gives a value in ``ctx``, else (False, None)."""
        if self.kind == "const":
            return True, self.value
        if self.kind == "obs":
            ok, v = _get(ctx.observation, self.path)
        else:
            step = ctx.latest(self.tool)
            if step is None:
                return False, None
            source = step.arguments if self.kind == "arg" else step.result
            if source is UNKNOWN or (self.kind == "result" and not step.ok):
                return False, None
            ok, v = _get(source, self.path)
        if not ok:
            return False, None
        if self.offset:
            if not _is_number(v):
                return False, None
            return True, round(float(v) + self.offset, 6)
        return True, v

    def key(self) -> str:
        return canonical_json(self.to_json())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "const":
            out["value"] = self.value
            return out
        if self.tool:
            out["tool"] = self.tool
        out["path"] = list(self.path)
        if self.offset:
            out["offset"] = self.offset
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Derivation:
        return cls(kind=str(d["kind"]), tool=str(d.get("tool", "")),
                   path=tuple(d.get("path", ())), value=d.get("value"),
                   offset=float(d.get("offset", 0.0)))

    def rank(self) -> tuple[int, int]:
        """Tie-break: prefer derivations that generalise (not constants, no offset)."""
        return (_KIND_RANK.get(self.kind, 9), 1 if self.offset else 0)

    def describe(self) -> str:
        if self.kind == "const":
            return f"= {json.dumps(self.value)}"
        where = "obs" if self.kind == "obs" else f"{self.tool}.{self.kind}"
        text = where + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in self.path)
        return text + (f" {self.offset:+g}" if self.offset else "")


def leaves(obj: Any, max_depth: int = 4, max_items: int = 12) -> Iterator[tuple[Path, Any]]:
    """(path, value) for the scalar and small container values inside ``obj``."""

    def walk(o: Any, path: Path, depth: int) -> Iterator[tuple[Path, Any]]:
        small = not isinstance(o, Mapping | list) or len(canonical_json(o)) <= _MAX_LEAF_CHARS
        if path and o is not None and o is not UNKNOWN and small:
            yield path, o
        if depth >= max_depth:
            return
        if isinstance(o, Mapping):
            for k in list(o)[:max_items * 2]:
                yield from walk(o[k], (*path, str(k)), depth + 1)
        elif isinstance(o, list):
            for i, v in enumerate(o[:max_items]):
                yield from walk(v, (*path, i), depth + 1)

    if obj is UNKNOWN:
        return iter(())
    return walk(obj, (), 0)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return canonical_json(a) == canonical_json(b)


def candidates(value: Any, ctx: Context, *, lookback: int = 8) -> list[Derivation]:
    """Every derivation that gives ``value`` in ``ctx`` (a constant always among them)."""
    out: list[Derivation] = []
    if len(canonical_json(value)) <= _MAX_LEAF_CHARS:
        out.append(Derivation("const", value=value))
    seen_tools: set[str] = set()
    sources: list[tuple[str, str, Any]] = [("obs", "", ctx.observation)]
    for step in reversed(ctx.history[-lookback:]):
        if step.name in seen_tools:
            continue
        seen_tools.add(step.name)
        sources.append(("arg", step.name, step.arguments))
        if step.ok:
            sources.append(("result", step.name, step.result))
    num = _is_number(value)
    for kind, tool, obj in sources:
        for path, leaf in leaves(obj):
            if _same(leaf, value):
                out.append(Derivation(kind, tool, path))
            elif num and _is_number(leaf):
                offset = round(float(value) - float(leaf), 6)
                if offset and round(float(leaf) + offset, 6) == round(float(value), 6):
                    out.append(Derivation(kind, tool, path, offset=offset))
    return out


def _scalar_features(prefix: str, obj: Any) -> list[str]:
    out: list[str] = []
    if isinstance(obj, Mapping):
        for k, v in list(obj.items())[:16]:
            if isinstance(v, bool) or (isinstance(v, str) and len(v) <= 24):
                out.append(f"{prefix}{k}={v}")
            elif isinstance(v, list):
                out.append(f"{prefix}len({k})={min(len(v), 4)}")
    elif isinstance(obj, list):
        out.append(f"{prefix}len={min(len(obj), 4)}")
    elif isinstance(obj, bool | str) and len(str(obj)) <= 24:
        out.append(f"{prefix}={obj}")
    return out


def features(step: Step | None) -> list[str]:
    """Categorical features of a call's result: failure, small string/bool fields, list sizes."""
    if step is None or step.result is UNKNOWN:
        return []
    if not step.ok:
        return ["error"]
    return _scalar_features("", step.result)


def context_keys(ctx: Context) -> list[str]:
    """Context keys from most to least specific (recent tool names, result and observation
    features); the miner counts next calls under each and backs off along the list."""
    names = [s.name for s in ctx.history]
    pad = ["^", "^", "^", *names]
    p3, p2, p1 = pad[-3], pad[-2], pad[-1]
    last = ctx.history[-1] if ctx.history else None
    keys = [["L3", p3, p2, p1], ["L2", p2, p1]]
    keys += [["F", p2, p1, f] for f in features(last)]
    keys += [["O", p1, f] for f in _scalar_features("", ctx.observation)]
    keys += [["L1", p1], ["L0"]]
    return [json.dumps(k, separators=(",", ":")) for k in keys]


def call_from(tool: str, arguments: Mapping[str, Any]) -> ToolCall:
    return ToolCall(tool, dict(arguments))


def combine_args(choices: Sequence[Sequence[tuple[Any, float]]], names: Sequence[str],
                 limit: int = 8) -> list[tuple[dict[str, Any], float]]:
    """The most likely argument assignments from per-argument (value, p) choices."""
    combos: list[tuple[dict[str, Any], float]] = [({}, 1.0)]
    for name, opts in zip(names, choices, strict=True):
        combos = [({**a, name: v}, p * q) for a, p in combos for v, q in opts]
        combos.sort(key=lambda c: -c[1])
        combos = combos[:limit]
    return combos
