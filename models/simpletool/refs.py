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
(a string value closes with its quote, a bare reference does not; a result's text is
rarely what a message should say word for word) and run-time enums (an object the robot
sees must be named, not taken on trust).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from control.tools import ToolCall, ToolSpec
from models.callformat import ArgKind, ArgSpec
from models.constraints import EnumMatcher, Matcher, VocabIndex

__all__ = ["WithReferences", "reference_options", "with_references"]

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


class WithReferences(Matcher):
    """A value's own constraint (``base``) or one of the references offered."""

    def __init__(self, base: Matcher, refs: Sequence[str], vocab: VocabIndex) -> None:
        self.base = base
        self.refs = EnumMatcher(list(refs), None, vocab)
        self.vocab = vocab
        self.close = base.close
        self.max_tokens = max(base.max_tokens, self.refs.max_tokens)
        lead = base.lead()
        # the lead stays forced only where every reference starts with the same tokens
        same = all(vocab.tokenize(o)[:len(lead)] == lead for o in self.refs.options)
        self._lead = lead if same else []

    def lead(self) -> list[int]:
        return self._lead

    # Where a matcher's value starts (``=`` after a name, nothing inside a list) and what
    # closes it are the base's; a reference closes with nothing (no quote).
    @property  # type: ignore[override, unused-ignore]
    def prefix(self) -> str:
        return str(getattr(self.base, "prefix", "="))

    @prefix.setter
    def prefix(self, value: str) -> None:
        self.set_prefix(value)

    def set_prefix(self, prefix: str) -> None:
        for m in (self.base, self.refs):
            setter = getattr(m, "set_prefix", None)
            if setter is not None:
                setter(prefix)

    def prefix_ok(self, grown: str) -> bool:
        ok = getattr(self.base, "prefix_ok", None)
        return True if ok is None else bool(ok(grown))

    def close_for(self, text: str) -> str:
        if self.refs.complete(text):
            return ""
        close_for = getattr(self.base, "close_for", None)
        return self.base.close if close_for is None else str(close_for(text))

    def allowed(self, text: str) -> np.ndarray:
        parts = [m.allowed(text) for m in (self.base, self.refs) if m.viable(text)]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def complete(self, text: str) -> bool:
        return self.base.complete(text) or self.refs.complete(text)

    def viable(self, text: str) -> bool:
        return self.base.viable(text) or self.refs.viable(text)

    def forced(self, text: str) -> str | None:
        if not self.base.viable(text):
            return self.refs.forced(text)
        return None if self.refs.viable(text) else self.base.forced(text)

    def body(self, text: str) -> str:
        return self.base.body(text)

    def value(self, text: str) -> Any:
        return self.refs.value(text) if self.refs.complete(text) else self.base.value(text)


def with_references(args: Sequence[ArgSpec], matchers: Sequence[Matcher | None],
                    earlier: Sequence[ToolCall], tools: Sequence[ToolSpec],
                    vocab: VocabIndex, enums: Mapping[str, Any]) -> list[Matcher | None]:
    """``matchers`` where each argument that could take an earlier result also accepts
    the references to it (arguments restricted at run time keep their enum)."""
    if not earlier:
        return list(matchers)
    specs = {t.name: t for t in tools}
    out: list[Matcher | None] = []
    for arg, m in zip(args, matchers, strict=True):
        refs = [] if m is None or arg.name in enums else reference_options(arg, earlier, specs)
        out.append(WithReferences(m, refs, vocab) if refs and m is not None else m)
    return out
