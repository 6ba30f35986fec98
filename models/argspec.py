"""One argument as the compact call format sees it (:class:`ArgSpec`, read from JSON Schema
by :mod:`models.callschema`), and how a value of it is written (:func:`render_value`;
the rules: :mod:`models.callformat`)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from realtime.errors import RtAgentError

__all__ = [
    "ANY",
    "DEFAULT_MAX_ITEMS",
    "IDENT",
    "REF",
    "RESERVED_WORDS",
    "TOOL_NAME",
    "ArgKind",
    "ArgSpec",
    "CallFormatError",
    "UnsupportedSchemaError",
    "any_spec",
    "format_number",
    "is_any",
    "is_reference",
    "option_for",
    "render_fields",
    "render_key",
    "render_value",
]

RESERVED_WORDS = frozenset({"true", "false", "null", "none"})
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
DEFAULT_MAX_ITEMS = 16  # most elements (and map entries) decoded where the schema sets none

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
    NULL = "null"
    ARRAY = "array"
    OBJECT = "object"  # fixed fields (``properties``)
    MAP = "map"  # string keys, every value by ``items``
    UNION = "union"  # one of ``options``

    @property
    def scalar(self) -> bool:
        return self not in (ArgKind.ARRAY, ArgKind.OBJECT, ArgKind.MAP, ArgKind.UNION)


_NO_DEFAULT: Any = object()


@dataclass(frozen=True)
class ArgSpec:
    """One argument (or a field, an element, a union option) as the compact format and
    the decoder's constraints see it. ``name`` is the argument's or field's name (an
    element's is its array's)."""

    name: str
    kind: ArgKind
    required: bool
    enum: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    description: str = ""
    min_length: int = 0
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    multiple_of: float | None = None
    items: ArgSpec | None = None  # ARRAY: each element; MAP: each value
    min_items: int = 0
    max_items: int | None = None
    unique: bool = False
    fields: tuple[ArgSpec, ...] = ()  # OBJECT, in the schema's order
    options: tuple[ArgSpec, ...] = ()  # UNION
    default: Any = field(default=_NO_DEFAULT, compare=False)

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT

    @property
    def scalar(self) -> bool:
        """A value without structure of its own (a union of scalars too)."""
        if self.kind is ArgKind.UNION:
            return all(o.scalar for o in self.options)
        return self.kind.scalar

    @property
    def nullable(self) -> bool:
        return self.kind is ArgKind.NULL or any(o.kind is ArgKind.NULL for o in self.options)

    @property
    def item_cap(self) -> int:
        """Most elements (entries) a decoded value may have."""
        return self.max_items if self.max_items is not None else max(DEFAULT_MAX_ITEMS,
                                                                     self.min_items)

    def accepts_number(self, value: float) -> bool:
        lo, hi = self.minimum, self.maximum
        if lo is not None and (value < lo or (self.exclusive_minimum and value == lo)):
            return False
        if hi is not None and (value > hi or (self.exclusive_maximum and value == hi)):
            return False
        if self.multiple_of:
            q = value / self.multiple_of
            return abs(q - round(q)) < 1e-9 * max(1.0, abs(q))
        return True


def _scalar(name: str, kind: ArgKind, **kw: Any) -> ArgSpec:
    return ArgSpec(name, kind, True, **kw)


def any_spec(name: str) -> ArgSpec:
    """A value of no declared type: a string, number, boolean, null or a list of those."""
    flat = tuple(_scalar(name, k) for k in (ArgKind.STRING, ArgKind.NUMBER, ArgKind.BOOLEAN))
    return ArgSpec(name, ArgKind.UNION, True, options=(
        *flat, _scalar(name, ArgKind.NULL),
        ArgSpec(name, ArgKind.ARRAY, True, items=ArgSpec(name, ArgKind.UNION, True,
                                                          options=flat))))


ANY = any_spec("")


def is_any(arg: ArgSpec) -> bool:
    """Whether ``arg`` is the union :func:`any_spec` builds (a schema without a type)."""
    return arg.kind is ArgKind.UNION and [o.kind for o in arg.options] == [
        o.kind for o in ANY.options]


REF = re.compile(r"\$([1-9][0-9]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\Z")
_LINE_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
def is_reference(value: Any) -> bool:
    """True for ``"$1"`` / ``"$1.field"`` strings (references between calls)."""
    return isinstance(value, str) and REF.match(value) is not None


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


def _quote(text: str) -> str:
    quoted = json.dumps(text, ensure_ascii=False)
    # One call per line: escape every character str.splitlines() breaks on.
    return _LINE_BREAKS.sub(lambda m: f"\\u{ord(m.group(0)):04x}", quoted)


def render_key(key: str) -> str:
    """An argument or field name: bare when it is an identifier, else quoted."""
    return key if IDENT.match(key) and key not in RESERVED_WORDS else _quote(key)


def option_for(value: Any, arg: ArgSpec) -> ArgSpec | None:
    """The option of a union that ``value`` is written as."""
    def fits(o: ArgSpec) -> bool:
        k = o.kind
        if k is ArgKind.ENUM:
            return any(type(v) is type(value) and v == value for v in o.enum)
        if value is None:
            return k is ArgKind.NULL
        if isinstance(value, bool):
            return k is ArgKind.BOOLEAN
        if isinstance(value, int | float):
            return k is ArgKind.NUMBER or (k is ArgKind.INTEGER and float(value).is_integer())
        if isinstance(value, str):
            return k is ArgKind.STRING
        if isinstance(value, list | tuple):
            return k is ArgKind.ARRAY
        return isinstance(value, Mapping) and k in (ArgKind.OBJECT, ArgKind.MAP)
    return next((o for o in arg.options if fits(o)), None)


def render_value(value: Any, arg: ArgSpec | None = None) -> str:
    """One value in the compact format (``arg``: its schema, if known)."""
    if arg is not None and arg.kind is ArgKind.UNION:
        arg = option_for(value, arg)
    if is_reference(value):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value, arg is not None and arg.kind is ArgKind.INTEGER)
    if isinstance(value, str):
        bare = (arg is None or arg.kind is ArgKind.ENUM) and IDENT.match(value)
        return value if bare and value not in RESERVED_WORDS else _quote(value)
    items = arg.items if arg is not None and arg.kind is ArgKind.ARRAY else None
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render_value(v, items) for v in value) + "]"
    if isinstance(value, Mapping):
        if arg is not None and arg.kind is ArgKind.OBJECT:
            return "{" + render_fields(value, arg.fields) + "}"
        inner = arg.items if arg is not None and arg.kind is ArgKind.MAP else None
        return "{" + ", ".join(f"{_quote(str(k))}={render_value(v, inner)}"
                               for k, v in value.items()) + "}"
    raise CallFormatError(f"value {value!r} is not expressible in the compact call format")


def render_fields(values: Mapping[str, Any], fields: Sequence[ArgSpec]) -> str:
    """``key=value, ...`` in ``fields``' order (a call's arguments, an object's fields)."""
    by_name = {f.name: f for f in fields}
    names = [f.name for f in fields if f.name in values]
    names += [n for n in values if n not in by_name]
    return ", ".join(f"{render_key(n)}={render_value(values[n], by_name.get(n))}" for n in names)
