"""Filling templates: one request's words and the calls they must decode to.

A :class:`Builder` works for one example: a tool set, a scene (robot), which side of
the split (training or held out: families and values of that side only) and the open
value pools. :meth:`Builder.fill` turns a template (:mod:`models.tune.phrases`) into
words and calls; :meth:`Builder.single` picks a tool and one of its template families.
The compound kinds (:mod:`models.tune.compounds`) are built from these parts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from control.tools import ToolCall, ToolSpec
from models.callformat import ArgKind, ArgSpec, arg_specs
from models.tune.families import Family, family_id, split
from models.tune.openvalues import OpenPools
from models.tune.phrases import TEMPLATES, generic_templates
from models.tune.values import say_value
from realtime.errors import RtAgentError

__all__ = ["Builder", "Part", "Scene", "TuneDataError"]

_SLOT = re.compile(r"\{([a-z_]+?)(\d?)\}")
_QUESTION_START = ("what", "how", "is ", "are ", "do ", "did ", "where", "which", "any ",
                   "who", "when", "will ", "should ", "can you tell", "tell me")
Scene = tuple[str, list[str], str | None]  # (text, visible objects, held object)


class TuneDataError(RtAgentError):
    """Training data cannot be generated for the given tools."""


@dataclass(frozen=True)
class Part:
    """Words and the calls they ask for; ``family``: the phrasing families used."""

    words: str
    calls: tuple[ToolCall, ...]
    family: str
    question: bool = False


def _fixed(spec: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in spec.split(",") if kv) if spec else {}


def _coerce(raw: str, arg: ArgSpec | None) -> Any:
    if raw in ("true", "false"):
        return raw == "true"
    if raw.startswith("$"):
        return raw
    return raw if arg is None or arg.kind in (ArgKind.ENUM, ArgKind.STRING) else float(raw)


def is_imperative(text: str) -> bool:
    """Whether a template reads as an order ("turn off ..."), not a question or a wish."""
    t = text.partition("|")[0].lower()
    return not (t.endswith("?") or t.startswith(_QUESTION_START) or t.startswith("{")
                or t.startswith(("i ", "i'", "we ")))


class Builder:
    """Makes the parts of one example (see the module doc)."""

    def __init__(self, toolset: Any, rng: random.Random, heldout: bool, scene: Scene | None,
                 pools: OpenPools) -> None:
        self.ts, self.rng, self.heldout, self.pools = toolset, rng, heldout, pools
        self.scene = scene
        self.visible = None if scene is None else scene[1]
        self.holding = None if scene is None else scene[2]
        self.by_name: dict[str, ToolSpec] = {s.name: s for s in toolset.tools}
        self.args = {s.name: {a.name: a for a in arg_specs(s)} for s in toolset.tools}

    # ------------------------------------------------------------------ templates
    def templates(self, tool: str) -> list[Family[str]]:
        """``tool``'s template families on this side of the split."""
        spec = self.by_name[tool]
        texts = TEMPLATES.get(tool) or generic_templates(tool, arg_specs(spec), spec.description)
        return split([Family(family_id(f"one/{tool}", t), t) for t in texts], self.heldout)

    def fill(self, tools: Sequence[str], template: str, it_ok: bool = True
             ) -> tuple[str, tuple[ToolCall, ...]]:
        """Words and calls of ``template`` for ``tools`` (slot ``{name}`` / ``{name2}``: the
        argument of the first tool that has it / of tool 2; ``{cube}``: a cube seen;
        after ``|``: arguments fixed, to a value or to another slot's value)."""
        text, _, fixed_raw = template.partition("|")
        fixed = _fixed(fixed_raw)
        values: dict[str, Any] = {}

        def arg_for(slot: str, n: str) -> ArgSpec:
            name = "object" if slot == "cube" else slot
            order = [int(n) - 1] if n else list(range(len(tools)))
            for i in order:
                if name in self.args[tools[i]]:
                    return self.args[tools[i]][name]
            raise TuneDataError(f"template {template!r}: no tool of {list(tools)} has {slot!r}")

        def sub(m: re.Match[str]) -> str:
            slot, n = m.group(1), m.group(2)
            arg = arg_for(slot, n)
            choices: list[Any] | None = None
            if arg.kind is ArgKind.ENUM and self.visible is not None and slot in (
                    "object", "target", "cube"):
                choices = [v for v in arg.enum if v in self.visible
                           or (v == "bin" and slot == "target")]
            group = ("object", "target", "cube") if choices is not None else (slot,)
            taken = {v for k, v in values.items() if k.rstrip("0123456789") in group}
            # what the gripper holds is often put down as just "it" ("put it on the blue
            # cube"), unless the template has an "it" already ("pick up {object} and put it")
            if (it_ok and slot == "object" and list(tools) == ["place_on"] and self.holding
                    and self.holding not in taken
                    and not re.search(r"\bit\b", text) and self.rng.random() < 0.75):
                values[slot] = self.holding
                return "it"
            schema = self.by_name[tools[int(n) - 1 if n else 0]].properties.get(arg.name)
            for _ in range(8):
                words, value = say_value(slot, arg, self.rng, self.heldout, choices,
                                         self.pools, schema)
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
                if name not in arguments and arg.required and tool not in TEMPLATES:
                    arguments[name] = say_value(name, arg, self.rng, self.heldout,
                                                pools=self.pools,
                                                schema=self.by_name[tool].properties.get(name))[1]
            calls.append(ToolCall(tool, arguments))
        return words, tuple(calls)

    # ------------------------------------------------------------------ one call
    def single(self, tool: str | None = None, imperative: bool = False,
               it_ok: bool = True) -> Part | None:
        """One call's request: a tool (any, or ``tool``) and one of its families."""
        name = tool or self.rng.choice(sorted(self.by_name))
        fams = self.templates(name)
        if imperative:
            fams = [f for f in fams if is_imperative(f.item)]
            if not fams:
                return None
        fam = self.rng.choice(fams)
        words, calls = self.fill([name], fam.item, it_ok)
        if name not in TEMPLATES:  # generic tools: optional arguments, sometimes
            extra = [a for a in arg_specs(self.by_name[name]) if not a.required]
            for a in extra:
                if self.rng.random() < 0.4:
                    w, v = say_value(a.name, a, self.rng, self.heldout, pools=self.pools,
                                     schema=self.by_name[name].properties.get(a.name))
                    words += f", {a.name.replace('_', ' ')} {w}"
                    calls = (ToolCall(name, {**calls[0].arguments, a.name: v}),)
        return Part(words, calls, fam.id, words.rstrip().endswith("?"))
