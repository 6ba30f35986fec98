"""``$k`` references as decodable values: a later call may use an earlier call's result.

A tool that declares its result (``x-returns``, a JSON Schema: :attr:`ToolSpec.returns`)
offers the fields of that result to the calls after it in the same answer: where an
argument's type could take a field (a number argument, a number field), the value's
constraint also accepts ``$k.field`` (``set_thermostat(room=bedroom, celsius=$1.celsius)``
after ``get_weather(city="Oslo")``). The reference is one more option of the value, still
constrained: only fields that exist and fit are offered, and the plan substitutes the
result when the call runs (:mod:`control.plan`), checking it against the schema again.

Not offered: references into arrays (the compact format's ``$k.a.b`` paths name fields
only), results without ``x-returns`` (nothing says what would fit), free-text arguments
(a result's text is rarely what a message should say word for word, and text is held to
the request's words) and run-time enums (an object the robot sees must be named, not
taken on trust).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from control.tools import ToolCall, ToolSpec
from models.callformat import ArgKind, ArgSpec
from models.constraints import EnumMatcher, Matcher, UnionMatcher, VocabIndex

__all__ = ["reference_options", "with_references"]

MAX_DEPTH = 3  # fields nested deeper than this are not offered
_FITS = {ArgKind.NUMBER: ("number", "integer"), ArgKind.INTEGER: ("integer",),
         ArgKind.BOOLEAN: ("boolean",)}


def _scalar_paths(schema: Mapping[str, Any], path: tuple[str, ...] = ()
                  ) -> Iterator[tuple[tuple[str, ...], str]]:
    """``(path, type)`` of every scalar the result schema describes (object fields only)."""
    kind = schema.get("type")
    if kind == "object" and len(path) < MAX_DEPTH:
        for name, sub in (schema.get("properties") or {}).items():
            if isinstance(sub, Mapping) and str(name).isidentifier():
                yield from _scalar_paths(sub, (*path, str(name)))
    elif isinstance(kind, str) and kind in ("number", "integer", "boolean", "string"):
        yield path, kind


def reference_options(arg: ArgSpec, earlier: Sequence[ToolCall],
                      specs: Mapping[str, ToolSpec]) -> list[str]:
    """The references (``$1.celsius``) an argument may take from the calls before it."""
    fits = _FITS.get(arg.kind)
    if fits is None:
        return []
    out: list[str] = []
    for k, call in enumerate(earlier, start=1):
        spec = specs.get(call.name)
        if spec is None or spec.returns is None:
            continue
        for path, kind in _scalar_paths(spec.returns):
            if kind in fits:
                out.append(".".join((f"${call.id or k}", *path)))
    return out


def with_references(args: Sequence[ArgSpec], matchers: Sequence[Matcher | None],
                    earlier: Sequence[ToolCall], tools: Sequence[ToolSpec],
                    vocab: VocabIndex, enums: Mapping[str, Any]) -> list[Matcher | None]:
    """``matchers`` where each argument that could take an earlier result also accepts
    the references to it: the value's own matcher or one of the references (a
    :class:`~models.constraints.UnionMatcher`, so what holds the value to the request
    still narrows its own part: :mod:`models.simpletool.said`). Arguments restricted at
    run time keep their enum."""
    if not earlier:
        return list(matchers)
    specs = {t.name: t for t in tools}
    out: list[Matcher | None] = []
    for arg, m in zip(args, matchers, strict=True):
        refs = [] if m is None or arg.name in enums else reference_options(arg, earlier, specs)
        if not refs or m is None:
            out.append(m)
            continue
        out.append(UnionMatcher([m, EnumMatcher(refs, None, vocab, m.prefix)], vocab))
    return out
