"""Speculative results of reads that change with time are served only while fresh.

The real voice tools (SQLite home store, world-clock service) run on a fake clock that
the test moves between the speculation and the agent's call; the executor measures ages
on the same clock. Differential: with speculation on, the agent gets exactly what it gets
with speculation off, clock moves included."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from control.tools import ToolCall, ToolRegistry, ToolResult, ToolSpec, canonical_json
from realtime.errors import ConfigError
from sim_envs.home.services import ServiceOptions, Services
from sim_envs.home.store import HomeStore
from sim_envs.home.tools import build_voice_tools, voice_tool_specs
from speculation.executor import SpeculationOptions, SpeculativeExecutor
from speculation.metadata import max_age_s

START = dt.datetime(2025, 1, 15, 9, 0, tzinfo=dt.UTC)  # Oslo: 10:00 (no DST in January)


class FakeClock:
    """Seconds since START, moved only by the test."""

    def __init__(self) -> None:
        self.s = 1000.0

    def now_s(self) -> float:
        return self.s

    def now_utc(self) -> dt.datetime:
        return START + dt.timedelta(seconds=self.s - 1000.0)


TIME = ToolCall("get_time", {"city": "Oslo"})
TIMERS = ToolCall("list_timers", {})


async def script(call: Callable[[ToolCall], Awaitable[ToolResult]],
                 speculate: Callable[[list[ToolCall]], Awaitable[int]] | None,
                 clock: FakeClock) -> list[ToolResult]:
    """Speculate, move the clock, then call: far past the bound (must run fresh) and
    within it (may be served)."""

    async def ahead(*calls: ToolCall) -> None:
        if speculate is not None:
            assert await speculate(list(calls)) == len(calls)
        await asyncio.sleep(0.05)  # the speculative runs finish (the services do not sleep)

    out = [await call(ToolCall("set_timer", {"minutes": 5}))]  # 300 s left
    await ahead(TIME, TIMERS)
    clock.s += 240.0                  # 10:04, 60 s left on the timer
    out.append(await call(TIMERS))
    clock.s += 360.0                  # 10:10
    out.append(await call(TIME))
    await ahead(TIME)
    clock.s += 1.0                    # within the default bound of a clock read
    out.append(await call(TIME))
    return out


def run(speculation: bool) -> tuple[list[ToolResult], Any]:
    clock = FakeClock()
    store = HomeStore(now_s=clock.now_s)
    services = Services(ServiceOptions(min_latency_ms=0, max_latency_ms=0),
                        sleep_s=lambda _s: None, now_utc=clock.now_utc)
    registry = build_voice_tools(store, services)

    async def main() -> tuple[list[ToolResult], Any]:
        if not speculation:
            return await script(registry.invoke, None, clock), None
        ex = SpeculativeExecutor(registry, None, SpeculationOptions(top_k=0, clock_s=clock.now_s))
        try:
            return await script(ex.call, ex.speculate, clock), ex.metrics
        finally:
            await ex.aclose()

    return asyncio.run(main())


def test_clock_reads_are_served_fresh_and_the_same_as_without_speculation() -> None:
    plain, _ = run(False)
    spec, metrics = run(True)
    assert [(r.call.key(), canonical_json(r.value)) for r in spec] == \
           [(r.call.key(), canonical_json(r.value)) for r in plain]
    _, timers, late_time, soon_time = spec
    assert timers.value["timers"][0]["remaining_s"] == 60.0 and not timers.speculative
    assert late_time.value["time"] == "10:10" and not late_time.speculative
    assert soon_time.value["time"] == "10:10" and soon_time.speculative
    assert metrics.expired == 2 and metrics.writes_executed == 0


def test_voice_specs_mark_the_clock_reads() -> None:
    clocked = {s.name for s in voice_tool_specs() if s.depends_on_clock}
    assert clocked == {"get_time", "list_timers", "get_calendar"}
    timers = next(s for s in voice_tool_specs() if s.name == "list_timers")
    assert timers.max_age_ms == 1000


def _read(name: str, **meta: Any) -> ToolSpec:
    return ToolSpec.from_json({"name": name, "x-effect": "read", "x-speculation": "allow",
                               "x-resources": ["r"], **meta})


def test_max_age_declared_defaulted_or_unbounded() -> None:
    assert max_age_s(_read("a", **{"x-max-age-ms": 250}), 5000) == 0.25
    assert max_age_s(_read("b", **{"x-depends-on-clock": True}), 5000) == 5.0
    assert max_age_s(_read("c"), 5000) is None
    assert _read("d", **{"x-max-age-ms": 0, "x-depends-on-clock": True}).to_json()[
        "function"]["x-max-age-ms"] == 0
    with pytest.raises(ConfigError, match="clock_read_max_age_ms"):
        SpeculationOptions(clock_read_max_age_ms=float("nan"))


def test_a_declared_max_age_bounds_any_read_and_zero_never_serves() -> None:
    clock = FakeClock()
    calls: list[str] = []

    def lookup(q: str) -> str:
        calls.append(q)
        return f"{q}@{clock.s}"

    reg = ToolRegistry()
    reg.register(ToolSpec.from_json({"name": "look", "x-effect": "read", "x-speculation": "allow",
                                     "parameters": {"type": "object",
                                                    "properties": {"q": {"type": "string"}}},
                                     "x-resources": ["web"], "x-max-age-ms": 2000}), lookup)
    reg.register(ToolSpec.from_json({"name": "now", "x-effect": "read", "x-speculation": "allow",
                                     "x-resources": ["clock"], "x-max-age-ms": 0}),
                 lambda: clock.s)

    async def main() -> list[ToolResult]:
        ex = SpeculativeExecutor(reg, None, SpeculationOptions(top_k=0, clock_s=clock.now_s))
        look = ToolCall("look", {"q": "x"})
        await ex.speculate([look, ToolCall("now", {})])
        await asyncio.sleep(0.05)
        clock.s += 1.5
        first = await ex.call(look)          # 1.5 s old: within 2 s
        await ex.speculate([look])
        await asyncio.sleep(0.05)
        clock.s += 2.5
        second = await ex.call(look)         # 2.5 s old: runs again
        now = await ex.call(ToolCall("now", {}))
        await ex.aclose()
        return [first, second, now]

    first, second, now = asyncio.run(main())
    assert first.speculative and first.value == "x@1000.0"
    assert not second.speculative and second.value == "x@1004.0"
    assert not now.speculative and now.value == 1004.0
