"""Speculative results (finished or in flight), keyed by tool + canonical arguments,
valid only while the resources they read keep the versions they had at start and,
for a tool with a max age, until that age (on the executor's clock)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from control.tools import ToolCall, ToolResult
from speculation.metadata import ResourceVersions, resources_overlap
from speculation.traces import Step

__all__ = ["Entry", "SpeculationCache"]


@dataclass(eq=False)
class Entry:
    """One speculative run."""

    call: ToolCall
    dry_run: bool
    reads: frozenset[str]
    snapshot: tuple[tuple[str, int], ...]
    task: asyncio.Task[ToolResult]
    started_s: float
    depth: int
    probability: float
    gen: int                        # committed-call count when it was last wanted
    chain: tuple[Step, ...] = ()    # hypothetical calls it was predicted after
    ended_s: float | None = None
    fresh_until_s: float | None = None  # on the cache's clock; None: no age limit
    used: bool = False
    dropped: bool = False

    @property
    def key(self) -> str:
        return ("dry:" if self.dry_run else "") + self.call.key()

    def done_ok(self) -> ToolResult | None:
        if not self.task.done() or self.task.cancelled() or self.task.exception() is not None:
            return None
        res = self.task.result()
        return res if res.ok else None


class SpeculationCache:
    """A bounded table of speculative runs; see the module doc."""

    def __init__(self, versions: ResourceVersions, max_entries: int = 256,
                 clock_s: Callable[[], float] | None = None) -> None:
        self.versions = versions
        self.max_entries = max_entries
        self.clock_s = clock_s
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))

    def get(self, key: str) -> Entry | None:
        e = self._entries.get(key)
        if e is not None:
            self._entries.move_to_end(key)
        return e

    def valid(self, entry: Entry, at_s: float | None = None) -> bool:
        """What it read is unchanged and it is fresh at ``at_s`` (default: now)."""
        return self.versions.valid(entry.snapshot) and self.fresh(entry, at_s)

    def fresh(self, entry: Entry, at_s: float | None = None) -> bool:
        if entry.fresh_until_s is None:
            return True
        if at_s is None:
            if self.clock_s is None:
                return False  # an age limit and no clock to check it on: not fresh
            at_s = self.clock_s()
        return at_s <= entry.fresh_until_s

    def put(self, entry: Entry) -> list[Entry]:
        """Add ``entry``; returns the entries evicted to stay within the bound."""
        self._entries[entry.key] = entry
        evicted = []
        while len(self._entries) > self.max_entries:
            _, old = self._entries.popitem(last=False)
            evicted.append(old)
        return evicted

    def pop(self, entry: Entry) -> None:
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]

    def in_flight(self) -> int:
        return sum(1 for e in self._entries.values() if not e.task.done())

    def conflicting(self, writes: Iterable[str]) -> list[Entry]:
        """Entries that read something ``writes`` may change."""
        ws = list(writes)
        return [e for e in self._entries.values() if resources_overlap(e.reads, ws)]

    def stale(self, gen: int, keep_gens: int) -> list[Entry]:
        """Entries nobody has wanted for more than ``keep_gens`` committed calls."""
        return [e for e in self._entries.values() if e.gen < gen - keep_gens]
