"""What a predictor sees: the calls so far and the observation, and the values in them.

A :class:`Context` is the calls made so far (committed ones, then perhaps
hypothetical ones whose result is :data:`UNKNOWN` or a guess) and the current
observation. :func:`leaves` walks the values inside an object (any depth, the
first items of lists); :class:`LeafCache` indexes them by their canonical text,
so derivations (:mod:`speculation.derive`) can be searched quickly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from control.tools import ToolCall, canonical_json
from speculation.traces import Step

__all__ = [
    "MAX_ITEMS",
    "MAX_LEAF_CHARS",
    "UNKNOWN",
    "Context",
    "LeafCache",
    "Path",
    "Prediction",
    "get_path",
    "is_map",
    "is_number",
    "leaves",
    "text_of",
]

Path = tuple[str | int, ...]


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
"""The result of a hypothetical call that has not run (nothing can be derived from it)."""

MAX_LEAF_CHARS = 200
MAX_DEPTH = 8       # results nest payloads in envelopes ("response", "body", "data", ...)
MAX_ITEMS = 32      # list items searched (a loop over a page of results)
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


def text_of(v: Any) -> str:
    """``canonical_json(v)``, quicker for the scalars that most values are."""
    t = type(v)
    if t is str:
        return json.dumps(v, ensure_ascii=False)
    if t is int:
        return str(v)
    if t is bool or v is None:
        return "true" if v is True else "false" if v is False else "null"
    if t is float and math.isfinite(v):
        return str(int(v)) if v.is_integer() else repr(v)
    return canonical_json(v)


def is_map(o: Any) -> bool:
    return type(o) is dict or isinstance(o, Mapping)


def get_path(obj: Any, path: Path) -> tuple[bool, Any]:
    for p in path:
        in_list = isinstance(p, int) and isinstance(obj, list) and -len(obj) <= p < len(obj)
        if not (in_list or (isinstance(p, str) and is_map(obj) and p in obj)):
            return False, None
        obj = obj[p]
    return True, obj


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def leaves(obj: Any, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS
           ) -> Iterator[tuple[Path, Any]]:
    """(path, value) for the scalar and small container values inside ``obj``."""

    def walk(o: Any, path: Path, depth: int) -> Iterator[tuple[Path, Any]]:
        container = type(o) is list or is_map(o)
        if path and o is not None and o is not UNKNOWN and (
                not container or _small(o, MAX_LEAF_CHARS) >= 0):
            yield path, o
        if depth >= max_depth:
            return
        if container and type(o) is not list:
            for k in list(o)[:max_items]:
                yield from walk(o[k], (*path, str(k)), depth + 1)
        elif isinstance(o, list):
            for i, v in enumerate(o[:max_items]):
                yield from walk(v, (*path, i), depth + 1)

    if obj is UNKNOWN:
        return iter(())
    return walk(obj, (), 0)


def _small(o: Any, budget: int) -> int:
    """``budget`` less about the length of ``o`` as JSON (negative: longer than budget)."""
    if type(o) is list:
        for v in o:
            budget = _small(v, budget - 1)
            if budget < 0:
                break
        return budget
    if is_map(o):
        for k, v in o.items():
            budget = _small(v, budget - len(str(k)) - 4)
            if budget < 0:
                break
        return budget
    return budget - len(str(o)) - 2


class _Index:
    """An object's leaves by canonical text, and its numeric leaves."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj  # held so the id() the cache keys on stays this object's
        self.by_text: dict[str, list[Path]] = {}
        self.numbers: list[tuple[Path, float]] = []
        for path, leaf in leaves(obj):
            self.by_text.setdefault(text_of(leaf), []).append(path)
            if is_number(leaf):
                self.numbers.append((path, float(leaf)))


class LeafCache:
    """Indexes of objects' leaves, and per context its sources, kept while the objects are
    in use (e.g. one episode): counting looks at the same results again and again."""

    def __init__(self) -> None:
        self._by_id: dict[int, _Index] = {}
        self._per_ctx: dict[tuple[str, int, int, int], tuple[Any, Any, Any]] = {}

    def index(self, obj: Any) -> _Index:
        ix = self._by_id.get(id(obj))
        if ix is None or ix.obj is not obj:
            ix = self._by_id[id(obj)] = _Index(obj)
        return ix

    def of_context(self, what: str, ctx: Context, make: Callable[[], Any]) -> Any:
        """``make()``, remembered for this context (the same last call and observation)."""
        last = ctx.history[-1] if ctx.history else None
        key = (what, len(ctx.history), id(last), id(ctx.observation))
        hit = self._per_ctx.get(key)
        if hit is not None and hit[0] is last and hit[1] is ctx.observation:
            return hit[2]
        value = make()
        self._per_ctx[key] = (last, ctx.observation, value)
        return value
