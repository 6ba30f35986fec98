"""Plans as DAGs: tool calls with ids, ``$k`` references, resource ordering.

A plan is the decoder's calls for one answer, ids ``"1"``, ``"2"``, ...
(LLMCompiler's planner output); arguments may use earlier results through
``$k`` references (:mod:`control.plan_refs`).

Dependencies come from references and from tool metadata
(:meth:`ToolSpec.resources`): a write stays after earlier reads and writes of
its resources, a read after earlier writes; independent reads have no edges.
A resource argument that is a reference is a wildcard (``light:*``); a
writing tool that declares no resources writes ``*``, the safe default.

Calls may be added while the decoder still produces later ones
(:meth:`Plan.add`); a reference to a call not yet added waits for it and
:meth:`Plan.close` reports those that never came. Structural mistakes raise
:class:`PlanError` subclasses at once; a missing result field or a wrong type
after substitution raises from :func:`substitute` when the call is to run.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from control.plan_refs import (
    ArgumentTypeError,
    DuplicateCallIdError,
    MissingFieldError,
    MissingReferenceError,
    PlanCycleError,
    PlanError,
    Reference,
    find_references,
    mentions_reference,
    parse_reference,
    resolve_reference,
    substitute_references,
)
from control.tools import Effect, ToolCall, ToolError, ToolRegistry, ToolSpec

__all__ = [
    "ArgumentTypeError",
    "DuplicateCallIdError",
    "MissingFieldError",
    "MissingReferenceError",
    "Plan",
    "PlanCycleError",
    "PlanError",
    "PlannedCall",
    "Reference",
    "call_resources",
    "parse_reference",
    "resolve_reference",
    "resources_overlap",
    "substitute",
]


# Resources ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _pattern(resource: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in resource.split("*")))


def _match(a: str, b: str) -> bool:
    if a == b:
        return True
    return ("*" in a and _pattern(a).fullmatch(b) is not None) or (
        "*" in b and _pattern(b).fullmatch(a) is not None
    )


def resources_overlap(a: frozenset[str], b: frozenset[str]) -> bool:
    """Whether two resource sets share a resource (``*`` matches any text)."""
    if not a or not b:
        return False
    if not a.isdisjoint(b):
        return True
    if not any("*" in r for r in a) and not any("*" in r for r in b):
        return False
    return any(_match(x, y) for x in a for y in b)


def call_resources(spec: ToolSpec, arguments: Mapping[str, Any]) -> tuple[
    frozenset[str], frozenset[str]
]:
    """(reads, writes) of a call; arguments that hold references count as ``*``."""
    args = {k: ("*" if mentions_reference(v) else v) for k, v in arguments.items()}
    reads, writes = spec.resources(args)
    if spec.effect is Effect.WRITE and not writes:
        writes = frozenset({"*"})
    return reads, writes


# The plan ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedCall:
    """One call of a plan with what it waits for.

    ``refs`` are the ids whose results its arguments use; ``deps`` adds the
    earlier calls it must follow because of shared resources.
    """

    call: ToolCall
    index: int
    refs: frozenset[str]
    deps: frozenset[str]
    reads: frozenset[str]
    writes: frozenset[str]

    @property
    def id(self) -> str:
        return self.call.id

    @property
    def order_deps(self) -> frozenset[str]:
        """Dependencies from resource order only (no data flows along them)."""
        return self.deps - self.refs


class Plan:
    """A DAG of tool calls, built call by call.

    Args:
        specs: the tools the plan may use (a registry, specs, or name -> spec).
    """

    def __init__(self, specs: ToolRegistry | Iterable[ToolSpec] | Mapping[str, ToolSpec]) -> None:
        if isinstance(specs, ToolRegistry):
            self._specs = {s.name: s for s in specs.specs()}
        elif isinstance(specs, Mapping):
            self._specs = dict(specs)
        else:
            self._specs = {s.name: s for s in specs}
        self._calls: dict[str, PlannedCall] = {}
        self._order: list[PlannedCall] = []
        self._writers: list[PlannedCall] = []
        self._dependants: dict[str, list[str]] = {}
        self.closed = False

    @classmethod
    def from_calls(
        cls, calls: Iterable[ToolCall], specs: ToolRegistry | Iterable[ToolSpec]
    ) -> Plan:
        """A complete plan; raises :class:`PlanError` before anything runs."""
        plan = cls(specs)
        for call in calls:
            plan.add(call)
        plan.close()
        return plan

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[PlannedCall]:
        return iter(self._order)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def __getitem__(self, call_id: str) -> PlannedCall:
        return self._calls[call_id]

    def spec(self, name: str) -> ToolSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise PlanError(
                f"the plan calls unknown tool {name!r}; known tools: "
                f"{', '.join(sorted(self._specs)) or 'none'}"
            ) from None

    def dependants(self, call_id: str) -> list[str]:
        """Ids of the calls that wait directly for ``call_id`` (added so far)."""
        return self._dependants.get(call_id, [])

    def add(self, call: ToolCall) -> PlannedCall:
        """Add the next call; raises :class:`PlanError` (and adds nothing) if it is wrong."""
        if self.closed:
            raise PlanError("the plan is closed; start a new plan to add calls")
        if not call.id:
            call = replace(call, id=str(len(self._order) + 1))
        if call.id in self._calls:
            raise DuplicateCallIdError(
                f"two calls have id {call.id!r} ({self._calls[call.id].call.name} and "
                f"{call.name}); give each call of a plan its own id"
            )
        spec = self.spec(call.name)
        refs: set[str] = set()
        find_references(call.arguments, self._calls, refs)
        reads, writes = call_resources(spec, call.arguments)
        deps = set(refs)
        if writes:
            for earlier in self._order:
                if resources_overlap(writes, earlier.reads | earlier.writes):
                    deps.add(earlier.id)
        if reads:
            for earlier in self._writers:
                if resources_overlap(reads, earlier.writes):
                    deps.add(earlier.id)
        self._check_cycle(call, deps)
        planned = PlannedCall(call, len(self._order), frozenset(refs), frozenset(deps),
                              reads, writes)
        self._calls[call.id] = planned
        self._order.append(planned)
        if writes:
            self._writers.append(planned)
        for dep in deps:
            self._dependants.setdefault(dep, []).append(call.id)
        return planned

    def _check_cycle(self, call: ToolCall, deps: set[str]) -> None:
        # The graph was acyclic before; any new cycle runs through ``call``.
        stack: list[tuple[str, tuple[str, ...]]] = [(d, (call.id, d)) for d in deps]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            if node == call.id:
                loop = " -> ".join("$" + p for p in path)
                raise PlanCycleError(
                    f"calls wait for each other in a circle ({loop}; '->' means 'waits for'); "
                    "a call may only use results of calls that do not need it"
                )
            if node in seen or node not in self._calls:
                continue
            seen.add(node)
            stack.extend((d, (*path, d)) for d in self._calls[node].deps)

    def unresolved(self) -> dict[str, list[str]]:
        """Referenced ids that are not in the plan -> ids of the calls waiting for them."""
        return {d: ids for d, ids in self._dependants.items() if d not in self._calls}

    def close(self) -> None:
        """Mark the plan complete; raises :class:`MissingReferenceError` if refs dangle."""
        self.closed = True
        missing = self.unresolved()
        if missing:
            parts = [f"${d} (used by call {', '.join(ids)})" for d, ids in sorted(missing.items())]
            raise MissingReferenceError(
                f"the plan refers to calls it does not have: {'; '.join(parts)}; "
                f"its calls are {', '.join(self._calls) or 'none'}"
            )

    def critical_path(self, durations: Mapping[str, float]) -> tuple[float, list[str]]:
        """The longest chain of dependent calls given each call's duration."""
        finish: dict[str, float] = {}
        best: dict[str, str | None] = {}
        for planned in self.topological_order():
            prev = max(planned.deps, key=lambda d: finish[d], default=None)
            finish[planned.id] = (finish[prev] if prev else 0.0) + durations.get(planned.id, 0.0)
            best[planned.id] = prev
        if not finish:
            return 0.0, []
        end: str | None = max(finish, key=lambda k: finish[k])
        length = finish[end]  # type: ignore[index]
        chain: list[str] = []
        while end is not None:
            chain.append(end)
            end = best[end]
        return length, chain[::-1]

    def topological_order(self) -> list[PlannedCall]:
        """Calls ordered so each comes after everything it waits for."""
        done: set[str] = set()
        out: list[PlannedCall] = []
        pending = list(self._order)
        while pending:
            rest = []
            for planned in pending:
                if planned.deps <= done:
                    out.append(planned)
                    done.add(planned.id)
                else:
                    rest.append(planned)
            if len(rest) == len(pending):
                raise PlanCycleError("the plan has unresolved or circular dependencies")
            pending = rest
        return out


def substitute(
    planned: PlannedCall, values: Mapping[str, Any], registry: ToolRegistry | None = None
) -> ToolCall:
    """``planned.call`` with its references replaced by results (id -> value).

    With ``registry``, the substituted arguments are checked against the tool's
    JSON Schema; a mismatch raises :class:`ArgumentTypeError` naming the references.
    """
    if not planned.refs:
        return planned.call
    args = substitute_references(planned.call.arguments, planned.refs, values)
    call = replace(planned.call, arguments=args)
    if registry is not None:
        try:
            registry.validate(call)
        except ToolError as exc:
            used = ", ".join(f"{k}={v!r}" for k, v in planned.call.arguments.items()
                             if mentions_reference(v))
            raise ArgumentTypeError(
                f"call {call.id} ({call.name}) with references {used}: {exc}. "
                "Refer to a field of the right type, or pass the value directly"
            ) from exc
    return call
