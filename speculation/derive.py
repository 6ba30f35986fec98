"""How a predictor fills arguments from what it sees (:mod:`speculation.context`).

A :class:`Derivation` says where one argument of a predicted call comes from,
searched in the whole context rather than in known shapes:

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from control.tools import canonical_json
from speculation.context import (
    MAX_ITEMS,
    MAX_LEAF_CHARS,
    UNKNOWN,
    Context,
    LeafCache,
    Path,
    Prediction,
    get_path,
    is_map,
    is_number,
    leaves,
    text_of,
)
from speculation.traces import Step

# Context, Prediction, UNKNOWN, LeafCache, leaves and text_of are speculation.context's,
# named here too: this module was where they lived.
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

_KIND_RANK = {"obs": 0, "arg": 1, "result": 2, "const": 3}


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
            ok, items = get_path(obj, self.path[:self.match_at])
            found, want = self.match.apply(ctx)
            if not (ok and found and isinstance(items, list)):
                return None
            text = text_of(want)
            for j, item in enumerate(items[:MAX_ITEMS]):
                got, v = get_path(item, self.match_key)
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
        ok, v = get_path(src[1], path)
        if not ok:
            return False, None
        if self.offset:
            return (True, round(float(v) + self.offset, 6)) if is_number(v) else (False, None)
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
        _, items = get_path(obj, path[:q])
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
            if sel is None or key_path == rest or type(leaf) is list or is_map(leaf):
                continue
            first = next(j for j, it in enumerate(items[:MAX_ITEMS])
                         if text_of(get_path(it, key_path)[1]) == text)
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
    if len(text) <= MAX_LEAF_CHARS:
        out.append(Derivation("const", value=value))
    cache = cache or LeafCache()
    num = is_number(value)
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
