"""Training data from tool specs: requests, optional scene, and the exact answer text.

::

    from models.tune.data import DataOptions, generate, load_toolsets
    toolsets = load_toolsets(["sim_envs/robot_tools.json", "audio/voice_tools.json"])
    train, heldout = generate(toolsets, DataOptions(n_train=2400, n_heldout=100, seed=0))
    train[0].request, train[0].answer()   # "grab the red block", "grasp(object=red_cube)"

Phrasings come from :mod:`models.tune.phrases`: templates per tool (synonyms,
word order, polite and terse wrappers), numbers in digits and words, negative
values, units (cm, minutes, hours, percent, degrees), multi-call requests,
objects named by colour from the scene, and "no tool" requests (chit-chat, and
requests for tools of another tool set). Held-out examples use only held-out
templates and value pools, never seen in training. Requests that appear in the
Decoder issue's eval sets (``models/evalsets/*.jsonl``) are dropped from the
training data (they are never read for anything else).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from control.tools import ToolCall, ToolSpec, load_tool_specs
from models.callformat import ArgKind, ArgSpec, arg_specs, check_expressible, render
from models.prompts import render_scene, user_content
from models.tune.phrases import HELDOUT_EVERY, NO_TOOL, PAIRS, TEMPLATES, generic_templates
from models.tune.values import say_value
from realtime.errors import ConfigError, RtAgentError

__all__ = ["DataOptions", "Example", "ToolSet", "eval_requests", "generate", "load_toolsets"]

EVALSET_DIR = Path(__file__).resolve().parent.parent / "evalsets"
_SLOT = re.compile(r"\{([a-z_]+?)(\d?)\}")


class TuneDataError(RtAgentError):
    """Training data cannot be generated for the given tools."""


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
    - ``none_fraction``: share of "no tool" chit-chat; ``cross_none_fraction``:
      share of requests for another tool set's tools (answer ``none()``).
    - ``pair_fraction``: share of two-call requests.
    - ``scene_group``: consecutive training examples of a tool set with a scene
      share one scene (so a training batch shares its prompt up to the request).
    - ``exclude_requests``: requests never to emit (default: the eval sets').
    """

    n_train: int = 2400
    n_heldout: int = 100
    seed: int = 0
    none_fraction: float = 0.06
    cross_none_fraction: float = 0.03
    pair_fraction: float = 0.15
    scene_group: int = 8
    exclude_requests: frozenset[str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("n_train", "n_heldout"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: expected >= 0, got {getattr(self, name)}")
        if self.scene_group < 1:
            raise ConfigError(f"scene_group: expected >= 1, got {self.scene_group}")
        total = self.none_fraction + self.cross_none_fraction + self.pair_fraction
        if min(self.none_fraction, self.cross_none_fraction, self.pair_fraction) < 0 or total > 0.9:
            raise ConfigError(f"fractions: expected each >= 0 and a sum <= 0.9, got {total:.2f}")


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


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9.\- ]", " ", text.lower()).split())


def eval_requests(directory: Path = EVALSET_DIR) -> frozenset[str]:
    """Normalized requests of the Decoder eval sets (to keep them out of training)."""
    found: set[str] = set()
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            case = json.loads(line)
            texts = [m.get("content", "") for m in case.get("messages", []) if m.get("role") == "user"]
            texts += [str(case[k]) for k in ("request", "text", "query") if k in case]
            for t in texts:
                found.add(normalize(t.split("Request:", 1)[-1]))
    return frozenset(found)


def _is_heldout(index: int) -> bool:
    return index % HELDOUT_EVERY == HELDOUT_EVERY - 1


def _pick(items: Sequence[Any], rng: random.Random, heldout: bool) -> tuple[int, Any]:
    idx = [i for i in range(len(items)) if _is_heldout(i) == heldout] or list(range(len(items)))
    i = rng.choice(idx)
    return i, items[i]


def _scene_objects(tools: Sequence[ToolSpec]) -> list[str]:
    """The object ids a scene can show: enum values of ``object`` arguments."""
    found: list[str] = []
    for spec in tools:
        for a in arg_specs(spec):
            if a.kind is ArgKind.ENUM and a.name == "object":
                found += [str(v) for v in a.enum if str(v) not in found]
    return found


Scene = tuple[str, list[str], str | None]  # (text, visible objects, held object)


def _make_scene(objects: list[str], rng: random.Random) -> Scene:
    k = rng.randint(min(2, len(objects)), len(objects))
    visible = rng.sample(objects, k)
    for _ in visible:  # positions are still drawn (the data depend on the draws), not written
        rng.uniform(0.3, 0.7), rng.uniform(-0.35, 0.35)
    listed = list(visible)
    if rng.random() < 0.3:
        rng.uniform(0.3, 0.6), rng.uniform(-0.4, 0.4)
        listed.append("bin")
    holding = rng.choice(visible) if rng.random() < 0.4 else None
    return render_scene(listed, holding), visible, holding


def _fixed(spec: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in spec.split(",") if kv) if spec else {}


def _coerce(raw: str, arg: ArgSpec | None) -> Any:
    if raw in ("true", "false"):
        return raw == "true"
    if raw.startswith("$"):
        return raw
    return raw if arg is None or arg.kind in (ArgKind.ENUM, ArgKind.STRING) else float(raw)


class _Builder:
    def __init__(self, toolset: ToolSet, rng: random.Random, heldout: bool,
                 visible: list[str] | None, holding: str | None = None) -> None:
        self.ts, self.rng, self.heldout, self.visible = toolset, rng, heldout, visible
        self.holding = holding
        self.by_name = {s.name: s for s in toolset.tools}
        self.args = {s.name: {a.name: a for a in arg_specs(s)} for s in toolset.tools}

    def templates(self, tool: str) -> list[str]:
        if tool in TEMPLATES:
            return TEMPLATES[tool]
        spec = self.by_name[tool]
        return generic_templates(tool, arg_specs(spec), spec.description)

    def fill(self, tools: Sequence[str], template: str) -> tuple[str, tuple[ToolCall, ...]]:
        text, _, fixed_raw = template.partition("|")
        fixed = _fixed(fixed_raw)
        values: dict[str, Any] = {}

        def arg_for(slot: str, n: str) -> ArgSpec:
            order = [int(n) - 1] if n else list(range(len(tools)))
            for i in order:
                if slot in self.args[tools[i]]:
                    return self.args[tools[i]][slot]
            raise TuneDataError(f"template {template!r}: no tool of {list(tools)} has {slot!r}")

        def sub(m: re.Match[str]) -> str:
            slot, n = m.group(1), m.group(2)
            arg = arg_for(slot, n)
            choices: list[Any] | None = None
            if arg.kind is ArgKind.ENUM and self.visible is not None and slot in ("object", "target"):
                choices = [v for v in arg.enum if v in self.visible or v == "bin"]
            group = ("object", "target") if slot in ("object", "target") else (slot,)
            taken = {v for k, v in values.items() if k.rstrip("0123456789") in group}
            # what the gripper holds is often put down as just "it" ("put it on the blue
            # cube"), unless the template has an "it" already ("pick up {object} and put it")
            if (slot == "object" and list(tools) == ["place_on"] and self.holding
                    and self.holding not in taken
                    and not re.search(r"\bit\b", text) and self.rng.random() < 0.75):
                values[slot] = self.holding
                return "it"
            for _ in range(8):
                words, value = say_value(slot, arg, self.rng, self.heldout, choices)
                if value not in taken:
                    break
            values[slot + n] = value
            return words

        words = _SLOT.sub(sub, text)
        calls = []
        for i, tool in enumerate(tools):
            suffix = "" if i == 0 else str(i + 1)
            arguments: dict[str, Any] = {}
            for name, arg in self.args[tool].items():
                for key in (name + suffix, name):
                    if key in fixed:
                        raw = fixed[key]
                        arguments[name] = values[raw] if raw in values else _coerce(raw, arg)
                        break
                    if key in values:
                        arguments[name] = values[key]
                        break
                if name not in arguments and arg.required and self.by_name[tool].name not in TEMPLATES:
                    arguments[name] = say_value(name, arg, self.rng, self.heldout)[1]
            calls.append(ToolCall(tool, arguments))
        return words, tuple(calls)

    def single(self) -> tuple[str, tuple[ToolCall, ...], str]:
        tool = self.rng.choice(sorted(self.by_name))
        i, template = _pick(self.templates(tool), self.rng, self.heldout)
        words, calls = self.fill([tool], template)
        if tool not in TEMPLATES:  # generic tools: optional arguments, sometimes
            extra = [a for a in arg_specs(self.by_name[tool]) if not a.required]
            for a in extra:
                if self.rng.random() < 0.4:
                    w, v = say_value(a.name, a, self.rng, self.heldout)
                    words += f", {a.name.replace('_', ' ')} {w}"
                    calls = (ToolCall(tool, {**calls[0].arguments, a.name: v}),)
        return words, calls, f"{tool}#{i}"

    def pair(self) -> tuple[str, tuple[ToolCall, ...], str] | None:
        fitting = [(i, p) for i, p in enumerate(PAIRS) if all(t in self.by_name for t in p[0])]
        fitting = [(i, p) for i, p in fitting if _is_heldout(i) == self.heldout] or fitting
        if fitting and self.rng.random() < 0.7:
            i, (tools, template) = self.rng.choice(fitting)
            words, calls = self.fill(tools, template)
            return words, calls, f"pair#{i}"
        w1, c1, t1 = self.single()
        w2, c2, t2 = self.single()
        if c1 == c2 or w1.endswith("?") or w2.endswith("?"):
            return None
        joint = self.rng.choice(["{a} and {b}", "{a}, then {b}", "first {a}, then {b}",
                                 "{a}. After that, {b}", "{a} and also {b}"])
        return (joint.format(a=w1.rstrip("?"), b=w2.rstrip("?")), c1 + c2, f"{t1}+{t2}")


def _wrap(text: str, rng: random.Random, robot: bool) -> str:
    question = text.endswith("?")
    if question:
        forms = ["{p}", "{p}", "{p}", "hey, {p}", "quick question: {p}"]
    else:
        forms = ["{p}", "{p}", "{p}", "please {p}", "{p}, please", "could you {p}?", "can you {p}?",
                 "I'd like you to {p}", "would you {p}?", "hey, {p}", "now {p}", "ok, {p}"]
        if robot:
            forms += ["robot, {p}", "{p} now"]
    out = rng.choice(forms).format(p=text)
    if rng.random() < 0.5:
        out = out[0].upper() + out[1:]
    if not out.endswith("?") and rng.random() < 0.3:
        out += rng.choice([".", "!"])
    return out


def _one(toolsets: Sequence[ToolSet], ts: ToolSet, rng: random.Random, heldout: bool,
         opt: DataOptions, fixed_scene: Scene | None = None) -> Example | None:
    objects = _scene_objects(ts.tools)
    if fixed_scene is not None:
        scene, visible, holding = fixed_scene
    else:
        scene, visible, holding = _make_scene(objects, rng) if objects else (None, None, None)
    b = _Builder(ts, rng, heldout, visible, holding)
    r = rng.random()
    if r < opt.none_fraction:
        i, text = _pick(NO_TOOL, rng, heldout)
        text = text[0].upper() + text[1:] if rng.random() < 0.5 else text
        return Example(ts, text, (), scene, f"none#{i}")
    others = [o for o in toolsets if o is not ts]
    if r < opt.none_fraction + opt.cross_none_fraction and others:
        other = rng.choice(others)
        names = {s.name for s in ts.tools}
        ob = _Builder(other, rng, heldout, None)
        words, calls, tid = ob.single()
        if any(c.name in names for c in calls):
            return None
        return Example(ts, _wrap(words, rng, bool(objects)), (), scene, f"cross:{tid}")
    if r < opt.none_fraction + opt.cross_none_fraction + opt.pair_fraction:
        got = b.pair()
        if got is None:
            return None
        words, calls, tid = got
    else:
        words, calls, tid = b.single()
    return Example(ts, _wrap(words, rng, bool(objects)), calls, scene, tid)


def _split(toolsets: Sequence[ToolSet], n: int, rng: random.Random, heldout: bool,
           opt: DataOptions, exclude: set[str]) -> list[Example]:
    out: list[Example] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise TuneDataError(f"could only generate {len(out)} of {n} distinct examples; "
                                "lower the count or add tools")
        ts = toolsets[len(out) % len(toolsets)]
        ex = _one(toolsets, ts, rng, heldout, opt)
        if ex is None:
            continue
        key = normalize(ex.request)
        if key in exclude:
            continue
        exclude.add(key) if heldout else None
        out.append(ex)
    return out


def generate(toolsets: Sequence[ToolSet], options: DataOptions | None = None
             ) -> tuple[list[Example], list[Example]]:
    """``(train, heldout)``: held-out requests use templates and values training never sees."""
    opt = options or DataOptions()
    if not toolsets:
        raise TuneDataError("no tool sets given; pass --tools FILE.json")
    for ts in toolsets:
        check_expressible(ts.tools)
        if not ts.tools:
            raise TuneDataError(f"tool set {ts.name!r} is empty")
    excluded = set(eval_requests() if opt.exclude_requests is None else opt.exclude_requests)
    held = _split(toolsets, opt.n_heldout, random.Random(opt.seed * 7919 + 1), True, opt, set(excluded))
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
        ex = _one(toolsets, ts, rng, False, opt, fixed)
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
