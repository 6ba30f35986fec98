"""Random tool sets for the procedural workloads of :mod:`speculation.families`.

A tool set is a small world of entities (nouns such as "invoice" or "sensor"),
each with four tools:

- list (``search_invoices``): a scope string, an optional page and limit ->
  a page of items (an id of the entity, a name, a number each) and ``has_more``;
- get (``fetch_invoice``): an id, an optional detail level -> the entity, with
  a nested reference to an entity of another noun;
- check (``probe_invoice``): an id -> a state and a flag (it may fail);
- write (``approve_invoice``): an id and a value -> ``{"ok": true, ...}``;
  x-effect write, x-speculation dry_run or deny, and it writes the entity.

Tool and argument names, result field names, latencies, CPU shares and each
tool's speculation policy come from the seed; some reads are denied (a
rate-limited API, say). :class:`ToolModel` draws each call's result.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control.tools import Effect, SpeculationPolicy, ToolSpec

__all__ = ["ATTR_VALUES", "STATES", "ToolModel", "ToolSet", "make_toolset", "new_id", "word"]

NOUNS = ["invoice", "ticket", "sensor", "shipment", "account", "build", "flight", "patient",
         "track", "device", "order", "report", "vendor", "lease", "parcel", "course", "asset"]
VERBS = {"list": ["list", "search", "find", "query", "browse"],
         "get": ["get", "fetch", "read", "describe", "lookup", "load"],
         "check": ["check", "probe", "ping", "inspect", "verify"],
         "write": ["update", "approve", "assign", "tag", "close", "archive", "flag"]}
SCOPE_ARGS = ["project", "team", "region", "folder", "site", "group", "market"]
ID_KEYS = ["id", "key", "uid", "ref"]
NAME_KEYS = ["name", "title", "label"]
NUM_KEYS = ["amount", "score", "weight", "size", "price", "level"]
ATTR_KEYS = ["status", "tier", "stage", "kind", "zone", "grade"]
REF_KEYS = ["owner", "parent", "assignee", "source", "origin", "holder"]
VALUE_ARGS = ["status", "label", "tier", "mark", "category"]
ATTR_VALUES = ["alpha", "beta", "gamma", "delta", "red", "blue", "green", "low", "mid",
               "high", "open", "done"]
ENVELOPES = [(), ("data",), ("result", "record"), ("response", "body", "data")]
STATES = ["ok", "stale", "busy", "degraded"]
WORDS = ["apollo", "borealis", "cedar", "dune", "ember", "fjord", "granite", "harbor", "iris",
         "juniper", "kestrel", "lumen", "meadow", "nimbus", "onyx", "pine", "quartz", "ridge",
         "sable", "tundra", "umber", "vale", "willow", "zephyr"]
_ID_SCHEMA = {"type": "string", "pattern": "^[a-z]{3}-[0-9a-f]{5}$"}
# (mean ms range, CPU share choices) per tool kind
_TIMING = {"list": ((120, 900), [0.03, 0.1, 0.3, 0.8]), "get": ((60, 700), [0.02, 0.05, 0.5]),
           "check": ((40, 400), [0.05, 0.2, 1.0]), "write": ((100, 800), [0.05, 0.1])}


def new_id(rng: random.Random, noun: str) -> str:
    return f"{noun[:3]}-{rng.randrange(16 ** 5):05x}"


def word(rng: random.Random) -> str:
    return rng.choice(WORDS)


@dataclass(frozen=True)
class ToolModel:
    """One generated tool: its spec, timing, and the names its results use."""

    spec: ToolSpec
    kind: str                 # "list" | "get" | "check" | "write"
    noun: str
    mean_ms: float
    sd_ms: float
    cpu_share: float
    id_arg: str = ""          # get, check, write: the argument naming the entity
    scope_arg: str = ""       # list: the scope argument
    value_arg: str = ""       # write: the value it sets (one of ATTR_VALUES)
    items_key: str = ""       # list: the items' key; get: the entity's key
    id_key: str = ""          # list items' id key
    name_key: str = ""
    num_key: str = ""
    attr_key: str = ""        # get: a categorical field
    ref_key: str = ""         # get: the nested reference
    ref_noun: str = ""        # get: the noun that reference names
    envelope: tuple[str, ...] = ()  # keys the payload is wrapped in ("data", "record", ...)
    ref_path: tuple[str, ...] = ()  # get: where the reference's id is in the entity

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def speculable(self) -> bool:
        return self.spec.speculation is SpeculationPolicy.ALLOW

    def _wrap(self, payload: dict[str, Any]) -> dict[str, Any]:
        for key in reversed(self.envelope):
            payload = {key: payload}
        return payload

    def payload(self, result: Any) -> dict[str, Any]:
        """The result without its envelope."""
        for key in self.envelope:
            result = result[key]
        out: dict[str, Any] = result
        return out

    def list_result(self, rng: random.Random, n: int, *, page: int = 1,
                    has_more: bool = False, names: list[str] | None = None) -> dict[str, Any]:
        names = names or [word(rng) for _ in range(n)]
        items = [{self.id_key: new_id(rng, self.noun), self.name_key: name,
                  self.num_key: rng.randint(1, 999)} for name in names]
        return {**self._wrap({self.items_key: items}), "page": page, "has_more": has_more}

    def get_result(self, rng: random.Random, ident: str, attr: str | None = None
                   ) -> dict[str, Any]:
        ref: dict[str, Any] = {"id": new_id(rng, self.ref_noun), "name": word(rng)}
        for key in reversed(self.ref_path[1:-1]):
            ref = {key: ref}
        return self._wrap({self.items_key: {
            "id": ident, self.attr_key: attr or rng.choice(ATTR_VALUES),
            self.num_key: round(rng.uniform(0, 100), 2), self.ref_path[0]: ref}})

    def ref_id(self, entity: Mapping[str, Any]) -> str:
        """The id of the entity ``entity`` (a get result's payload entity) refers to."""
        v: Any = entity
        for key in self.ref_path:
            v = v[key]
        return str(v)

    def check_result(self, rng: random.Random, state: str | None = None) -> dict[str, Any]:
        s = state or rng.choice(STATES)
        return {"state": s, "ready": s == "ok"}

    def write_result(self, ident: str, value: str) -> dict[str, Any]:
        return {"ok": True, "id": ident, self.value_arg: value}


@dataclass(frozen=True)
class ToolSet:
    """A generated world: tools by name, the nouns, and the agent's think time."""

    seed: int
    tools: Mapping[str, ToolModel]
    nouns: tuple[str, ...]
    think_ms: tuple[float, float]       # mean, sd of the agent's time to decide a call
    first_think_ms: tuple[float, float]  # ... of the first call (reading the request)

    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self.tools.values()]

    def tool(self, kind: str, noun: str) -> ToolModel:
        return next(t for t in self.tools.values() if t.kind == kind and t.noun == noun)

    def pick_noun(self, rng: random.Random, exclude: tuple[str, ...] = ()) -> str:
        return rng.choice([n for n in self.nouns if n not in exclude] or list(self.nouns))

    def save_specs(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps([s.to_json() for s in self.specs()], indent=1),
                              encoding="utf-8")


def _timing(rng: random.Random, kind: str) -> tuple[float, float, float]:
    (lo, hi), shares = _TIMING[kind]
    mean = rng.uniform(lo, hi)
    return round(mean, 1), round(mean * rng.uniform(0.1, 0.35), 1), rng.choice(shares)


def _tool(rng: random.Random, kind: str, noun: str, ref_noun: str, denied: bool) -> ToolModel:
    verb = rng.choice(VERBS[kind])  # the verb lists are disjoint: names are unique
    name = f"{verb}_{noun}s" if kind == "list" else f"{verb}_{noun}"
    mean, sd, cpu = _timing(rng, kind)
    id_arg = rng.choice([f"{noun}_id", "id", f"{noun}"])
    model: dict[str, Any] = {"kind": kind, "noun": noun, "mean_ms": mean, "sd_ms": sd,
                             "cpu_share": cpu, "num_key": rng.choice(NUM_KEYS)}
    if kind in ("list", "get"):
        model["envelope"] = rng.choice(ENVELOPES)
    props: dict[str, Any]
    reads: list[str]
    writes: list[str]
    if kind == "list":
        scope = rng.choice(SCOPE_ARGS)
        props = {scope: {"type": "string", "maxLength": 40},
                 "page": {"type": "integer", "minimum": 1},
                 "limit": {"type": "integer", "minimum": 1, "maximum": 100}}
        reads, writes, required = [f"{noun}s:{{{scope}}}"], [], [scope]
        model.update(scope_arg=scope, items_key=f"{noun}s", id_key=rng.choice(ID_KEYS),
                     name_key=rng.choice(NAME_KEYS))
    elif kind == "get":
        props = {id_arg: _ID_SCHEMA, "detail": {"type": "string", "enum": ["brief", "full"]}}
        reads, writes, required = [f"{noun}:{{{id_arg}}}"], [], [id_arg]
        ref = rng.choice(REF_KEYS)
        model.update(id_arg=id_arg, items_key=noun, attr_key=rng.choice(ATTR_KEYS),
                     ref_key=ref, ref_noun=ref_noun,
                     ref_path=rng.choice([(ref, "id"), ("links", ref, "data", "id")]))
    elif kind == "check":
        props = {id_arg: _ID_SCHEMA}
        reads, writes, required = [f"{noun}:{{{id_arg}}}", "health"], [], [id_arg]
        model.update(id_arg=id_arg)
    else:
        value = rng.choice(VALUE_ARGS)
        props = {id_arg: _ID_SCHEMA, value: {"type": "string", "enum": ATTR_VALUES}}
        reads, writes, required = [f"{noun}:{{{id_arg}}}"], [f"{noun}:{{{id_arg}}}",
                                                              f"{noun}s:*"], [id_arg, value]
        model.update(id_arg=id_arg, value_arg=value)
    if kind == "write":
        effect = Effect.WRITE
        policy = rng.choice([SpeculationPolicy.DRY_RUN, SpeculationPolicy.DRY_RUN,
                             SpeculationPolicy.DENY])
    else:
        effect = Effect.READ
        policy = SpeculationPolicy.DENY if denied else SpeculationPolicy.ALLOW
    spec = ToolSpec(name=name, description=f"{verb} {noun} ({kind})",
                    parameters={"type": "object", "properties": props, "required": required,
                                "additionalProperties": False},
                    effect=effect, speculation=policy, reads=tuple(reads), writes=tuple(writes))
    return ToolModel(spec=spec, **model)


def make_toolset(seed: int, n_nouns: int = 5, denied_reads: int = 2) -> ToolSet:
    """A random tool set: ``n_nouns`` entities with a list, get, check and write tool each;
    ``denied_reads`` of the reads have x-speculation deny."""
    rng = random.Random(f"toolset-{seed}")
    nouns = tuple(rng.sample(NOUNS, n_nouns))
    denied = set(rng.sample([(n, k) for n in nouns for k in ("list", "get", "check")],
                            denied_reads))
    tools: dict[str, ToolModel] = {}
    for i, noun in enumerate(nouns):
        ref = nouns[(i + 1 + rng.randrange(n_nouns - 1)) % n_nouns]
        for kind in ("list", "get", "check", "write"):
            t = _tool(rng, kind, noun, ref, (noun, kind) in denied)
            tools[t.name] = t
    think = rng.uniform(200, 450)
    return ToolSet(seed, tools, nouns, (round(think, 1), round(think * 0.25, 1)),
                   (round(think * 2, 1), round(think * 0.5, 1)))
