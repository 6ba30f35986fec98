"""Prompts: the system prompt, the tool list, few-shot examples, the chat template.

The same system prompt, tool list and examples serve both decoders; only the
answer format differs (``"compact"``: :mod:`models.callformat`; ``"json"``: a
JSON list of ``{"name", "arguments"}`` objects, what users do today). The tool
list and examples come first and stay fixed, so their KV cache is reused; the
changing parts (scene, request) come last.

A tool is listed as one line, e.g.::

    - move_to(x: number 0.2..0.8, y: number -0.5..0.5, z: number 0..0.7): Move the gripper ...
    - set_timer(minutes: number 0.1..600, label?: text): Start a timer.

The chat template is the GGUF's own (``tokenizer.chat_template``, rendered by
llama.cpp's built-in engine); a GGUF without one (Gemma 3 270M base) gets the
family's template by architecture (``gemma``), else ``chatml``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from control.tools import ToolCall, ToolSpec
from models.callformat import ArgSpec, arg_specs, describe_field, render

__all__ = [
    "EXAMPLES",
    "Example",
    "build_messages",
    "fallback_template",
    "render_answer",
    "render_scene",
    "scene_objects",
    "render_tool_list",
    "system_prompt",
    "user_content",
]

AnswerFormat = Literal["compact", "json"]


@dataclass(frozen=True)
class Example:
    """One few-shot turn: a request (with an optional scene) and its calls."""

    request: str
    calls: tuple[ToolCall, ...]
    scene: str | None = None


def _c(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(name, arguments)


def render_scene(objects: Sequence[str], holding: str | None = None,
                 positions: Mapping[str, Sequence[float]] | None = None) -> str:
    """The scene as every prompt writes it: ``red_cube, blue_cube. Gripper: empty.``

    Object ids and the gripper only, by default: the robot's calls name objects
    and take numbers from the request (the skills and ``locate_object`` look
    positions up), and coordinates cost ~18 prompt tokens per object, more than
    half of a robot call's prompt evaluation (measured: 88 -> 31 new tokens,
    p50 659 -> 381 ms). ``positions`` writes them (``red_cube at (0.42, -0.15,
    0.02)``) for a model trained to use them (the shipped adapter was not).
    """
    if positions is None:
        listed = ", ".join(objects)
    else:
        listed = "; ".join(f"{o} at ({', '.join(f'{v:.2f}' for v in positions[o])})"
                           for o in objects)
    return f"{listed}. Gripper: {f'holding {holding}' if holding else 'empty'}."


def scene_objects(scene: str) -> list[str]:
    """The object ids a scene written by :func:`render_scene` lists (either form)."""
    listed = scene.split(". Gripper:")[0]
    return [part.split(" at (")[0].strip() for part in re.split(r"[;,] (?![-\d])", listed)
            if part.strip()]


_SCENE_A = render_scene(["red_cube", "green_cube"])
_SCENE_B = render_scene(["blue_cube", "yellow_cube"], holding="blue_cube")

EXAMPLES: tuple[Example, ...] = (
    # robot (sim_envs/robot_tools.json); none of these is in the eval sets
    Example("take the green block", (_c("grasp", object="green_cube"),), _SCENE_A),
    Example("set the green block on top of the red one",
            (_c("place_on", object="green_cube", target="red_cube"),), _SCENE_A),
    Example("bring the gripper to x 0.5, y -0.2, z 0.3", (_c("move_to", x=0.5, y=-0.2, z=0.3),),
            _SCENE_A),
    Example("toss the red block away, then head back to the start",
            (_c("place_on", object="red_cube", target="bin"), _c("go_home")), _SCENE_A),
    Example("drop it onto the yellow cube",
            (_c("place_on", object="blue_cube", target="yellow_cube"),), _SCENE_B),
    Example("where exactly is the red one?", (_c("locate_object", object="red_cube"),), _SCENE_A),
    Example("open your hand", (_c("release"),), _SCENE_B),
    Example("tell me a joke", (), _SCENE_A),
    # voice (audio/voice_tools.json)
    Example("is it going to rain in Lisbon today?", (_c("get_weather", city="Lisbon"),)),
    Example("dim the bedroom lights to 30 percent",
            (_c("set_light", room="bedroom", on=True, brightness=30),)),
    Example("wake me in 20 minutes, call it nap", (_c("set_timer", minutes=20, label="nap"),)),
    Example("put oat milk on the list and make the office 19 degrees",
            (_c("add_to_shopping_list", item="oat milk"),
             _c("set_thermostat", room="office", celsius=19))),
    Example("what's the capital of Peru?", (_c("web_search", query="capital of Peru"),)),
    Example("thanks, that's all", ()),
)

_INSTRUCTIONS: dict[AnswerFormat, str] = {
    "compact": (
        "You turn a request into tool calls. Reply with the calls only, one per line, "
        "written as name(arg=value, ...): numbers in digits, ids bare, free text in double "
        "quotes. Reply none() when no tool fits."
    ),
    "json": (
        "You turn a request into tool calls. Reply with the calls only, as a JSON list of "
        'objects {"name": ..., "arguments": {...}}. Reply [] when no tool fits.'
    ),
}


def _describe_arg(arg: ArgSpec) -> str:
    return describe_field(arg)  # (arrays, objects, unions, defaults: models.callformat)


def _describe_result(schema: Mapping[str, Any] | None) -> str:
    """`` -> {city, celsius, condition}``: the fields of a declared result (``x-returns``)."""
    fields = list((schema or {}).get("properties") or {})
    return f" -> {{{', '.join(fields)}}}" if fields else ""


def render_tool_list(tools: Sequence[ToolSpec]) -> str:
    """One line per tool: signature, the fields of its result where it declares them
    (``x-returns``: what a later call may refer to), and description."""
    lines = []
    for spec in tools:
        sig = ", ".join(_describe_arg(a) for a in arg_specs(spec))
        desc = f": {spec.description}" if spec.description else ""
        lines.append(f"- {spec.name}({sig}){_describe_result(spec.returns)}{desc}")
    return "\n".join(lines)


_REFERENCES = (" A later call may use an earlier call's result: $1.celsius is the celsius "
               "field of the first call's result.")


def system_prompt(tools: Sequence[ToolSpec], fmt: AnswerFormat = "compact") -> str:
    """The instructions and the tool list; where a tool declares its result, how a later
    call refers to it (only then: the prompt of tools without results stays the same)."""
    refs = _REFERENCES if fmt == "compact" and any(_describe_result(t.returns) for t in tools) else ""
    return f"{_INSTRUCTIONS[fmt]}{refs}\nTools:\n{render_tool_list(tools)}"


def render_answer(calls: Sequence[ToolCall], tools: Sequence[ToolSpec],
                  fmt: AnswerFormat = "compact") -> str:
    """The exact assistant text for ``calls`` in either format."""
    if fmt == "compact":
        return render(calls, tools)
    return json.dumps([{"name": c.name, "arguments": dict(c.arguments)} for c in calls])


def user_content(request: str, scene: str | None = None) -> str:
    return f"Scene: {scene}\nRequest: {request}" if scene else request


def _examples_for(tools: Sequence[ToolSpec], examples: Sequence[Example] | None) -> list[Example]:
    if examples is not None:
        return list(examples)
    names = {t.name for t in tools}
    picked = [e for e in EXAMPLES if e.calls and all(c.name in names for c in e.calls)]
    if not picked:
        return []
    # a "no tool" example from the same domain (scene or not) as the picked ones
    scene = picked[0].scene is not None
    picked += [e for e in EXAMPLES if not e.calls and (e.scene is not None) == scene][:1]
    return picked


def build_messages(
    tools: Sequence[ToolSpec],
    conversation: Sequence[Mapping[str, str]],
    fmt: AnswerFormat = "compact",
    examples: Sequence[Example] | None = None,
) -> list[dict[str, str]]:
    """System prompt + few-shot turns + ``conversation`` (its last turn is the user's).

    ``examples=None`` picks the built-in :data:`EXAMPLES` whose tools are all in
    ``tools``; pass ``[]`` for zero-shot.
    """
    msgs = [{"role": "system", "content": system_prompt(tools, fmt)}]
    for ex in _examples_for(tools, examples):
        msgs.append({"role": "user", "content": user_content(ex.request, ex.scene)})
        msgs.append({"role": "assistant", "content": render_answer(ex.calls, tools, fmt)})
    msgs.extend({"role": m["role"], "content": m["content"]} for m in conversation)
    return msgs


def fallback_template(architecture: str) -> str:
    """llama.cpp built-in template name for a GGUF that carries no chat template."""
    return "gemma" if architecture.startswith("gemma") else "chatml"
