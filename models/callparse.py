"""Reading compact-format text back: a scanner for calls and values (:class:`Scanner`), and
the value a written one stands for under its schema (:func:`convert`)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from models.argspec import REF, ArgKind, ArgSpec, CallFormatError, render_value

__all__ = ["Raw", "Scanner", "convert", "convert_fields"]

_NUMBER_LOOSE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?\Z")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE = re.compile(r"[^,)\]}\s=:]+")

# A value as written, before its schema gives it a type: ("string", text),
# ("bare", token), ("list", [raw...]) or ("dict", [(key, raw)...]).
Raw = tuple[str, Any]


class Scanner:
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

    def name(self) -> str:
        self.ws()
        m = _NAME.match(self.s, self.i)
        if not m:
            raise self.fail("expected a name")
        self.i = m.end()
        return m.group(0)

    def string(self) -> str:
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
            text: str = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise self.fail(f"bad string escape ({exc.msg})") from None
        return text

    def key(self) -> str:
        """A name before ``=``: bare, or quoted."""
        self.ws()
        if self.peek() == '"':
            return self.string()
        hit = _KEY.match(self.s, self.i)
        if not hit:
            raise self.fail("expected a name")
        self.i = hit.end()
        return hit.group(0)

    def entries(self, close: str, assign: str) -> list[tuple[str, Raw]]:
        """``key=value`` pairs up to ``close`` (``assign``: the separators allowed)."""
        out: list[tuple[str, Raw]] = []
        self.ws()
        if self.peek() == close:
            self.i += 1
            return out
        while True:
            key = self.key()
            self.ws()
            if self.peek() not in assign or not self.peek():
                raise self.fail(f"expected '=' after {key!r}")
            self.i += 1
            out.append((key, self.value()))
            self.ws()
            ch = self.peek()
            self.i += 1
            if ch == close:
                return out
            if ch != ",":
                self.i -= 1
                raise self.fail(f"expected ',' or {close!r}")

    def value(self) -> Raw:
        self.ws()
        ch = self.peek()
        if ch == '"':
            return "string", self.string()
        if ch == "[":
            self.i += 1
            items: list[Raw] = []
            self.ws()
            if self.peek() == "]":
                self.i += 1
                return "list", items
            while True:
                items.append(self.value())
                self.ws()
                ch = self.peek()
                self.i += 1
                if ch == "]":
                    return "list", items
                if ch != ",":
                    self.i -= 1
                    raise self.fail("expected ',' or ']'")
        if ch == "{":
            self.i += 1
            return "dict", self.entries("}", "=:")
        m = _BARE.match(self.s, self.i)
        if not m:
            raise self.fail("expected a value")
        self.i = m.end()
        return "bare", m.group(0)


def _shown(raw: Raw) -> str:
    kind, v = raw
    return {"list": "a list", "dict": "an object"}.get(kind, json.dumps(v) if kind == "string"
                                                       else str(v))


def _number(raw: str, arg: ArgSpec, where: str) -> float:
    if not _NUMBER_LOOSE.match(raw):
        raise CallFormatError(f"{where}: expected a number, got {raw}")
    if arg.kind is ArgKind.INTEGER:
        if not re.fullmatch(r"-?[0-9]+", raw):
            raise CallFormatError(f"{where}: expected an integer, got {raw}")
        num: float = int(raw)
    else:
        num = float(raw)
        if num.is_integer() and "." not in raw and "e" not in raw.lower():
            num = int(raw)
    if arg.minimum is not None and (num < arg.minimum or (arg.exclusive_minimum
                                                          and num == arg.minimum)):
        raise CallFormatError(f"{where}: {raw} is below the minimum {arg.minimum:g}")
    if arg.maximum is not None and (num > arg.maximum or (arg.exclusive_maximum
                                                          and num == arg.maximum)):
        raise CallFormatError(f"{where}: {raw} is above the maximum {arg.maximum:g}")
    if not arg.accepts_number(num):
        raise CallFormatError(f"{where}: {raw} is not a multiple of {arg.multiple_of:g}")
    return num


def convert(raw: Raw, arg: ArgSpec, where: str) -> Any:
    """The value ``raw`` stands for under ``arg``'s schema; raises :class:`CallFormatError`."""
    kind, v = raw
    k = arg.kind
    if kind == "bare" and REF.match(v):
        return v
    if k is ArgKind.UNION:
        errors = []
        for option in arg.options:
            try:
                return convert(raw, option, where)
            except CallFormatError as exc:
                errors.append(str(exc).removeprefix(f"{where}: "))
        raise CallFormatError(f"{where}: {_shown(raw)} fits none of the allowed types "
                              f"({'; '.join(errors)})")
    if k is ArgKind.ENUM:
        if kind == "bare":
            hits = [e for e in arg.enum if render_value(e, arg) == v]
        else:
            hits = [e for e in arg.enum if kind == "string" and isinstance(e, str) and e == v]
        if not hits:
            raise CallFormatError(f"{where}: {_shown(raw)} is not one of {list(arg.enum)}")
        return hits[0]
    if k is ArgKind.STRING:
        if kind != "string":
            raise CallFormatError(f"{where}: expected a quoted string, got {_shown(raw)}")
        if arg.max_length is not None and len(v) > arg.max_length:
            raise CallFormatError(f"{where}: string longer than maxLength {arg.max_length}")
        if len(v) < arg.min_length:
            raise CallFormatError(f"{where}: string shorter than minLength {arg.min_length}")
        return v
    if k is ArgKind.BOOLEAN:
        if kind == "bare" and v in ("true", "false"):
            return v == "true"
        raise CallFormatError(f"{where}: expected true or false, got {_shown(raw)}")
    if k is ArgKind.NULL:
        if kind == "bare" and v == "null":
            return None
        raise CallFormatError(f"{where}: expected null, got {_shown(raw)}")
    if k in (ArgKind.NUMBER, ArgKind.INTEGER):
        if kind != "bare":
            raise CallFormatError(f"{where}: expected a number, got {_shown(raw)}")
        return _number(v, arg, where)
    if k is ArgKind.ARRAY:
        assert arg.items is not None
        if kind != "list":
            raise CallFormatError(f"{where}: expected a list [...], got {_shown(raw)}")
        if not arg.min_items <= len(v) <= (arg.max_items if arg.max_items is not None
                                           else len(v)):
            raise CallFormatError(f"{where}: {len(v)} elements; the schema allows "
                                  f"{arg.min_items}..{arg.max_items}")
        out = [convert(r, arg.items, f"{where}[{i}]") for i, r in enumerate(v)]
        if arg.unique and len({json.dumps(x, sort_keys=True) for x in out}) < len(out):
            raise CallFormatError(f"{where}: elements must be unique")
        return out
    if kind != "dict":
        raise CallFormatError(f"{where}: expected an object {{...}}, got {_shown(raw)}")
    if k is ArgKind.MAP:
        assert arg.items is not None
        return {key: convert(r, arg.items, f"{where}.{key}") for key, r in v}
    return convert_fields(v, arg.fields, where, "field")


def convert_fields(entries: Sequence[tuple[str, Raw]], fields: Sequence[ArgSpec], where: str,
                   what: str) -> dict[str, Any]:
    """``key=value`` entries checked against ``fields`` (a call's arguments, or an
    object's fields): known keys, none twice, every required one."""
    by_name = {f.name: f for f in fields}
    out: dict[str, Any] = {}
    for key, raw in entries:
        if key not in by_name:
            raise CallFormatError(f"{where}: no {what} {key!r} (has {sorted(by_name)})")
        if key in out:
            raise CallFormatError(f"{where}: {what} {key!r} given twice")
        out[key] = convert(raw, by_name[key], f"{where}.{key}")
    missing = [f.name for f in fields if f.required and f.name not in out]
    if missing:
        raise CallFormatError(f"{where} is missing required {what}(s) {missing}")
    return out
