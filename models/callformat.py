"""The compact call format: the exact text the model sees and produces.

The SimpleTool-style decoder forces this format's structure and decodes only
the values; the LoRA fine-tune (Tune issue) trains the model on exactly this
text. One call per line, Python-call style::

    move_to(x=0.3, y=-0.1, z=0.2)
    grasp(object=red_cube)
    set_timer(minutes=5, label="pasta")
    none()

Rules (``render`` writes exactly this; ``parse`` also accepts extra spaces and
any argument order):

- A call is ``name(arg=value, arg=value)``: no space around ``=``, ``", "``
  between arguments, arguments in the order of the schema's ``properties``,
  optional arguments left out when absent. A tool without arguments is ``name()``.
- Several calls go on separate lines (``"\\n"``), in order; the answer ends
  after the last ``)`` (the model then ends its turn).
- The "no tool" answer is the single line ``none()`` (zero calls).
- Values:
  - numbers in plain decimal, never an exponent: ``5``, ``-0.1``, ``0.35``;
    integers have no ``.``;
  - booleans ``true`` / ``false``;
  - enum members (object ids, rooms) bare when they look like an identifier
    (``red_cube``, ``living_room``), otherwise quoted like a string;
  - strings JSON-quoted with double quotes (``"pasta"``, ``"say \\"hi\\""``);
  - references to an earlier call's result, bare: ``$1`` (the whole result of
    the first call of this answer), ``$1.x`` or ``$2.pose.x`` (a field of it).
    In :class:`ToolCall` arguments a reference is the string ``"$1.x"``; calls
    get ids ``"1"``, ``"2"``, ... by line order (LLMCompiler-style).
- Expressible schemas: an object whose properties are each a string (optionally
  ``maxLength``), number or integer (optionally ``minimum``/``maximum``),
  boolean, or an ``enum`` of scalars. Arrays, nested objects, ``null``,
  ``anyOf``/``oneOf``/``$ref`` and type lists are not expressible:
  :func:`check_expressible` says which tool and argument.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from control.tools import ToolCall, ToolSpec, UnknownToolError
from realtime.errors import RtAgentError

__all__ = [
    "NONE_CALL",
    "ArgKind",
    "ArgSpec",
    "CallFormatError",
    "UnsupportedSchemaError",
    "arg_specs",
    "check_expressible",
    "format_number",
    "is_reference",
    "parse",
    "render",
    "render_call",
    "render_value",
]

NONE_CALL = "none()"
"""The whole answer when no tool fits."""

RESERVED_WORDS = frozenset({"true", "false", "null", "none"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_REF = re.compile(r"\$([1-9][0-9]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\Z")
_LINE_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?\Z")
_NUMBER_LOOSE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?\Z")


class CallFormatError(RtAgentError, ValueError):
    """Text is not valid compact-format calls for the given tools."""


class UnsupportedSchemaError(CallFormatError):
    """A tool's parameters use JSON Schema the compact format cannot express."""


class ArgKind(StrEnum):
    ENUM = "enum"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    STRING = "string"


@dataclass(frozen=True)
class ArgSpec:
    """One argument as the compact format (and the decoder's constraints) see it."""

    name: str
    kind: ArgKind
    required: bool
    enum: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    description: str = ""


_UNSUPPORTED_KEYS = ("anyOf", "oneOf", "allOf", "$ref", "not", "const", "items", "properties")


def _arg_spec(tool: str, name: str, schema: Mapping[str, Any], required: bool) -> ArgSpec:
    where = f"tool {tool!r}, argument {name!r}"
    if not _IDENT.match(name) or name in RESERVED_WORDS:
        raise UnsupportedSchemaError(f"{where}: argument names must be identifiers")
    for key in _UNSUPPORTED_KEYS:
        if key in schema:
            raise UnsupportedSchemaError(
                f"{where}: '{key}' is not expressible in the compact call format; use a "
                "string, number, integer, boolean or enum of scalars"
            )
    desc = str(schema.get("description", ""))
    if "enum" in schema:
        values = tuple(schema["enum"])
        if not values or any(isinstance(v, list | dict) or v is None for v in values):
            raise UnsupportedSchemaError(
                f"{where}: enum must be a non-empty list of strings, numbers or booleans"
            )
        return ArgSpec(name, ArgKind.ENUM, required, enum=values, description=desc)
    kind = schema.get("type")
    if isinstance(kind, list):
        raise UnsupportedSchemaError(f"{where}: type lists {kind} are not expressible; give one type")
    if kind in ("number", "integer"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        return ArgSpec(name, ArgKind(kind), required,
                       minimum=None if lo is None else float(lo),
                       maximum=None if hi is None else float(hi), description=desc)
    if kind == "boolean":
        return ArgSpec(name, ArgKind.BOOLEAN, required, description=desc)
    if kind == "string":
        ml = schema.get("maxLength")
        return ArgSpec(name, ArgKind.STRING, required,
                       max_length=None if ml is None else int(ml), description=desc)
    raise UnsupportedSchemaError(
        f"{where}: type {kind!r} is not expressible in the compact call format "
        "(supported: string, number, integer, boolean, enum)"
    )


def arg_specs(spec: ToolSpec) -> list[ArgSpec]:
    """The arguments of ``spec`` in call order; raises :class:`UnsupportedSchemaError`."""
    if spec.name in RESERVED_WORDS:
        raise UnsupportedSchemaError(f"tool name {spec.name!r} is reserved by the call format")
    if not _IDENT.match(spec.name):
        raise UnsupportedSchemaError(
            f"tool {spec.name!r}: names must be identifiers (letters, digits, '_') "
            "in the compact call format"
        )
    required = set(spec.required)
    return [_arg_spec(spec.name, name, schema, name in required)
            for name, schema in spec.properties.items()]


def check_expressible(specs: Sequence[ToolSpec]) -> None:
    """Raise :class:`UnsupportedSchemaError` naming the first inexpressible part."""
    for spec in specs:
        arg_specs(spec)


def is_reference(value: Any) -> bool:
    """True for ``"$1"`` / ``"$1.field"`` strings (references between calls)."""
    return isinstance(value, str) and _REF.match(value) is not None


def format_number(value: float, integer: bool = False) -> str:
    """Plain decimal, never an exponent; integral values without ``.0``."""
    if isinstance(value, bool) or not math.isfinite(value):
        raise CallFormatError(f"expected a finite number, got {value!r}")
    if integer or float(value).is_integer():
        return str(int(value))
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = f"{value:.12f}".rstrip("0").rstrip(".")
    return text


def render_value(value: Any, arg: ArgSpec | None = None) -> str:
    """One argument value in the compact format."""
    if is_reference(value):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value, arg is not None and arg.kind is ArgKind.INTEGER)
    if isinstance(value, str):
        bare = (arg is None or arg.kind is ArgKind.ENUM) and _IDENT.match(value)
        if bare and value not in RESERVED_WORDS:
            return value
        text = json.dumps(value, ensure_ascii=False)
        # One call per line: escape every character str.splitlines() breaks on.
        return _LINE_BREAKS.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
    raise CallFormatError(f"value {value!r} is not expressible in the compact call format")


def render_call(call: ToolCall, spec: ToolSpec | None = None) -> str:
    """One call as one line; with ``spec``, arguments in schema order."""
    args = {a.name: a for a in arg_specs(spec)} if spec is not None else {}
    names = [n for n in args if n in call.arguments] if args else list(call.arguments)
    names += [n for n in call.arguments if n not in names]
    parts = [f"{n}={render_value(call.arguments[n], args.get(n))}" for n in names]
    return f"{call.name}({', '.join(parts)})"


def render(calls: Sequence[ToolCall], specs: Sequence[ToolSpec] = ()) -> str:
    """The whole answer: one line per call, or ``none()`` for no call."""
    if not calls:
        return NONE_CALL
    by_name = {s.name: s for s in specs}
    return "\n".join(render_call(c, by_name.get(c.name)) for c in calls)


# ---------------------------------------------------------------- parsing


class _Scanner:
    def __init__(self, line: str, lineno: int) -> None:
        self.s, self.i, self.lineno = line, 0, lineno

    def fail(self, what: str) -> CallFormatError:
        return CallFormatError(f"line {self.lineno}, column {self.i + 1}: {what} in {self.s!r}")

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def expect(self, ch: str) -> None:
        self.ws()
        if self.peek() != ch:
            raise self.fail(f"expected {ch!r}")
        self.i += 1

    def ident(self) -> str:
        self.ws()
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.s, self.i)
        if not m:
            raise self.fail("expected a name")
        self.i = m.end()
        return m.group(0)

    def value_token(self) -> tuple[str, str]:
        """("string", decoded) for quoted text, else ("bare", raw token)."""
        self.ws()
        if self.peek() == '"':
            j = self.i + 1
            while j < len(self.s):
                if self.s[j] == "\\":
                    j += 2
                    continue
                if self.s[j] == '"':
                    break
                j += 1
            if j >= len(self.s):
                raise self.fail("unterminated string")
            raw = self.s[self.i:j + 1]
            self.i = j + 1
            try:
                return "string", json.loads(raw)
            except json.JSONDecodeError as exc:
                raise self.fail(f"bad string escape ({exc.msg})") from None
        m = re.compile(r"[^,)\s]+").match(self.s, self.i)
        if not m:
            raise self.fail("expected a value")
        self.i = m.end()
        return "bare", m.group(0)


def _convert(kind_raw: tuple[str, str], arg: ArgSpec, where: str) -> Any:
    kind, raw = kind_raw
    if kind == "bare" and _REF.match(raw):
        return raw
    if arg.kind is ArgKind.ENUM:
        if kind == "bare":
            candidates = [v for v in arg.enum if render_value(v, arg) == raw]
        else:
            candidates = [v for v in arg.enum if isinstance(v, str) and v == raw]
        if not candidates:
            raise CallFormatError(f"{where}: {raw!r} is not one of {list(arg.enum)}")
        return candidates[0]
    if arg.kind is ArgKind.STRING:
        if kind != "string":
            raise CallFormatError(f"{where}: expected a quoted string, got {raw}")
        if arg.max_length is not None and len(raw) > arg.max_length:
            raise CallFormatError(f"{where}: string longer than maxLength {arg.max_length}")
        return raw
    if arg.kind is ArgKind.BOOLEAN:
        if kind == "bare" and raw in ("true", "false"):
            return raw == "true"
        raise CallFormatError(f"{where}: expected true or false, got {raw}")
    if kind != "bare" or not _NUMBER_LOOSE.match(raw):
        raise CallFormatError(f"{where}: expected a number, got {raw}")
    if arg.kind is ArgKind.INTEGER:
        if not re.fullmatch(r"-?[0-9]+", raw):
            raise CallFormatError(f"{where}: expected an integer, got {raw}")
        num: float = int(raw)
    else:
        num = float(raw)
        if num.is_integer() and "." not in raw and "e" not in raw.lower():
            num = int(raw)
    if arg.minimum is not None and num < arg.minimum:
        raise CallFormatError(f"{where}: {raw} is below the minimum {arg.minimum:g}")
    if arg.maximum is not None and num > arg.maximum:
        raise CallFormatError(f"{where}: {raw} is above the maximum {arg.maximum:g}")
    return num


def _parse_line(line: str, lineno: int, by_name: Mapping[str, ToolSpec]) -> ToolCall | None:
    sc = _Scanner(line, lineno)
    name = sc.ident()
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
    spec = by_name[name]
    args = {a.name: a for a in arg_specs(spec)}
    values: dict[str, Any] = {}
    sc.ws()
    if sc.peek() == ")":
        sc.i += 1
    else:
        while True:
            key = sc.ident()
            if key not in args:
                raise sc.fail(f"tool {name!r} has no argument {key!r} (has {sorted(args)})")
            if key in values:
                raise sc.fail(f"argument {key!r} given twice")
            sc.expect("=")
            values[key] = _convert(sc.value_token(), args[key], f"line {lineno}, {name}.{key}")
            sc.ws()
            ch = sc.peek()
            sc.i += 1
            if ch == ")":
                break
            if ch != ",":
                sc.i -= 1
                raise sc.fail("expected ',' or ')'")
    sc.ws()
    if sc.peek():
        raise sc.fail("unexpected text after the call")
    missing = [a for a in args.values() if a.required and a.name not in values]
    if missing:
        raise CallFormatError(
            f"line {lineno}: {name} is missing required argument(s) {[a.name for a in missing]}"
        )
    return ToolCall(name, values)


def parse(text: str, specs: Sequence[ToolSpec]) -> list[ToolCall]:
    """Calls in ``text`` (ids ``"1"``, ``"2"``, ...); ``none()`` gives ``[]``.

    Raises :class:`CallFormatError` (with line and column), or
    :class:`~control.tools.UnknownToolError` for a tool not in ``specs``.
    References must point to an earlier call of the same answer.
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
            m = _REF.match(value) if isinstance(value, str) else None
            if m and int(m.group(1)) > len(calls):
                raise CallFormatError(
                    f"line {lineno}, {call.name}.{key}: {value} refers to a call that "
                    f"does not come before it (calls so far: {len(calls)})"
                )
        calls.append(ToolCall(call.name, call.arguments, id=str(len(calls) + 1)))
    return calls
