"""What a predictor sees and how it fills arguments.

A :class:`Context` is the calls made so far (committed ones, then perhaps
hypothetical ones whose result is :data:`UNKNOWN` or a guess) and the current
observation. A :class:`Derivation` says where one argument of a predicted
call comes from, searched in the whole context rather than in known shapes:

- a constant, or a field of the observation (the request) at any depth;
- a field, at any depth, of the arguments or the result of an earlier call:
  the latest call of a tool, the one before it, the first one, or simply the
  previous call whatever its tool;
- where the path crosses a list: a fixed position, a position from the end,
  the loop counter (one further per successful call of the predicted tool
  since that result: a loop over the items), or the item whose field equals
  a value found elsewhere (the entry whose name the request gives);
- numbers optionally with a constant offset (``z`` = located ``z`` + 0.1).

:func:`candidates` lists every derivation that explains a value in a context;
the miner and the draft model count how often each one reproduces the
arguments of the training traces and keep the best per slot.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from control.tools import ToolCall, canonical_json
from speculation.traces import Step

__all__ = [
    "UNKNOWN",
    "Context",
    "Derivation",
    "LeafCache",
    "Prediction",
    "candidates",
    "combine_args",
    "leaves",
    "text_of",
]

Path = tuple[str | int, ...]


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
"""The result of a hypothetical call that has not run (nothing can be derived from it)."""

_MAX_LEAF_CHARS = 200
_MAX_DEPTH = 8       # results nest payloads in envelopes ("response", "body", "data", ...)
_MAX_ITEMS = 32      # list items searched (a loop over a page of results)
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


def _is_map(o: Any) -> bool:
    return type(o) is dict or isinstance(o, Mapping)


def _get(obj: Any, path: Path) -> tuple[bool, Any]:
    for p in path:
        in_list = isinstance(p, int) and isinstance(obj, list) and -len(obj) <= p < len(obj)
        if not (in_list or (isinstance(p, str) and _is_map(obj) and p in obj)):
            return False, None
        obj = obj[p]
    return True, obj


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _occurrence(history: Sequence[Step], tool: str, occurrence: int) -> int | None:
    """The index in ``history`` of ``tool``'s call number ``occurrence`` (Python-style:
    -1 the latest, 0 the first), or None."""
    seen = 0
    if occurrence < 0:
        for i in range(len(history) - 1, -1, -1):
            if history[i].name == tool:
                seen += 1
                if seen == -occurrence:
                    return i
        return None
    for i, s in enumerate(history):
        if s.name == tool:
            if seen == occurrence:
                return i
            seen += 1
    return None


def _loop_count(history: Sequence[Step], after: int, tool: str) -> int:
    return sum(1 for s in history[after + 1:] if s.name == tool and s.ok)


@dataclass(frozen=True)
class Derivation:
    """Where one argument's value comes from (see the module doc)."""

    kind: str  # "const" | "arg" | "result" | "obs"
    tool: str = ""
    path: Path = ()
    value: Any = None
    offset: float = 0.0
    occurrence: int = -1   # which call of ``tool``: -1 the latest, -2 the one before, 0 the first
    back: int = 0          # > 0: the call this many steps back, whatever its tool
    loop_at: int = -1      # path[loop_at] + successful calls of ``counter`` since the source
    counter: str = ""
    match_at: int = -1     # path[match_at]: the first item whose ``match_key`` equals ``match``
    match_key: Path = ()
    match: Derivation | None = None

    def source(self, ctx: Context) -> tuple[int, Any] | None:
        """(index of the source call in the history, or -1 for the observation; the object)."""
        if self.kind == "obs":
            return -1, ctx.observation
        h = ctx.history
        if self.back:
            i: int | None = len(h) - self.back if self.back <= len(h) else None
        else:
            i = _occurrence(h, self.tool, self.occurrence)
        if i is None:
            return None
        step = h[i]
        if self.kind == "arg":
            return i, step.arguments
        if step.result is UNKNOWN or not step.ok:
            return None
        return i, step.result

    def _path(self, ctx: Context, at: int, obj: Any) -> Path | None:
        if self.loop_at >= 0:
            n = int(self.path[self.loop_at]) + _loop_count(ctx.history, at, self.counter)
            return (*self.path[:self.loop_at], n, *self.path[self.loop_at + 1:])
        if self.match_at >= 0 and self.match is not None:
            ok, items = _get(obj, self.path[:self.match_at])
            found, want = self.match.apply(ctx)
            if not (ok and found and isinstance(items, list)):
                return None
            text = text_of(want)
            for j, item in enumerate(items[:_MAX_ITEMS]):
                got, v = _get(item, self.match_key)
                if got and text_of(v) == text:
                    return (*self.path[:self.match_at], j, *self.path[self.match_at + 1:])
            return None
        return self.path

    def apply(self, ctx: Context) -> tuple[bool, Any]:
        """(True, value) if this derivation gives a value in ``ctx``, else (False, None)."""
        if self.kind == "const":
            return True, self.value
        src = self.source(ctx)
        if src is None:
            return False, None
        path = self._path(ctx, *src)
        if path is None:
            return False, None
        ok, v = _get(src[1], path)
        if not ok:
            return False, None
        if self.offset:
            return (True, round(float(v) + self.offset, 6)) if _is_number(v) else (False, None)
        return True, v

    def key(self) -> str:
        if self.kind == "const":
            return canonical_json(self.to_json())
        # the same text as canonical_json(to_json()), which is in saved libraries: the
        # fields are strings, ints and paths, and to_json writes integral offsets as ints
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "const":
            out["value"] = self.value
            return out
        if self.tool:
            out["tool"] = self.tool
        out["path"] = list(self.path)
        offset = int(self.offset) if float(self.offset).is_integer() else self.offset
        extra = {"offset": offset, "back": self.back, "counter": self.counter,
                 "match_key": list(self.match_key)}
        out.update((k, v) for k, v in extra.items() if v)
        if self.occurrence != -1:
            out["occurrence"] = self.occurrence
        if self.loop_at >= 0:
            out["loop_at"] = self.loop_at
        if self.match_at >= 0 and self.match is not None:
            out.update(match_at=self.match_at, match=self.match.to_json())
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Derivation:
        match = d.get("match")
        return cls(kind=str(d["kind"]), tool=str(d.get("tool", "")),
                   path=tuple(d.get("path", ())), value=d.get("value"),
                   offset=float(d.get("offset", 0.0)), occurrence=int(d.get("occurrence", -1)),
                   back=int(d.get("back", 0)), loop_at=int(d.get("loop_at", -1)),
                   counter=str(d.get("counter", "")), match_at=int(d.get("match_at", -1)),
                   match_key=tuple(d.get("match_key", ())),
                   match=cls.from_json(match) if isinstance(match, Mapping) else None)

    def rank(self) -> tuple[int, ...]:
        """Tie-break: prefer derivations that generalise (not constants, no offset), then the
        simplest source (the latest call) and list position (a fixed one)."""
        source = 1 if self.back else 0 if self.occurrence == -1 else 2
        index = 1 if self.loop_at >= 0 else 3 if self.match_at >= 0 else \
            2 if any(isinstance(p, int) and p < 0 for p in self.path) else 0
        return (_KIND_RANK.get(self.kind, 9), 1 if self.offset else 0, source, index,
                len(self.path))

    def describe(self) -> str:
        if self.kind == "const":
            return f"= {json.dumps(self.value)}"
        where = "obs" if self.kind == "obs" else f"@{-self.back}.{self.kind}" if self.back \
            else f"{self.tool}{'' if self.occurrence == -1 else f'#{self.occurrence}'}.{self.kind}"
        parts = []
        for i, p in enumerate(self.path):
            if i == self.loop_at:
                parts.append(f"[loop{int(p):+d}]" if p else "[loop]")
            elif i == self.match_at and self.match is not None:
                key = ".".join(str(k) for k in self.match_key)
                parts.append(f"[{key}={self.match.describe()}]")
            else:
                parts.append(f"[{p!r}]" if isinstance(p, int) else f".{p}")
        return where + "".join(parts) + (f" {self.offset:+g}" if self.offset else "")


def leaves(obj: Any, max_depth: int = _MAX_DEPTH, max_items: int = _MAX_ITEMS
           ) -> Iterator[tuple[Path, Any]]:
    """(path, value) for the scalar and small container values inside ``obj``."""

    def walk(o: Any, path: Path, depth: int) -> Iterator[tuple[Path, Any]]:
        container = type(o) is list or _is_map(o)
        if path and o is not None and o is not UNKNOWN and (
                not container or _small(o, _MAX_LEAF_CHARS) >= 0):
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
    if _is_map(o):
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
            if _is_number(leaf):
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


def _with(base: Derivation, **changes: Any) -> Derivation:
    # dataclasses.replace runs __init__ and its checks: too slow for the counting loop
    d = object.__new__(Derivation)
    d.__dict__.update(base.__dict__)
    d.__dict__.update(changes)
    return d


Source = tuple[Derivation, int, Any]


def _sources(ctx: Context) -> list[Source]:
    """(a derivation with an empty path, the source's history index, its object) for every
    source a derivation may name: the observation, then calls by tool and position."""
    out: list[Source] = [(Derivation("obs"), -1, ctx.observation)]
    h = ctx.history
    calls: dict[str, list[int]] = {}
    for i, s in enumerate(h):
        calls.setdefault(s.name, []).append(i)
    refs: list[tuple[int, dict[str, Any]]] = []
    for tool, idx in calls.items():
        refs.append((idx[-1], {"tool": tool}))
        if len(idx) > 1:
            refs.append((idx[-2], {"tool": tool, "occurrence": -2}))
            refs.append((idx[0], {"tool": tool, "occurrence": 0}))
    if h:
        refs.append((len(h) - 1, {"back": 1}))
    for i, ref in refs:
        step = h[i]
        out.append((Derivation("arg", **ref), i, step.arguments))
        if step.ok and step.result is not UNKNOWN:
            out.append((Derivation("result", **ref), i, step.result))
    return out


def _selectors(sources: list[Source], cache: LeafCache) -> dict[str, list[tuple[Source, Path]]]:
    """Values found in the observation and the latest calls' arguments and results, each
    with where (the first path in each source): what a list's item may be matched by."""
    out: dict[str, list[tuple[Source, Path]]] = {}
    for src in sources:
        base = src[0]
        if base.back or base.occurrence != -1:
            continue
        for text, paths in cache.index(src[2]).by_text.items():
            out.setdefault(text, []).append((src, paths[0]))
    return out


def _list_variants(base: Derivation, obj: Any, at: int, ctx: Context, counter: str,
                   cache: LeafCache, sources: list[Source]) -> Iterator[Derivation]:
    """The same leaf reached through each list on its path by other positions: from the
    end, the loop counter, the item matched by one of its fields."""
    path = base.path
    for q, p in enumerate(path):
        if not isinstance(p, int):
            continue
        _, items = _get(obj, path[:q])
        yield _with(base, path=(*path[:q], p - len(items), *path[q + 1:]))
        if counter:
            offset = p - _loop_count(ctx.history, at, counter)
            if offset >= 0:
                yield _with(base, path=(*path[:q], offset, *path[q + 1:]), loop_at=q,
                            counter=counter)
        selectors = cache.of_context("selectors", ctx, lambda: _selectors(sources, cache))
        rest = path[q + 1:]
        for key_path, leaf in leaves(items[p], max_depth=3):
            text = text_of(leaf)
            # a value from somewhere other than this list itself
            sel = next(((s, sp) for s, sp in selectors.get(text, ()) if s[2] is not obj), None)
            if sel is None or key_path == rest or type(leaf) is list or _is_map(leaf):
                continue
            first = next(j for j, it in enumerate(items[:_MAX_ITEMS])
                         if text_of(_get(it, key_path)[1]) == text)
            if first == p:  # the first item with this field's value is the one used
                yield _with(base, path=(*path[:q], 0, *path[q + 1:]), match_at=q,
                            match_key=key_path, match=_with(sel[0][0], path=sel[1]))


def candidates(value: Any, ctx: Context, *, counter: str = "",
               cache: LeafCache | None = None) -> list[Derivation]:
    """Every derivation that gives ``value`` in ``ctx`` (a constant always among them).
    ``counter``: the tool being predicted, for loop positions; ``cache``: leaf indexes
    reused across calls (one per episode, say)."""
    out: list[Derivation] = []
    text = text_of(value)
    if len(text) <= _MAX_LEAF_CHARS:
        out.append(Derivation("const", value=value))
    cache = cache or LeafCache()
    num = _is_number(value)
    sources: list[Source] = cache.of_context("sources", ctx, lambda: _sources(ctx))
    for base, at, obj in sources:
        ix = cache.index(obj)
        for path in ix.by_text.get(text, ()):
            found = _with(base, path=path)
            out.append(found)
            if not base.back and base.occurrence == -1:
                out.extend(_list_variants(found, obj, at, ctx, counter, cache, sources))
        if num and not base.back and base.occurrence == -1:
            for path, leaf in ix.numbers:
                offset = round(float(value) - leaf, 6)
                if offset and round(leaf + offset, 6) == round(float(value), 6):
                    out.append(_with(base, path=path, offset=offset))
    return out


def combine_args(choices: Sequence[Sequence[tuple[Any, float]]], names: Sequence[str],
                 limit: int = 8) -> list[tuple[dict[str, Any], float]]:
    """The most likely argument assignments from per-argument (value, p) choices."""
    combos: list[tuple[dict[str, Any], float]] = [({}, 1.0)]
    for name, opts in zip(names, choices, strict=True):
        combos = [({**a, name: v}, p * q) for a, p in combos for v, q in opts]
        combos.sort(key=lambda c: -c[1])
        combos = combos[:limit]
    return combos
