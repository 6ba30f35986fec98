"""The shared vocabulary of tools: spec, effect, call, result, registry.

Tools are described as OpenAI-style function specs (``name``, ``description``,
``parameters`` JSON Schema) plus rtagent's metadata, which speculation relies on:

- ``x-effect``: ``"read"`` (no side effects) or ``"write"``.
- ``x-speculation``: ``"allow"`` (may run ahead of the agent), ``"dry_run"``
  (only its dry-run may run ahead) or ``"deny"`` (never runs speculatively).
- ``x-resources``: ``{"reads": [...], "writes": [...]}``, resource templates
  such as ``"light:{room}"`` filled from the call's arguments; a plain list is
  what a read tool reads (for a write tool: what it reads and writes).
- ``x-max-age-ms``: how long a read's result stays valid (a speculative result
  older than this is not served); ``x-depends-on-clock``: the result changes as
  time passes (time, timers, calendar), so speculation bounds its age even
  without ``x-max-age-ms``.
- ``x-returns`` (optional): a JSON Schema of the result; where a field fits a later
  call's argument, the decoder may write a ``$k.field`` reference to it.

Spec files are checked item by item (:mod:`control.tool_schema`): a bad one is
a :class:`ToolError` naming the file, the tool and what was expected.

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
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import jsonschema

from control.tool_schema import read_json_file, spec_problem, unwrap
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
    "load_tool_spec_file",
    "load_tool_specs",
    "mark_running_ahead",
    "running_ahead",
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
    """The argument names in ``template``; ``ValueError`` unless each is a plain ``{name}``."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"{{{name}{'!' + conversion if conversion else ''}"
                             f"{':' + spec if spec else ''}}} is not a plain {{argument}}")
        names.append(name)
    return names


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
    max_age_ms: float | None = None
    depends_on_clock: bool = False
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
        if self.max_age_ms is not None and not 0 <= self.max_age_ms < float("inf"):
            raise ToolError(f"tool {self.name!r}: x-max-age-ms: expected a finite number of "
                            f"milliseconds >= 0, got {self.max_age_ms}")
        try:
            jsonschema.Draft202012Validator.check_schema(dict(self.parameters))
        except jsonschema.SchemaError as exc:
            raise ToolError(f"tool {self.name!r}: invalid parameters schema: {exc.message}") from exc
        except RecursionError:
            raise ToolError(f"tool {self.name!r}: parameters schema nested too deeply") from None
        if self.returns is not None:
            try:
                jsonschema.Draft202012Validator.check_schema(dict(self.returns))
            except (jsonschema.SchemaError, RecursionError) as exc:
                raise ToolError(f"tool {self.name!r}: invalid x-returns schema: "
                                f"{getattr(exc, 'message', exc)}") from exc
        known = set(self.properties)
        for template in self.reads + self.writes:
            try:
                fields = _template_fields(template)
            except ValueError as exc:
                raise ToolError(f"tool {self.name!r}: resource {template!r}: {exc}; write "
                                "names such as 'light:{room}'") from exc
            missing = [f for f in fields if f not in known]
            if missing:
                raise ToolError(
                    f"tool {self.name!r}: resource {template!r} names unknown argument(s) "
                    f"{missing}; known: {sorted(known)}"
                )

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
        fn, problem = unwrap(spec)
        problem = problem or spec_problem(fn)
        if problem is not None:
            name = fn.get("name") if isinstance(fn, Mapping) else None
            who = f"tool {name!r}" if isinstance(name, str) else "tool spec"
            raise ToolError(f"{who}: {problem}")
        effect = Effect(fn.get("x-effect", Effect.WRITE))
        resources = fn.get("x-resources") or {}
        if isinstance(resources, list):  # the short form: what it reads (a write: and writes)
            reads = writes = tuple(resources)
            writes = writes if effect is Effect.WRITE else ()
        else:
            reads, writes = tuple(resources.get("reads", ())), tuple(resources.get("writes", ()))
        age = fn.get("x-max-age-ms")
        return cls(
            name=fn["name"],
            description=fn.get("description", ""),
            parameters=fn.get("parameters") or {"type": "object", "properties": {}},
            effect=effect,
            speculation=SpeculationPolicy(fn.get("x-speculation", SpeculationPolicy.DENY)),
            reads=reads,
            writes=writes,
            max_age_ms=None if age is None else float(age),
            depends_on_clock=bool(fn.get("x-depends-on-clock", False)),
            returns=fn.get("x-returns"),
        )

    def to_json(self) -> dict[str, Any]:
        """The OpenAI-style spec with rtagent's ``x-`` metadata."""
        fn: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters),
            "x-effect": str(self.effect),
            "x-speculation": str(self.speculation),
            "x-resources": {"reads": list(self.reads), "writes": list(self.writes)},
        }
        if self.max_age_ms is not None:
            fn["x-max-age-ms"] = self.max_age_ms
        if self.depends_on_clock:
            fn["x-depends-on-clock"] = True
        if self.returns is not None:
            fn["x-returns"] = dict(self.returns)
        return {"type": "function", "function": fn}

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


_RUNNING_AHEAD: ContextVar[bool] = ContextVar("rtagent_running_ahead", default=False)


def running_ahead() -> bool:
    """Whether the tool being invoked now runs ahead of the agent (speculatively): it may
    then use spare resources only (e.g. an idle-priority worker)."""
    return _RUNNING_AHEAD.get()


def mark_running_ahead() -> None:
    """Said by the speculative executor in the task of a run ahead (its own context)."""
    _RUNNING_AHEAD.set(True)


def load_tool_specs(data: Any, source: str = "tool specs") -> list[ToolSpec]:
    """Specs from parsed JSON: a list of specs, or ``{"tools": [...]}``. ``source`` (the
    file) starts every error message, which also names the item and what was expected."""
    items = data.get("tools") if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise ToolError(f"{source}: expected a JSON list of tool specs (or {{\"tools\": [...]}}), "
                        f"got {type(data).__name__}")
    specs = []
    for i, item in enumerate(items):
        try:
            specs.append(ToolSpec.from_json(item))
        except ToolError as exc:
            raise ToolError(f"{source}: item {i}: {exc}") from exc
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ToolError(f"{source}: duplicate tool names in spec list: {dupes}")
    return specs


def load_tool_spec_file(path: str | Path) -> list[ToolSpec]:
    """Specs from a JSON file; every problem is a :class:`ToolError` naming the file."""
    try:
        data = read_json_file(path, "tool specs")
    except ValueError as exc:
        raise ToolError(f"{exc}; expected a JSON list of tool specs") from exc
    return load_tool_specs(data, str(path))
