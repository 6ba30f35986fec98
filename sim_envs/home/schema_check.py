"""The home RPC's argument check: a request's JSON arguments against its tool's JSON
Schema (the voice tool contract, ``audio/voice_tools.json``) before the store sees them.

The store's methods take Python values as they come (``on="false"`` is truthy and
would turn a light on), so whatever reaches the home over the bus is checked here
first; the answer names the argument and says what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import jsonschema

from control.tools import ToolSpec
from sim_envs.home.errors import HomeError
from sim_envs.home.tools import HOME_TOOLS, voice_tool_specs

__all__ = ["ArgumentCheck"]

_JSON_TYPES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               list: "an array", dict: "an object", type(None): "null"}


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(tool: str, error: jsonschema.ValidationError) -> str:
    """One line naming the argument and what it must be."""
    path = [str(p) for p in error.absolute_path]
    schema = error.schema if isinstance(error.schema, dict) else {}
    if not path:
        if error.validator == "required":
            return f"{tool}: missing argument {error.message.split()[0]}"
        if error.validator == "additionalProperties":
            allowed = ", ".join(sorted(schema.get("properties", {}))) or "none"
            return f"{tool}: {error.message}; its arguments: {allowed}"
        return f"{tool}: arguments: {error.message}"
    where = "/".join(path)
    got = f"{_shown(error.instance)} ({_JSON_TYPES.get(type(error.instance), 'a value')})"
    if error.validator == "type":
        return f"{tool}: argument {where!r}: expected a JSON {schema.get('type')}, got {got}"
    if error.validator == "enum":
        return (f"{tool}: argument {where!r}: expected one of "
                f"{', '.join(map(str, schema.get('enum', [])))}, got {got}")
    return f"{tool}: argument {where!r}: {error.message}"


class ArgumentCheck:
    """A validator per tool; :meth:`parse` answers ``(arguments, None)`` or
    ``({}, problem)``."""

    def __init__(self, specs: Iterable[ToolSpec]) -> None:
        self._validators = {s.name: jsonschema.Draft202012Validator(dict(s.parameters))
                            for s in specs}

    @classmethod
    def for_home(cls) -> ArgumentCheck:
        """The tools the home store serves (:data:`~sim_envs.home.tools.HOME_TOOLS`)."""
        specs = [s for s in voice_tool_specs() if s.name in HOME_TOOLS]
        missing = sorted(set(HOME_TOOLS) - {s.name for s in specs})
        if missing:
            raise HomeError(f"home tools without a spec in voice_tools.json: {missing}")
        return cls(specs)

    def parse(self, tool: str, arguments_json: str) -> tuple[dict[str, Any], str | None]:
        validator = self._validators.get(tool)
        if validator is None:
            return {}, (f"{tool!r} is not a tool this home serves; it serves "
                        f"{', '.join(sorted(self._validators))}")
        try:
            args = json.loads(arguments_json or "{}")
        except (ValueError, RecursionError) as exc:
            return {}, f"{tool}: the arguments are not JSON ({exc})"
        if not isinstance(args, dict):
            return {}, (f"{tool}: expected the arguments as a JSON object, got "
                        f"{_JSON_TYPES.get(type(args), 'a value')}")
        errors = sorted(validator.iter_errors(args), key=lambda e: [str(p) for p in e.path])
        if errors:
            return {}, _problem(tool, errors[0])
        return args, None
