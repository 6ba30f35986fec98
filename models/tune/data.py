"""Training data from tool specs: requests, optional scene, and the exact answer text.

::

    from models.tune.data import DataOptions, generate, load_toolsets
    toolsets = load_toolsets(["sim_envs/robot_tools.json", "audio/voice_tools.json"])
    train, heldout = generate(toolsets, DataOptions(n_train=2400, n_heldout=100, seed=0))
    train[0].request, train[0].answer()   # "grab the red block", "grasp(object=red_cube)"

Phrasings come from :mod:`models.tune.phrases` (templates per tool: synonyms, word
order, polite and terse wrappers, long and short) and :mod:`models.tune.compounds`
(requests that want several calls: "and", "then", "after", lists, "every" / "all" /
"both" / "all but" over the scene's cubes or the home's rooms, relative references,
``$k`` results; requests taken back or corrected); values from
:mod:`models.tune.values` (numbers in digits and words, units, objects by colour) and
the open pools (:mod:`models.tune.openvalues`: thousands of cities, items, names...);
"no tool" requests (chit-chat, "never mind", requests for another tool set's tools).

Held-out examples use only held-out *families* (whole phrasing patterns:
:mod:`models.tune.families`) and held-out values, never seen in training. The Decoder
issue's eval sets (``models/evalsets/*.jsonl``) are never emitted: their requests are
dropped and their free-text values are left out of the pools (they are never read for
anything else).
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from control.tools import ToolCall, ToolSpec, load_tool_specs
from models.callformat import ArgKind, arg_specs, check_expressible, render
from models.prompts import render_scene, user_content
from models.tune import compounds
from models.tune.builder import Builder, Part, Scene, TuneDataError, is_imperative
from models.tune.families import Family, family_id, split
from models.tune.heldback import eval_requests, eval_values, normalize
from models.tune.openvalues import OpenPools
from models.tune.phrases import NO_TOOL
from realtime.errors import ConfigError

__all__ = ["DataOptions", "Example", "ToolSet", "TuneDataError", "eval_requests", "eval_values",
           "generate", "load_toolsets"]

# how the compound share divides among the compound kinds
_COMPOUND_MIX = (("joined", 0.45), ("listed", 0.25), ("related", 0.12), ("quantified", 0.18))


@dataclass(frozen=True)
class ToolSet:
    """A named list of tools offered together (one prompt prefix)."""

    name: str
    tools: tuple[ToolSpec, ...]


@dataclass(frozen=True)
class Example:
    """One training or evaluation case: the request, its scene, the expected calls."""

    toolset: ToolSet
    request: str
    calls: tuple[ToolCall, ...]
    scene: str | None = None
    template: str = ""

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": user_content(self.request, self.scene)}]

    def answer(self) -> str:
        """The exact answer text the model is trained to produce (compact call format)."""
        return render(self.calls, self.toolset.tools)

    def to_json(self) -> dict[str, Any]:
        return {"toolset": self.toolset.name, "messages": self.messages(),
                "expected": [c.to_json() for c in self.calls], "answer": self.answer(),
                "template": self.template}


@dataclass(frozen=True)
class DataOptions:
    """How much data and of which kinds.

    - ``n_train`` / ``n_heldout``: examples per split (over all tool sets).
    - ``seed``: the generator's seed (same seed, same data).
    - ``none_fraction``: share of "no tool" turns (chit-chat, "never mind", "stop");
      ``cross_none_fraction``: share of requests for another tool set's tools (answer
      ``none()``); ``cancel_fraction``: requests taken back ("..., actually never mind":
      no call) or corrected ("..., no wait, ...": the correction's calls).
    - ``pair_fraction``: share of compound requests (several calls: joined, lists,
      related, quantified; :mod:`models.tune.compounds`).
    - ``scene_group``: consecutive training examples of a tool set with a scene
      share one scene (so a training batch shares its prompt up to the request).
    - ``exclude_requests`` / ``exclude_values``: requests never to emit and free-text
      values never to use (default: the eval sets').
    """

    n_train: int = 2400
    n_heldout: int = 100
    seed: int = 0
    none_fraction: float = 0.06
    cross_none_fraction: float = 0.03
    pair_fraction: float = 0.35
    scene_group: int = 8
    cancel_fraction: float = 0.04
    exclude_requests: frozenset[str] | None = field(default=None, compare=False)
    exclude_values: frozenset[str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("n_train", "n_heldout"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: expected >= 0, got {getattr(self, name)}")
        if self.scene_group < 1:
            raise ConfigError(f"scene_group: expected >= 1, got {self.scene_group}")
        shares = (self.none_fraction, self.cross_none_fraction, self.pair_fraction,
                  self.cancel_fraction)
        if min(shares) < 0 or sum(shares) > 0.9:
            raise ConfigError(f"fractions: expected each >= 0 and a sum <= 0.9, got {sum(shares):.2f}")


def load_toolsets(paths: Iterable[str | Path]) -> list[ToolSet]:
    """One :class:`ToolSet` per JSON file (a list of OpenAI-style function specs)."""
    out = []
    for p in paths:
        path = Path(p)
        try:
            specs = load_tool_specs(json.loads(path.read_text()), str(path))
        except FileNotFoundError:
            raise TuneDataError(f"tool spec file not found: {path}; pass --tools FILE.json") from None
        except json.JSONDecodeError as exc:
            raise TuneDataError(f"{path} is not JSON ({exc}); expected a list of tool specs") from exc
        check_expressible(specs)
        out.append(ToolSet(path.stem, tuple(specs)))
    return out


def _scene_objects(tools: Sequence[ToolSpec]) -> list[str]:
    """The object ids a scene can show: enum values of ``object`` arguments."""
    found: list[str] = []
    for spec in tools:
        for a in arg_specs(spec):
            if a.kind is ArgKind.ENUM and a.name == "object":
                found += [str(v) for v in a.enum if str(v) not in found]
    return found


def _make_scene(objects: list[str], rng: random.Random) -> Scene:
    k = rng.randint(min(2, len(objects)), len(objects))
    visible = rng.sample(objects, k)
    listed = list(visible)
    if rng.random() < 0.3:
        listed.append("bin")
    holding = rng.choice(visible) if rng.random() < 0.4 else None
    return render_scene(listed, holding), visible, holding


_SHORT = ["{p}", "{p}", "{p}", "{p}", "now {p}", "ok, {p}", "{p} now", "hey, {p}"]
_POLITE = ["please {p}", "{p}, please", "could you {p}?", "can you {p}?", "I'd like you to {p}",
           "would you {p}?", "{p}, thanks"]
_LONG = ["hey, when you get a moment, could you {p}?", "I was wondering if you could {p}",
         "if it's not too much trouble, {p}", "right, so, {p}, if you don't mind",
         "okay, here's what I need: {p}", "alright, {p}, thank you very much"]


def _wrap(text: str, rng: random.Random, robot: bool) -> str:
    """Polite, terse or long wrappers around a request (shared by every family)."""
    question = text.endswith("?") or not is_imperative(text)
    if question:
        forms = ["{p}", "{p}", "{p}", "hey, {p}", "quick question: {p}", "tell me, {p}"]
    else:
        r = rng.random()
        forms = _SHORT if r < 0.45 else (_POLITE if r < 0.85 else _LONG)
        if robot and r < 0.45:
            forms = [*forms, "robot, {p}"]
    out = rng.choice(forms).format(p=text)
    if rng.random() < 0.5:
        out = out[0].upper() + out[1:]
    if not out.endswith("?") and rng.random() < 0.3:
        out += rng.choice([".", "!"])
    return out


def _no_tool(rng: random.Random, heldout: bool) -> tuple[str, str]:
    fam: Family[str] = rng.choice(split([Family(family_id("none", t), t) for t in NO_TOOL],
                                        heldout))
    return fam.item, fam.id


def _compound(b: Builder) -> Part | None:
    r, acc = b.rng.random(), 0.0
    for kind, share in _COMPOUND_MIX:
        acc += share
        if r < acc:
            got: Part | None = getattr(compounds, kind)(b)
            return got
    return compounds.joined(b)


def _one(toolsets: Sequence[ToolSet], ts: ToolSet, rng: random.Random, heldout: bool,
         opt: DataOptions, pools: OpenPools, fixed_scene: Scene | None = None) -> Example | None:
    objects = _scene_objects(ts.tools)
    scene = fixed_scene if fixed_scene is not None else (
        _make_scene(objects, rng) if objects else None)
    text = scene[0] if scene is not None else None
    b = Builder(ts, rng, heldout, scene, pools)
    r = rng.random()
    edges = list(itertools.accumulate([opt.none_fraction, opt.cross_none_fraction,
                                       opt.cancel_fraction, opt.pair_fraction]))
    if r < edges[0]:
        words, fid = _no_tool(rng, heldout)
        words = words[0].upper() + words[1:] if rng.random() < 0.5 else words
        return Example(ts, words, (), text, fid)
    others = [o for o in toolsets if o is not ts]
    if r < edges[1] and others:
        other = rng.choice(others)
        got = Builder(other, rng, heldout, None, pools).single()
        names = {s.name for s in ts.tools}
        if got is None or any(c.name in names for c in got.calls):
            return None
        return Example(ts, _wrap(got.words, rng, bool(objects)), (), text, f"cross/{got.family}")
    part = (compounds.cancelled(b) if r < edges[2] else
            _compound(b) if r < edges[3] else b.single())
    if part is None:
        return None
    return Example(ts, _wrap(part.words, rng, bool(objects)), part.calls, text, part.family)


def _split(toolsets: Sequence[ToolSet], n: int, rng: random.Random, heldout: bool,
           opt: DataOptions, exclude: set[str], pools: OpenPools) -> list[Example]:
    out: list[Example] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise TuneDataError(f"could only generate {len(out)} of {n} distinct examples; "
                                "lower the count or add tools")
        ts = toolsets[len(out) % len(toolsets)]
        ex = _one(toolsets, ts, rng, heldout, opt, pools)
        if ex is None:
            continue
        key = normalize(ex.request)
        if key in exclude:
            continue
        exclude.add(key)
        out.append(ex)
    return out


def generate(toolsets: Sequence[ToolSet], options: DataOptions | None = None
             ) -> tuple[list[Example], list[Example]]:
    """``(train, heldout)``: held-out requests use families and values training never sees."""
    opt = options or DataOptions()
    if not toolsets:
        raise TuneDataError("no tool sets given; pass --tools FILE.json")
    for ts in toolsets:
        check_expressible(ts.tools)
        if not ts.tools:
            raise TuneDataError(f"tool set {ts.name!r} is empty")
    excluded = set(eval_requests() if opt.exclude_requests is None else opt.exclude_requests)
    pools = OpenPools(eval_values() if opt.exclude_values is None else opt.exclude_values)
    held = _split(toolsets, opt.n_heldout, random.Random(opt.seed * 7919 + 1), True, opt,
                  set(excluded), pools)
    train_exclude = excluded | {normalize(e.request) for e in held}
    train: list[Example] = []
    rng = random.Random(opt.seed)
    seen: set[str] = set()
    scenes: dict[str, tuple[Scene, int]] = {}
    tries = 0
    while len(train) < opt.n_train:
        tries += 1
        ts = toolsets[(len(train) // opt.scene_group) % len(toolsets)]
        fixed = None
        objects = _scene_objects(ts.tools)
        if objects:
            if ts.name not in scenes or scenes[ts.name][1] >= opt.scene_group:
                scenes[ts.name] = (_make_scene(objects, rng), 0)
            fixed = scenes[ts.name][0]
        ex = _one(toolsets, ts, rng, False, opt, pools, fixed)
        if ex is None or normalize(ex.request) in train_exclude:
            continue
        if objects:
            scenes[ts.name] = (scenes[ts.name][0], scenes[ts.name][1] + 1)
        key = normalize(ex.request) + ex.answer()
        if key in seen and tries < 20 * opt.n_train:  # repeats only when phrasings run out
            continue
        seen.add(key)
        train.append(ex)
    return train, held


def to_jsonl(examples: Iterable[Example], path: str | Path) -> None:
    with Path(path).open("w") as f:
        for ex in examples:
            f.write(json.dumps(ex.to_json(), ensure_ascii=False) + "\n")


def summary(examples: Sequence[Example]) -> Mapping[str, int]:
    counts: dict[str, int] = {}
    for ex in examples:
        key = "none" if not ex.calls else ("multi" if len(ex.calls) > 1 else ex.calls[0].name)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
