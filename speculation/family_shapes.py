"""The episode families' shapes, on a tool set (:mod:`speculation.toolsets`).

Each shape function draws a *kind* of task from a seeded rng (which tools play
each role, which index, constants, branch probability) and returns the function
that runs one episode of it into a :class:`Builder`; :mod:`speculation.families`
names them, splits them and makes the episodes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from speculation.toolsets import (
    ATTR_VALUES,
    WORDS,
    ToolModel,
    ToolSet,
    new_id,
    word,
)
from speculation.traces import Step

__all__ = [
    "Builder", "Run", "list_index", "nested_field", "request_fields", "constants", "branch",
    "read_write_chain", "retry", "loop_items", "loop_check", "optional_step", "interleaved_reads",
    "paged", "earlier_result", "pick_by_name", "branch_on_field",
]

OBS_KEYS = ["subject", "target", "scope", "item", "who", "where", "other", "value", "account"]

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


def _keys(rng: random.Random, n: int) -> list[str]:
    return rng.sample(OBS_KEYS, n)


# ---- families seen in training ----
def list_index(rng: random.Random, ts: ToolSet) -> Run:
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


def nested_field(rng: random.Random, ts: ToolSet) -> Run:
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


def request_fields(rng: random.Random, ts: ToolSet) -> Run:
    a = ts.pick_noun(rng)
    check, wr = ts.tool("check", a), ts.tool("write", ts.pick_noun(rng, (a,)))
    k_check, k_write, k_value = _keys(rng, 3)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        ida, idw, value = new_id(r, check.noun), new_id(r, wr.noun), r.choice(ATTR_VALUES)
        b.read(check, ida)
        b.write(wr, idw, value)
        return {k_check: ida, k_write: idw, k_value: value}
    return run


def constants(rng: random.Random, ts: ToolSet) -> Run:
    noun = ts.pick_noun(rng)
    lst, get = ts.tool("list", noun), ts.tool("get", noun)
    scope, limit, detail = word(rng), rng.choice([5, 10, 20, 50]), rng.choice(["brief", "full"])

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        items = b.items(lst, scope, r.randint(1, 4), limit=limit)
        b.get(get, items[0][lst.id_key], detail=detail)
        return {}
    return run


def branch(probabilities: Sequence[float]) -> Callable[[random.Random, ToolSet], Run]:
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


def read_write_chain(rng: random.Random, ts: ToolSet) -> Run:
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


def retry(rng: random.Random, ts: ToolSet) -> Run:
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
def loop_items(rng: random.Random, ts: ToolSet) -> Run:
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


def loop_check(rng: random.Random, ts: ToolSet) -> Run:
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


def optional_step(rng: random.Random, ts: ToolSet) -> Run:
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


def interleaved_reads(rng: random.Random, ts: ToolSet) -> Run:
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


def paged(rng: random.Random, ts: ToolSet) -> Run:
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


def earlier_result(rng: random.Random, ts: ToolSet) -> Run:
    get = ts.tool("get", ts.pick_noun(rng))
    wr, keys = ts.tool("write", get.ref_noun), _keys(rng, 2)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        one, two = new_id(r, get.noun), new_id(r, get.noun)
        first = b.get(get, one)
        second = b.get(get, two)
        b.write(wr, get.ref_id(first), second[get.attr_key])
        return {keys[0]: one, keys[1]: two}
    return run


def pick_by_name(rng: random.Random, ts: ToolSet) -> Run:
    noun = ts.pick_noun(rng)
    lst, get, keys = ts.tool("list", noun), ts.tool("get", noun), _keys(rng, 2)

    def run(r: random.Random, b: Builder) -> dict[str, Any]:
        scope, names = word(r), r.sample(WORDS, r.randint(2, 6))
        wanted = r.choice(names)
        items = b.items(lst, scope, len(names), names=names)
        b.get(get, next(i for i in items if i[lst.name_key] == wanted)[lst.id_key])
        return {keys[0]: scope, keys[1]: wanted}
    return run


def branch_on_field(rng: random.Random, ts: ToolSet) -> Run:
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
