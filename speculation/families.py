"""Procedural tool-call workloads: random tool sets, many episode families, split by family.

A *family* is a shape of task: an argument taken from the i-th item of a list
result, from a nested field of an earlier result, from the request, a
constant; a branch between two next tools (near 50/50 or skewed); an optional
step; a loop over a list result; a chain of reads then a write; retries after
failures; independent reads in any order. A *kind* is a family made concrete
on a tool set (:mod:`speculation.toolsets`): which tools play each role, which
index, which constants, which branch probability. An episode draws a kind and
runs it with fresh values (ids, scopes, list lengths, failures, branches).

The split is by family: :data:`TRAIN_FAMILIES` make the training episodes,
:data:`HELD_OUT_FAMILIES` never appear in them. Everything is deterministic
for a seed, and every call satisfies its tool's spec. :func:`write_files`
writes a tool set and its episodes in the files ``rtagent spec replay`` reads.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speculation.toolsets import (
    ATTR_VALUES,
    WORDS,
    ToolModel,
    ToolSet,
    make_toolset,
    new_id,
    word,
)
from speculation.traces import Episode, Step, save_jsonl

__all__ = ["FAMILIES", "HELD_OUT_FAMILIES", "TRAIN_FAMILIES", "Family", "FamilySplit", "Kind",
           "family_episodes", "family_split", "make_kinds", "write_files"]

OBS_KEYS = ["subject", "target", "scope", "item", "who", "where", "other", "value", "account"]
TASKS = ["audit", "review", "sync", "triage", "tidy", "reconcile", "refresh", "escalate"]


class Builder:
    """Collects one episode's steps with drawn think and tool times."""

    def __init__(self, rng: random.Random, toolset: ToolSet) -> None:
        self.rng, self.toolset = rng, toolset
        self.steps: list[Step] = []

    def call(self, tool: ToolModel, arguments: Mapping[str, Any], result: Any, *,
             ok: bool = True) -> Any:
        mean, sd = self.toolset.first_think_ms if not self.steps else self.toolset.think_ms
        think = max(60.0, self.rng.gauss(mean, sd))
        took = max(5.0, self.rng.gauss(tool.mean_ms, tool.sd_ms))
        self.steps.append(Step(tool.name, dict(arguments), result, tool_ms=round(took, 1),
                               think_ms=round(think, 1), ok=ok,
                               cpu_ms=round(took * tool.cpu_share, 1)))
        return result

    def get(self, tool: ToolModel, ident: str, **extra: Any) -> dict[str, Any]:
        """Call a get tool; returns the entity (the result's inner object)."""
        res: dict[str, Any] = self.call(tool, {tool.id_arg: ident, **extra},
                                        tool.get_result(self.rng, ident))
        entity: dict[str, Any] = tool.payload(res)[tool.items_key]
        return entity

    def read(self, tool: ToolModel, ident: str) -> Any:
        """Call a get or check tool on ``ident``."""
        if tool.kind == "get":
            return self.get(tool, ident)
        return self.call(tool, {tool.id_arg: ident}, tool.check_result(self.rng))

    def write(self, tool: ToolModel, ident: str, value: str) -> None:
        self.call(tool, {tool.id_arg: ident, tool.value_arg: value},
                  tool.write_result(ident, value))

    def items(self, tool: ToolModel, scope: str, n: int, *, names: list[str] | None = None,
              **extra: Any) -> list[dict[str, Any]]:
        res = self.call(tool, {tool.scope_arg: scope, **extra},
                        tool.list_result(self.rng, n, names=names))
        items: list[dict[str, Any]] = tool.payload(res)[tool.items_key]
        return items


Run = Callable[[random.Random, Builder], dict[str, Any]]  # runs one episode; its observation


@dataclass(frozen=True)
class Kind:
    """One family made concrete on a tool set."""

    family: str
    intent: str
    run: Run


@dataclass(frozen=True)
class Family:
    name: str
    held_out: bool
    doc: str
    make: Callable[[random.Random, ToolSet], Run]


def _keys(rng: random.Random, n: int) -> list[str]:
    return rng.sample(OBS_KEYS, n)


# ---- families seen in training ----
def _list_index(rng: random.Random, ts: ToolSet) -> Run:
    noun = ts.pick_noun(rng)
    lst, get, wr = ts.tool("list", noun), ts.tool("get", noun), ts.tool("write", noun)
    index, then_write, value, (key,) = rng.choice([0, 1, -1]), rng.random() < 0.5, \
        rng.choice(ATTR_VALUES), _keys(rng, 1)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        scope = word(r)
        ident = b.items(lst, scope, r.randint(2, 5))[index][lst.id_key]
        b.get(get, ident)
        if then_write:
            b.write(wr, ident, value)
        return {key: scope}
    return run


def _nested_field(rng: random.Random, ts: ToolSet) -> Run:
    first = ts.tool("get", ts.pick_noun(rng))
    second = ts.tool("get", first.ref_noun)
    third = ts.tool("get", second.ref_noun) if rng.random() < 0.5 else None
    (key,) = _keys(rng, 1)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        ident = new_id(r, first.noun)
        e = b.get(first, ident)
        e = b.get(second, first.ref_id(e))
        if third is not None:
            b.get(third, second.ref_id(e))
        return {key: ident}
    return run


def _request_fields(rng: random.Random, ts: ToolSet) -> Run:
    a = ts.pick_noun(rng)
    check, wr = ts.tool("check", a), ts.tool("write", ts.pick_noun(rng, (a,)))
    k_check, k_write, k_value = _keys(rng, 3)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        ida, idw, value = new_id(r, check.noun), new_id(r, wr.noun), r.choice(ATTR_VALUES)
        b.read(check, ida)
        b.write(wr, idw, value)
        return {k_check: ida, k_write: idw, k_value: value}
    return run


def _constants(rng: random.Random, ts: ToolSet) -> Run:
    noun = ts.pick_noun(rng)
    lst, get = ts.tool("list", noun), ts.tool("get", noun)
    scope, limit, detail = word(rng), rng.choice([5, 10, 20, 50]), rng.choice(["brief", "full"])

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        items = b.items(lst, scope, r.randint(1, 4), limit=limit)
        b.get(get, items[0][lst.id_key], detail=detail)
        return {}
    return run


def _branch(probabilities: Sequence[float]) -> Callable[[random.Random, ToolSet], Run]:
    def make(rng: random.Random, ts: ToolSet) -> Run:
        get = ts.tool("get", ts.pick_noun(rng))
        ref = get.ref_noun
        one, other = rng.sample([ts.tool("check", ref), ts.tool("get", ref)], 2)
        p, then_write, value = rng.choice(probabilities), rng.random() < 0.6, \
            rng.choice(ATTR_VALUES)
        wr, (key,) = ts.tool("write", ref), _keys(rng, 1)

        def run(r: random.Random, b: Builder) -> dict[str, Any]:
            ident = new_id(r, get.noun)
            ref_id = get.ref_id(b.get(get, ident))
            b.read(one if r.random() < p else other, ref_id)
            if then_write:
                b.write(wr, ref_id, value)
            return {key: ident}
        return run
    return make


def _read_write_chain(rng: random.Random, ts: ToolSet) -> Run:
    first = ts.tool("get", ts.pick_noun(rng))
    second, wr, (key,) = ts.tool("get", first.ref_noun), ts.tool("write", first.noun), _keys(rng, 1)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        ident = new_id(r, first.noun)
        e = b.get(first, ident)
        e2 = b.get(second, first.ref_id(e))
        b.write(wr, ident, e2[second.attr_key])
        b.get(first, ident)  # read back what was written: never served from before the write
        return {key: ident}
    return run


def _retry(rng: random.Random, ts: ToolSet) -> Run:
    noun = ts.pick_noun(rng)
    check, get = ts.tool("check", noun), ts.tool("get", noun)
    fail_p, (key,) = rng.choice([0.25, 0.4]), _keys(rng, 1)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        ident = new_id(r, noun)
        for attempt in range(3):
            if attempt < 2 and r.random() < fail_p:
                b.call(check, {check.id_arg: ident}, "TimeoutError: the service is busy",
                       ok=False)
            else:
                b.read(check, ident)
                break
        b.get(get, ident)
        return {key: ident}
    return run


# ---- held-out families (never in the training episodes) ----
def _loop_items(rng: random.Random, ts: ToolSet) -> Run:
    noun = ts.pick_noun(rng)
    lst, each = ts.tool("list", noun), ts.tool(rng.choice(["get", "check"]), noun)
    wr, then_write, value, (key,) = ts.tool("write", noun), rng.random() < 0.5, \
        rng.choice(ATTR_VALUES), _keys(rng, 1)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        scope = word(r)
        items = b.items(lst, scope, r.randint(1, 10))
        for item in items:
            b.read(each, item[lst.id_key])
        if then_write:
            b.write(wr, items[0][lst.id_key], value)
        return {key: scope}
    return run


def _loop_check(rng: random.Random, ts: ToolSet) -> Run:
    noun = ts.pick_noun(rng)
    lst, check, wr = ts.tool("list", noun), ts.tool("check", noun), ts.tool("write", noun)
    value, (key,) = rng.choice(ATTR_VALUES), _keys(rng, 1)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        scope = word(r)
        for item in b.items(lst, scope, r.randint(1, 6)):
            ident = item[lst.id_key]
            state = "ok" if r.random() < 0.5 else "stale"
            b.call(check, {check.id_arg: ident}, check.check_result(r, state))
            if state != "ok":
                b.write(wr, ident, value)
        return {key: scope}
    return run


def _optional_step(rng: random.Random, ts: ToolSet) -> Run:
    noun = ts.pick_noun(rng)
    get, check, wr = ts.tool("get", noun), ts.tool("check", noun), ts.tool("write", noun)
    p, (key,) = rng.choice([0.3, 0.5]), _keys(rng, 1)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        ident = new_id(r, noun)
        e = b.get(get, ident)
        if r.random() < p:
            b.read(check, ident)
        b.write(wr, ident, e[get.attr_key])
        return {key: ident}
    return run


def _interleaved_reads(rng: random.Random, ts: ToolSet) -> Run:
    a, c, d = rng.sample(list(ts.nouns), 3)
    reads = [ts.tool("get", a), ts.tool("check", c), ts.tool("get", d)]
    wr, keys = ts.tool("write", a), _keys(rng, 3)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        ids = [new_id(r, t.noun) for t in reads]
        got: dict[int, Any] = {}
        for j in r.sample(range(3), 3):
            got[j] = b.read(reads[j], ids[j])
        b.write(wr, ids[0], got[0][reads[0].attr_key])
        return dict(zip(keys, ids, strict=True))
    return run


def _paged(rng: random.Random, ts: ToolSet) -> Run:
    noun = ts.pick_noun(rng)
    lst, get, (key,) = ts.tool("list", noun), ts.tool("get", noun), _keys(rng, 1)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        scope, page = word(r), 1
        while True:
            more = page < 4 and r.random() < 0.55
            res = b.call(lst, {lst.scope_arg: scope, "page": page},
                         lst.list_result(r, 3, page=page, has_more=more))
            if not more:
                break
            page += 1
        b.get(get, lst.payload(res)[lst.items_key][0][lst.id_key])
        return {key: scope}
    return run


def _earlier_result(rng: random.Random, ts: ToolSet) -> Run:
    get = ts.tool("get", ts.pick_noun(rng))
    wr, keys = ts.tool("write", get.ref_noun), _keys(rng, 2)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        one, two = new_id(r, get.noun), new_id(r, get.noun)
        first = b.get(get, one)
        second = b.get(get, two)
        b.write(wr, get.ref_id(first), second[get.attr_key])
        return {keys[0]: one, keys[1]: two}
    return run


def _pick_by_name(rng: random.Random, ts: ToolSet) -> Run:
    noun = ts.pick_noun(rng)
    lst, get, keys = ts.tool("list", noun), ts.tool("get", noun), _keys(rng, 2)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        scope, names = word(r), r.sample(WORDS, r.randint(2, 6))
        wanted = r.choice(names)
        items = b.items(lst, scope, len(names), names=names)
        b.get(get, next(i for i in items if i[lst.name_key] == wanted)[lst.id_key])
        return {keys[0]: scope, keys[1]: wanted}
    return run


def _branch_on_field(rng: random.Random, ts: ToolSet) -> Run:
    get = ts.tool("get", ts.pick_noun(rng))
    ref = get.ref_noun
    one, other = rng.sample([ts.tool("check", ref), ts.tool("get", ref)], 2)
    when, otherwise = rng.sample(ATTR_VALUES, 2)
    (key,) = _keys(rng, 1)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        ident = new_id(r, get.noun)
        attr = when if r.random() < 0.5 else otherwise
        e = b.call(get, {get.id_arg: ident}, get.get_result(r, ident, attr))
        entity = get.payload(e)[get.items_key]
        b.read(one if attr == when else other, get.ref_id(entity))
        return {key: ident}
    return run


FAMILIES: dict[str, Family] = {f.name: f for f in [
    Family("list_index", False, "an argument from the i-th item (0, 1 or last) of a list",
           _list_index),
    Family("nested_field", False, "ids from nested fields of earlier results, 2-3 deep",
           _nested_field),
    Family("request_fields", False, "arguments from the request's fields", _request_fields),
    Family("constants", False, "constant arguments", _constants),
    Family("branch_skewed", False, "a branch between two reads, 70/30 or 80/20",
           _branch([0.7, 0.8])),
    Family("read_write_chain", False, "reads, a write from them, a read back", _read_write_chain),
    Family("retry", False, "a check that fails and is retried", _retry),
    Family("loop_items", True, "one call per item of a list result", _loop_items),
    Family("loop_check", True, "per item a check, and a write where it is stale", _loop_check),
    Family("optional_step", True, "a read that happens 30-50% of the time", _optional_step),
    Family("branch_even", True, "a branch between two reads, 50/50", _branch([0.5])),
    Family("interleaved_reads", True, "three independent reads in any order, then a write",
           _interleaved_reads),
    Family("paged", True, "a list read page by page while it has more", _paged),
    Family("earlier_result", True, "an argument from an earlier call of the same tool",
           _earlier_result),
    Family("pick_by_name", True, "the id of the list item whose name the request gives",
           _pick_by_name),
    Family("branch_on_field", True, "the next read decided by a nested field of a result",
           _branch_on_field),
]}
TRAIN_FAMILIES = tuple(n for n, f in FAMILIES.items() if not f.held_out)
HELD_OUT_FAMILIES = tuple(n for n, f in FAMILIES.items() if f.held_out)


def make_kinds(toolset: ToolSet, families: Sequence[str], per_family: int = 2) -> list[Kind]:
    """``per_family`` kinds of each family on ``toolset`` (the same for the same arguments)."""
    kinds = []
    for name in families:
        for j in range(per_family):
            rng = random.Random(f"kind-{toolset.seed}-{name}-{j}")
            run = FAMILIES[name].make(rng, toolset)
            kinds.append(Kind(name, f"{rng.choice(TASKS)} {word(rng)} {j}", run))
    return kinds


def family_episodes(toolset: ToolSet, kinds: Sequence[Kind], n: int, tag: str) -> list[Episode]:
    """``n`` episodes, each of a kind drawn from ``kinds``; deterministic for the tag."""
    rng = random.Random(f"episodes-{toolset.seed}-{tag}")
    out = []
    for i in range(n):
        kind = rng.choice(kinds)
        b = Builder(rng, toolset)
        obs = kind.run(rng, b)
        out.append(Episode(f"{tag}-{i:04d}", tuple(b.steps), {"intent": kind.intent, **obs}))
    return out


@dataclass(frozen=True)
class FamilySplit:
    """A tool set, training episodes of the training families, test episodes per family."""

    toolset: ToolSet
    train: list[Episode]
    tests: dict[str, list[Episode]]


def family_split(seed: int = 0, *, train_episodes: int = 300, test_episodes: int = 150,
                 per_family: int = 2) -> FamilySplit:
    """Train on :data:`TRAIN_FAMILIES`; a test set for every family (held-out ones unseen)."""
    ts = make_toolset(seed)
    train = family_episodes(ts, make_kinds(ts, TRAIN_FAMILIES, per_family), train_episodes,
                            "train")
    tests = {f: family_episodes(ts, make_kinds(ts, [f], per_family), test_episodes, f"test-{f}")
             for f in FAMILIES}
    return FamilySplit(ts, train, tests)


def write_files(split: FamilySplit, out_dir: str | Path) -> list[Path]:
    """``tools.json``, ``train.jsonl`` and ``test-FAMILY.jsonl`` per family, in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    split.toolset.save_specs(out / "tools.json")
    paths = [out / "tools.json", out / "train.jsonl"]
    save_jsonl(split.train, paths[1])
    for name, eps in split.tests.items():
        paths.append(out / f"test-{name}.jsonl")
        save_jsonl(eps, paths[-1])
    return paths
