"""The shared vocabulary of tools: spec, effect, call, result, registry.

Tools are described as OpenAI-style function specs (``name``, ``description``,
``parameters`` JSON Schema) plus rtagent's metadata, which speculation relies on:

- ``x-effect``: ``"read"`` (no side effects) or ``"write"``.
- ``x-speculation``: ``"allow"`` (may run ahead of the agent), ``"dry_run"``
  (only its dry-run may run ahead) or ``"deny"`` (never runs speculatively).
- ``x-resources``: ``{"reads": [...], "writes": [...]}``, resource templates
  such as ``"light:{room}"`` filled from the call's arguments.
- ``x-returns`` (optional): a JSON Schema of the result; where a field fits a later
  call's argument, the decoder may write a ``$k.field`` reference to it.

A spec without metadata is treated as the unsafe case: a write, never speculated.
``models``, ``speculation``, ``sim_envs`` and ``audio`` import this module.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import string
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import jsonschema

from realtime.errors import RtAgentError

__all__ = [
    "Effect",
    "InvalidArgumentsError",
    "SpeculationPolicy",
    "Tool",
    "ToolCall",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "UnknownToolError",
    "UnknownValueError",
    "canonical_json",
    "load_tool_specs",
]


class ToolError(RtAgentError):
    """A tool spec, call or invocation is wrong."""


class UnknownToolError(ToolError, KeyError):
    """A call names a tool the registry does not have."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown tool"


class InvalidArgumentsError(ToolError, ValueError):
    """A call's arguments do not satisfy the tool's JSON Schema."""


class UnknownValueError(ToolError, LookupError):
    """A valid call names a value the tool does not know (a city it has no data for).

    Raise it (or a subclass) from a tool where an open value (free text) finds nothing:
    the result says so (``ToolResult.unknown_value``) and the agent tells the user
    instead of replanning, since another decode would only guess another value.
    """


class Effect(StrEnum):
    READ = "read"
    WRITE = "write"


class SpeculationPolicy(StrEnum):
    ALLOW = "allow"
    DRY_RUN = "dry_run"
    DENY = "deny"


def canonical_json(value: Any) -> str:
    """A stable text form: sorted keys, no spaces, integral floats written as ints."""
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _template_fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its JSON Schema and the metadata speculation and the DAG rely on."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    effect: Effect = Effect.WRITE
    speculation: SpeculationPolicy = SpeculationPolicy.DENY
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    returns: Mapping[str, Any] | None = None  # JSON Schema of the result (``x-returns``)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace(".", "").isalnum():
            raise ToolError(f"tool name must be letters, digits, '_' or '.', got {self.name!r}")
        if self.parameters.get("type", "object") != "object":
            raise ToolError(
                f"tool {self.name!r}: parameters must be a JSON Schema object, "
                f"got type {self.parameters.get('type')!r}"
            )
        if self.effect is Effect.WRITE and self.speculation is SpeculationPolicy.ALLOW:
            raise ToolError(
                f"tool {self.name!r} writes, so x-speculation must be 'dry_run' or 'deny', "
                "not 'allow'"
            )
        known = set(self.properties)
        for template in self.reads + self.writes:
            missing = [f for f in _template_fields(template) if f not in known]
            if missing:
                raise ToolError(
                    f"tool {self.name!r}: resource {template!r} names unknown argument(s) "
                    f"{missing}; known: {sorted(known)}"
                )
        for what, schema in (("parameters", self.parameters), ("x-returns", self.returns)):
            try:
                if schema is not None:
                    jsonschema.Draft202012Validator.check_schema(dict(schema))
            except jsonschema.SchemaError as exc:
                raise ToolError(f"tool {self.name!r}: invalid {what} schema: {exc.message}") from exc

    @property
    def properties(self) -> Mapping[str, Any]:
        props: Mapping[str, Any] = self.parameters.get("properties", {})
        return props

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.parameters.get("required", ()))

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> ToolSpec:
        """Read an OpenAI-style spec, bare or wrapped in ``{"type": "function", "function": ...}``."""
        fn = spec.get("function", spec) if spec.get("type") == "function" else spec
        if "name" not in fn:
            raise ToolError(f"tool spec has no 'name': {json.dumps(spec)[:200]}")
        resources = fn.get("x-resources", {}) or {}
        try:
            effect = Effect(fn.get("x-effect", Effect.WRITE))
            policy = SpeculationPolicy(fn.get("x-speculation", SpeculationPolicy.DENY))
        except ValueError as exc:
            raise ToolError(f"tool {fn['name']!r}: {exc}") from exc
        return cls(
            name=fn["name"],
            description=fn.get("description", ""),
            parameters=fn.get("parameters") or {"type": "object", "properties": {}},
            effect=effect,
            speculation=policy,
            reads=tuple(resources.get("reads", ())),
            writes=tuple(resources.get("writes", ())),
            returns=fn.get("x-returns"),
        )

    def to_json(self) -> dict[str, Any]:
        """The OpenAI-style spec with rtagent's ``x-`` metadata."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
                "x-effect": str(self.effect),
                "x-speculation": str(self.speculation),
                "x-resources": {"reads": list(self.reads), "writes": list(self.writes)},
                **({} if self.returns is None else {"x-returns": dict(self.returns)}),
            },
        }

    def with_enum(self, argument: str, values: Iterable[Any]) -> ToolSpec:
        """A copy whose ``argument`` is restricted to ``values`` (e.g. objects seen now)."""
        if argument not in self.properties:
            raise ToolError(f"tool {self.name!r} has no argument {argument!r}")
        props = dict(self.properties)
        props[argument] = {**props[argument], "enum": list(values)}
        return replace(self, parameters={**self.parameters, "properties": props})

    def resources(self, arguments: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
        """The concrete (reads, writes) resource names of a call with ``arguments``."""

        def fill(templates: tuple[str, ...]) -> frozenset[str]:
            return frozenset(t.format_map({k: arguments.get(k, "*") for k in self.properties})
                             for t in templates)

        return fill(self.reads), fill(self.writes)


@dataclass(frozen=True)
class ToolCall:
    """A request to run one tool. ``id`` links calls in a plan (``$1`` refers to id "1")."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""

    def key(self) -> str:
        """Identity used to match a real call to a speculative one."""
        return f"{self.name}:{canonical_json(self.arguments)}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": dict(self.arguments)}


@dataclass
class ToolResult:
    """What a call did. ``speculative`` is true when it was served from speculation."""

    call: ToolCall
    ok: bool
    value: Any = None
    error: str | None = None
    started_ns: int = 0
    ended_ns: int = 0
    speculative: bool = False
    unknown_value: bool = False  # failed with UnknownValueError: tell the user, don't replan

    @property
    def duration_ms(self) -> float:
        return (self.ended_ns - self.started_ns) / 1e6


ToolFn = Callable[..., Any] | Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    """A spec with the function that runs it and, optionally, a side-effect-free dry run."""

    spec: ToolSpec
    fn: ToolFn
    dry_run: ToolFn | None = None

    def __post_init__(self) -> None:
        if self.spec.speculation is SpeculationPolicy.DRY_RUN and self.dry_run is None:
            raise ToolError(f"tool {self.spec.name!r} has x-speculation 'dry_run' but no dry_run")


async def _call(fn: ToolFn, arguments: Mapping[str, Any]) -> Any:
    # Blocking tools run in a worker thread so the event loop never waits on them.
    if inspect.iscoroutinefunction(fn):
        return await fn(**arguments)
    return await asyncio.to_thread(fn, **arguments)


class ToolRegistry:
    """The tools an agent may call, with validation and invocation."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, tool: Tool) -> None:
        if tool.spec.name in self._tools:
            raise ToolError(f"tool {tool.spec.name!r} is registered twice")
        self._tools[tool.spec.name] = tool

    def register(
        self, spec: ToolSpec, fn: ToolFn, dry_run: ToolFn | None = None
    ) -> Tool:
        t = Tool(spec, fn, dry_run)
        self.add(t)
        return t

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(
                f"unknown tool {name!r}; known tools: {', '.join(sorted(self._tools)) or 'none'}"
            ) from None

    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self._tools.values()]

    def validate(self, call: ToolCall) -> None:
        """Raise :class:`InvalidArgumentsError` (saying which argument and why) if invalid."""
        spec = self.get(call.name).spec
        validator = jsonschema.Draft202012Validator(dict(spec.parameters))
        errors = sorted(validator.iter_errors(dict(call.arguments)), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "(arguments)"
            raise InvalidArgumentsError(
                f"invalid arguments for {call.name!r} at {where}: {errors[0].message}"
            )

    async def invoke(self, call: ToolCall, *, dry_run: bool = False) -> ToolResult:
        """Validate and run ``call``; failures come back as ``ok=False``, never raised.

        ``dry_run`` runs the tool's dry-run function instead (plans, never acts).
        """
        started = time.monotonic_ns()
        try:
            tool = self.get(call.name)
            self.validate(call)
            fn = tool.fn
            if dry_run:
                if tool.dry_run is None:
                    raise ToolError(f"tool {call.name!r} has no dry run")
                fn = tool.dry_run
            value = await _call(fn, call.arguments)
        except Exception as exc:  # a tool's failure is data for the agent, not a crash
            return ToolResult(call, False, error=f"{type(exc).__name__}: {exc}",
                              started_ns=started, ended_ns=time.monotonic_ns(),
                              unknown_value=isinstance(exc, UnknownValueError))
        return ToolResult(call, True, value=value, started_ns=started, ended_ns=time.monotonic_ns())


def load_tool_specs(data: Any) -> list[ToolSpec]:
    """Specs from parsed JSON: a list of specs, or ``{"tools": [...]}``."""
    items = data.get("tools") if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise ToolError("expected a JSON list of tool specs (or {\"tools\": [...]}), "
                        f"got {type(data).__name__}")
    specs = [ToolSpec.from_json(item) for item in items]
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ToolError(f"duplicate tool names in spec list: {dupes}")
    return specs
