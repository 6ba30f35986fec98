"""The speculative executor on the real voice tools (SQLite home store, simulated remote
services in worker threads) and the real asyncio loop: speculation from a partial
transcript, served or joined without running twice, the deny write never run ahead,
no stale read after the write, and the same committed results as without speculation."""

from __future__ import annotations

import asyncio
from typing import Any

from control.tools import ToolCall, canonical_json
from sim_envs.home.services import ServiceOptions, Services
from sim_envs.home.store import HomeStore
from sim_envs.home.tools import build_voice_tools
from speculation.executor import SpeculationOptions, SpeculativeExecutor
from speculation.patterns import PatternLibrary
from speculation.predictors import PatternPredictor
from speculation.workloads import voice_episodes

PARTIAL = {"topic": "lights", "room": "kitchen", "home_city": "Oslo"}


async def session(call: Any, observe: Any, store: HomeStore) -> list[str]:
    """The agent: hears a partial transcript, thinks, checks the light, toggles it, checks
    again, then asks for the weather."""
    if observe is not None:
        observe(PARTIAL)
    await asyncio.sleep(0.3)  # the user finishes speaking; the decoder decides
    out = []
    state = await call(ToolCall("get_light_state", {"room": "kitchen"}))
    out.append(state)
    await asyncio.sleep(0.3)
    # the deny write was predicted (set_light follows get_light_state) but has not run
    assert store.get_light_state("kitchen")["on"] == state.value["on"]
    out.append(await call(ToolCall("set_light", {"room": "kitchen",
                                                 "on": not state.value["on"]})))
    out.append(await call(ToolCall("get_light_state", {"room": "kitchen"})))
    out.append(await call(ToolCall("get_weather", {"city": "Oslo"})))
    return out


def _run(speculate: bool) -> tuple[list[Any], Services, Any]:
    store = HomeStore()
    services = Services(ServiceOptions(min_latency_ms=100, max_latency_ms=200))
    registry = build_voice_tools(store, services)

    async def main() -> tuple[list[Any], Any]:
        if not speculate:
            return await session(registry.invoke, None, store), None
        lib = PatternLibrary()
        lib.update(voice_episodes(200, 0))
        ex = SpeculativeExecutor(registry, PatternPredictor(lib), SpeculationOptions(top_k=3))
        try:
            return await session(ex.call, ex.observe, store), ex.metrics
        finally:
            await ex.aclose()

    out, metrics = asyncio.run(main())
    return out, services, metrics


def test_real_voice_tools_lossless_and_served_from_speculation() -> None:
    plain, _, _ = _run(False)
    spec, services, m = _run(True)
    committed = [(r.call.key(), r.ok, canonical_json(r.value)) for r in spec]
    assert committed == [(r.call.key(), r.ok, canonical_json(r.value)) for r in plain]
    assert all(r.ok for r in spec)
    assert spec[0].speculative                     # started from the partial transcript
    assert not spec[1].speculative                 # the write ran only when asked
    assert spec[2].value["on"] == spec[1].value["on"]  # fresh after the write
    assert m.writes_attempted >= 1 and m.writes_executed == 0
    assert services.weather.calls == 1             # served or joined, never run twice
