"""References between the calls of a plan, and the errors of plans.

An argument may use another call's result: a string that is exactly ``$k``
or ``$k.path`` (``$1``, ``$1.pose.x``, ``$2.objects[0].name`` =
``$2.objects.0.name``) becomes that value, type kept; inside longer text
``$k.path`` or ``${k.path}`` becomes the value's text, but only if call ``k``
is in the plan (so ``"costs $5"`` stays text). References are found in nested
lists and objects too. A path walks object fields, list indexes and (for
dataclass-like results) public attributes.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any

from realtime.errors import RtAgentError

__all__ = [
    "ArgumentTypeError",
    "DuplicateCallIdError",
    "MissingFieldError",
    "MissingReferenceError",
    "PlanCycleError",
    "PlanError",
    "Reference",
    "find_references",
    "mentions_reference",
    "parse_reference",
    "resolve_reference",
    "substitute_references",
]


class PlanError(RtAgentError):
    """A plan of tool calls is malformed; the agent should replan.

    ``partial`` is the executor's run of the calls that started before the
    mistake showed (a streamed plan), else None.
    """

    partial: Any = None


class PlanCycleError(PlanError):
    """Calls depend on each other in a circle, so none of them can start."""


class MissingReferenceError(PlanError):
    """An argument refers to ``$k`` but the plan has no call ``k``."""


class DuplicateCallIdError(PlanError):
    """Two calls of one plan have the same id."""


class MissingFieldError(PlanError):
    """A reference names a field the referenced call's result does not have."""


class ArgumentTypeError(PlanError, ValueError):
    """After substituting references, a call's arguments fail its JSON Schema."""


_PATH = r"((?:\.\w+|\[\d+\])*)"
_EXACT = re.compile(r"\$(\w+)" + _PATH)
_EMBEDDED = re.compile(r"\$\{(\w+)" + _PATH + r"\}|\$(\w+)" + _PATH)
_SEGMENT = re.compile(r"\.(\w+)|\[(\d+)\]")


@dataclass(frozen=True)
class Reference:
    """``$call_id`` followed by a path of fields or list indexes."""

    call_id: str
    path: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "$" + ".".join((self.call_id, *self.path))


def _path(text: str) -> tuple[str, ...]:
    return tuple(m.group(1) or m.group(2) for m in _SEGMENT.finditer(text))


@functools.lru_cache(maxsize=4096)
def parse_reference(value: str) -> Reference | None:
    """The reference a string is (exactly ``$k`` or ``$k.path``), else None."""
    if not value.startswith("$"):
        return None
    m = _EXACT.fullmatch(value)
    return Reference(m.group(1), _path(m.group(2))) if m else None


def _embedded_ref(m: re.Match[str]) -> Reference:
    if m.group(1) is not None:
        return Reference(m.group(1), _path(m.group(2)))
    return Reference(m.group(3), _path(m.group(4)))


def find_references(value: Any, known: Container[str], out: set[str]) -> None:
    """Add the ids ``value`` refers to; in-text references count only for ``known`` ids."""
    if isinstance(value, str):
        if "$" in value:
            ref = parse_reference(value)
            if ref is not None:
                out.add(ref.call_id)
                return
            out.update(r.call_id for r in map(_embedded_ref, _EMBEDDED.finditer(value))
                       if r.call_id in known)
    elif isinstance(value, Mapping):
        for v in value.values():
            find_references(v, known, out)
    elif isinstance(value, list | tuple):
        for v in value:
            find_references(v, known, out)


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"an object with fields {sorted(map(str, value))}"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item(s)"
    return f"{type(value).__name__} {value!r}"[:80]


def resolve_reference(ref: Reference, values: Mapping[str, Any]) -> Any:
    """The value ``ref`` points at in the results ``values`` (id -> result value)."""
    if ref.call_id not in values:
        raise MissingReferenceError(
            f"{ref} refers to call {ref.call_id!r}, which has no result; "
            "refer only to calls of the same plan"
        )
    value = values[ref.call_id]
    walked = "$" + ref.call_id
    for seg in ref.path:
        if isinstance(value, Mapping) and seg in value:
            value = value[seg]
        elif isinstance(value, list | tuple) and seg.isdigit() and int(seg) < len(value):
            value = value[int(seg)]
        elif (not isinstance(value, Mapping | list | tuple | str | int | float | bool)
              and value is not None and not seg.startswith("_") and hasattr(value, seg)):
            value = getattr(value, seg)
        else:
            raise MissingFieldError(
                f"{ref}: {walked} has no field {seg!r}; it is {_describe(value)}. "
                "Refer to a field the result has"
            )
        walked += "." + seg
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def substitute_references(value: Any, refs: Container[str], values: Mapping[str, Any]) -> Any:
    """``value`` with references to ``refs`` replaced from ``values`` (id -> result)."""
    if isinstance(value, str):
        if "$" not in value:
            return value
        ref = parse_reference(value)
        if ref is not None:
            return resolve_reference(ref, values)

        def one(m: re.Match[str]) -> str:
            r = _embedded_ref(m)
            return _as_text(resolve_reference(r, values)) if r.call_id in refs else m.group(0)

        return _EMBEDDED.sub(one, value)
    if isinstance(value, Mapping):
        return {k: substitute_references(v, refs, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute_references(v, refs, values) for v in value]
    return value


def mentions_reference(value: Any) -> bool:
    """Whether ``value`` holds anything that looks like a reference (in text too)."""
    if isinstance(value, str):
        return "$" in value and _EMBEDDED.search(value) is not None
    if isinstance(value, Mapping):
        return any(mentions_reference(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(mentions_reference(v) for v in value)
    return False
