"""The shape of one tool spec in a JSON file, checked before anything reads it.

:func:`spec_problem` validates an item of a tool-spec list with a JSON Schema
(``jsonschema``, as the call arguments are) and says, in one line, which key is
wrong and what was expected, so :func:`control.tools.load_tool_specs` never
fails inside the reader with a ``TypeError`` or ``AttributeError``.
:func:`read_json_file` reads a JSON file with the same care (missing file,
not UTF-8, not JSON, nested too deep).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

__all__ = ["EXPECTED", "read_json_file", "spec_problem", "unwrap"]

_NAMES = {"type": "array", "items": {"type": "string"}}

#: What each key of a spec must be, as the error messages say it.
EXPECTED: dict[str, str] = {
    "name": "a tool name of letters, digits, '_' or '.'",
    "description": "a string",
    "parameters": "a JSON Schema object ({\"type\": \"object\", \"properties\": {...}})",
    "x-effect": "\"read\" or \"write\"",
    "x-speculation": "\"allow\", \"dry_run\" or \"deny\"",
    "x-resources": "a list of resource names (what the tool reads; a write tool also writes "
                   "them) or {\"reads\": [names], \"writes\": [names]}",
    "x-max-age-ms": "a finite number of milliseconds >= 0 (how long a read stays valid)",
    "x-depends-on-clock": "true or false (whether the result changes as time passes)",
    "x-returns": "a JSON Schema object of the result (its fields may be $k references)",
    "function": "an object with the tool's \"name\", \"parameters\" and x- metadata",
}

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[\w.]+$"},  # as ToolSpec checks it
        "description": {"type": "string"},
        "parameters": {"type": ["object", "null"]},
        "x-effect": {"enum": ["read", "write"]},
        "x-speculation": {"enum": ["allow", "dry_run", "deny"]},
        "x-resources": {"anyOf": [
            {"type": "null"}, _NAMES,
            {"type": "object", "properties": {"reads": _NAMES, "writes": _NAMES},
             "additionalProperties": False}]},
        "x-max-age-ms": {"type": "number", "minimum": 0},
        "x-depends-on-clock": {"type": "boolean"},
        "x-returns": {"type": "object"},
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(_SCHEMA)


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _finite(x: float) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int too large for a float
        return False


def unwrap(item: Any) -> tuple[Any, str | None]:
    """The function object of ``item`` (bare, or ``{"type": "function", "function": ...}``)
    and a problem with the wrapper, if any."""
    if isinstance(item, Mapping) and item.get("type") == "function" and "function" in item:
        fn = item["function"]
        if not isinstance(fn, Mapping):
            return fn, f"function: expected {EXPECTED['function']}, got {_shown(fn)}"
        return fn, None
    return item, None


def spec_problem(fn: Any) -> str | None:
    """What is wrong with the function object ``fn`` (one line), or None."""
    if not isinstance(fn, Mapping):
        return f"expected a tool spec object ({EXPECTED['function']}), got {_shown(fn)}"
    fn = dict(fn)
    try:
        error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(fn))
    except RecursionError:
        return "nested too deeply to be a tool spec"
    if error is not None:
        key = str(error.absolute_path[0]) if error.absolute_path else "name"
        if key not in fn:
            return f"no {key!r}: expected {EXPECTED.get(key, 'it')}"
        return f"{key}: expected {EXPECTED.get(key, error.message)}, got {_shown(fn[key])}"
    age = fn.get("x-max-age-ms")
    if age is not None and not _finite(age):
        return f"x-max-age-ms: expected {EXPECTED['x-max-age-ms']}, got {_shown(age)}"
    return None


def read_json_file(path: str | Path, what: str) -> Any:
    """The parsed JSON of ``path``; a ``ValueError`` naming the file and what is wrong
    (the caller wraps it in its own project error)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{what} not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {what} {p}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}:{exc.lineno}:{exc.colno}: {what} is not JSON ({exc.msg})") from exc
    except RecursionError:
        raise ValueError(f"{p}: {what} is nested too deeply to read") from None
