"""The compact call format: the exact text the model sees and produces.

The SimpleTool-style decoder forces this format's structure and decodes only
the values; the LoRA fine-tune (Tune issue) trains the model on exactly this
text. One call per line, Python-call style::

    move_to(x=0.3, y=-0.1, z=0.2)
    grasp(object=red_cube)
    set_timer(minutes=5, label="pasta")
    add_items(items=["oat milk", "bananas"], store=null)
    draw(points=[{x=0.1, y=0.2}, {x=-0.3, y=1}], style={color=red, width=2})
    calculate_average(grades={"math"=90, "art"=75})
    math.hypot(x=4, y=5)
    none()

Rules (``render`` writes exactly this; ``parse`` also accepts extra spaces, any
argument order, quoted enum members and ``:`` for ``=`` inside braces):

- A call is ``name(arg=value, arg=value)``: no space around ``=``, ``", "``
  between arguments, arguments in the order of the schema's ``properties``,
  optional arguments left out when absent (an omitted argument means its
  ``default`` where the spec has one: :func:`~models.callschema.apply_defaults`).
  A tool without arguments is ``name()``. Tool names may be dotted (``math.hypot``).
- Several calls go on separate lines (``"\\n"``), in order; the answer ends
  after the last ``)`` (the model then ends its turn).
- The "no tool" answer is the single line ``none()`` (zero calls).
- Values:
  - numbers in plain decimal, never an exponent: ``5``, ``-0.1``, ``0.35``;
    integers have no ``.``;
  - booleans ``true`` / ``false``; ``null`` where the schema allows it;
  - enum members (object ids, rooms) bare when they look like an identifier
    (``red_cube``, ``living_room``), otherwise quoted like a string;
  - strings JSON-quoted with double quotes (``"pasta"``, ``"say \\"hi\\""``);
  - arrays ``[v, v]`` (``", "`` between elements, ``[]`` when empty);
  - objects with fixed fields like a call's arguments in braces,
    ``{key=value, key=value}`` in schema order, optional fields left out; a key
    that is not an identifier (or an argument name that is not) is JSON-quoted;
  - maps (objects without fixed fields) ``{"key"=value}``: keys always quoted;
  - references to an earlier call's result, bare: ``$1`` (the whole result of
    the first call of this answer), ``$1.x`` or ``$2.pose.x`` (a field of it).
    In :class:`ToolCall` arguments a reference is the string ``"$1.x"``; calls
    get ids ``"1"``, ``"2"``, ... by line order (LLMCompiler-style).
- What a schema may say, and what it may not (reported per tool and argument):
  :mod:`models.callschema`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from control.tools import ToolCall, ToolSpec, UnknownToolError
from models.argspec import (
    REF,
    ArgKind,
    ArgSpec,
    CallFormatError,
    UnsupportedSchemaError,
    format_number,
    is_any,
    is_reference,
    render_fields,
    render_key,
    render_value,
)
from models.callparse import Scanner, convert_fields
from models.callschema import apply_defaults, arg_specs, check_expressible, split_expressible

__all__ = [
    "NONE_CALL",
    "ArgKind",
    "ArgSpec",
    "CallFormatError",
    "UnsupportedSchemaError",
    "apply_defaults",
    "arg_specs",
    "check_expressible",
    "describe",
    "describe_field",
    "format_number",
    "is_reference",
    "parse",
    "render",
    "render_call",
    "render_key",
    "render_value",
    "split_expressible",
]

NONE_CALL = "none()"
"""The whole answer when no tool fits."""

def render_call(call: ToolCall, spec: ToolSpec | None = None) -> str:
    """One call as one line; with ``spec``, arguments in schema order."""
    args = arg_specs(spec) if spec is not None else []
    return f"{call.name}({render_fields(call.arguments, args)})"


def render(calls: Sequence[ToolCall], specs: Sequence[ToolSpec] = ()) -> str:
    """The whole answer: one line per call, or ``none()`` for no call."""
    if not calls:
        return NONE_CALL
    by_name = {s.name: s for s in specs}
    return "\n".join(render_call(c, by_name.get(c.name)) for c in calls)


def describe(arg: ArgSpec) -> str:
    """The type as the prompt's tool list writes it: ``number 0..1``, ``[text]``,
    ``{x: number, y?: number}``, ``text|null``, ``any``."""
    k = arg.kind
    if k is ArgKind.ENUM:
        return "|".join(str(v) for v in arg.enum)
    if k in (ArgKind.NUMBER, ArgKind.INTEGER):
        text = "integer" if k is ArgKind.INTEGER else "number"
        if arg.minimum is not None and arg.maximum is not None:
            text += f" {format_number(arg.minimum)}..{format_number(arg.maximum)}"
        return text
    if k is ArgKind.BOOLEAN:
        return "true|false"
    if k is ArgKind.STRING:
        return "text"
    if k is ArgKind.NULL:
        return "null"
    if k is ArgKind.ARRAY:
        assert arg.items is not None
        cap = f" up to {arg.max_items}" if arg.max_items is not None else ""
        return f"[{describe(arg.items)}]{cap}"
    if k is ArgKind.MAP:
        assert arg.items is not None
        return f"{{text: {describe(arg.items)}}}"
    if k is ArgKind.OBJECT:
        return "{" + ", ".join(describe_field(f) for f in arg.fields) + "}"
    return "any" if is_any(arg) else "|".join(describe(o) for o in arg.options)


def describe_field(arg: ArgSpec) -> str:
    """``name?: type = default`` (``?``: optional; the default where the spec has one)."""
    text = f"{arg.name}{'' if arg.required else '?'}: {describe(arg)}"
    if arg.has_default:
        try:
            text += f" = {render_value(arg.default, arg)}"
        except CallFormatError:
            text += f" = {json.dumps(arg.default)}"
    return text


def _parse_line(line: str, lineno: int, by_name: Mapping[str, ToolSpec]) -> ToolCall | None:
    sc = Scanner(line, lineno)
    name = sc.name()
    sc.expect("(")
    if name == "none":
        sc.expect(")")
        sc.ws()
        if sc.peek():
            raise sc.fail("unexpected text after the call")
        return None
    if name not in by_name:
        raise UnknownToolError(
            f"line {lineno}: unknown tool {name!r}; known tools: {', '.join(sorted(by_name))}"
        )
    entries = sc.entries(")", "=")
    sc.ws()
    if sc.peek():
        raise sc.fail("unexpected text after the call")
    values = convert_fields(entries, arg_specs(by_name[name]), f"line {lineno}, {name}",
                            "argument")
    return ToolCall(name, values)


def _references(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if REF.match(value) else []
    if isinstance(value, Mapping):
        return [r for v in value.values() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


def parse(text: str, specs: Sequence[ToolSpec]) -> list[ToolCall]:
    """Calls in ``text`` (ids ``"1"``, ``"2"``, ...); ``none()`` gives ``[]``.

    Raises :class:`CallFormatError` (with line and column, or the argument's path
    such as ``line 1, draw.points[2].x``), or :class:`~control.tools.UnknownToolError`
    for a tool not in ``specs``. References must point to an earlier call of the
    same answer.
    """
    by_name = {s.name: s for s in specs}
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise CallFormatError("empty answer; expected calls or none()")
    calls: list[ToolCall] = []
    for lineno, line in enumerate(lines, start=1):
        call = _parse_line(line.strip(), lineno, by_name)
        if call is None:
            if len(lines) > 1:
                raise CallFormatError(f"line {lineno}: none() must be the whole answer")
            return []
        for key, value in call.arguments.items():
            for ref in _references(value):
                m = REF.match(ref)
                if m and int(m.group(1)) > len(calls):
                    raise CallFormatError(
                        f"line {lineno}, {call.name}.{key}: {ref} refers to a call that "
                        f"does not come before it (calls so far: {len(calls)})"
                    )
        calls.append(ToolCall(call.name, call.arguments, id=str(len(calls) + 1)))
    return calls
