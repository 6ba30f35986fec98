"""The DAG executor with what feeds it for real: the bench command, the decoder's
compact format with references, any plan against the sequential results (hypothesis),
the speculative executor and a real decoder's stream. Shared parts in test_dag_executor."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control.dag_executor import DagExecutor, DagRun, run_sync
from control.tools import Effect, ToolCall, ToolRegistry, ToolSpec
from tests.control.test_dag_executor import ROBOT, VOICE, Home, c, run


def test_bench_dag_runs_and_reports_against_the_bound(tmp_path: Path) -> None:
    from demos.cli import main

    out = tmp_path / "dag.json"
    assert main(["bench", "dag", "--latency-ms", "2", "--repeats", "1", "--kmax", "3",
                 "--overhead-runs", "3", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert [r["bound"] for r in figures["fan_out"]] == [2.0, 3.0]
    assert {r["plan"] for r in figures["mixed"]} == {"diamond", "chains+free",
                                                     "write-conflicts", "map-reduce-8"}
    assert figures["mixed"][0]["critical_path"] == ["1", "4", "5"]
    assert all(r["speedup"] > 0 for r in figures["fan_out"] + figures["voice"])


def test_runs_the_decoders_compact_format_with_references() -> None:
    from models.callformat import parse

    home = Home(ROBOT)
    home.values["locate_object"] = {"x": 0.45, "y": -0.12, "z": 0.02}
    text = ("locate_object(object=red_cube)\nlocate_object(object=blue_cube)\n"
            "plan_path(x=$1.x, y=$1.y, z=0.3)\nmove_to(x=$2.x, y=$2.y, z=0.3)")
    calls = parse(text, ROBOT)
    assert [call.id for call in calls] == ["1", "2", "3", "4"]
    result = run(DagExecutor(home.registry).run(calls))
    assert result.ok
    assert result.results["3"].call.arguments == {"x": 0.45, "y": -0.12, "z": 0.3}
    assert result.timeline["4"].deps == ("2", "3")  # data from 2; the arm after 3's read


def _state_registry(state: dict[str, int], log: list[str]) -> ToolRegistry:
    params = {"type": "object", "required": ["key"], "properties": {
        "key": {"type": "string"}, "yields": {"type": "integer"}, "input": {}}}
    reg = ToolRegistry()

    async def read(key: str, yields: int = 0, input: Any = None) -> dict[str, Any]:
        log.append(f"start {key}")
        seen = state.get(key, 0)
        for _ in range(yields):
            await asyncio.sleep(0)
        return {"key": key, "seen": seen, "input": input}

    async def write(key: str, yields: int = 0, input: Any = None) -> dict[str, Any]:
        for _ in range(yields):
            await asyncio.sleep(0)
        state[key] = state.get(key, 0) + 1
        await asyncio.sleep(0)
        return {"key": key, "seen": state[key], "input": input}

    reg.register(ToolSpec("read", "", params, Effect.READ, reads=("k:{key}",)), read)
    reg.register(ToolSpec("write", "", params, Effect.WRITE, writes=("k:{key}",)), write)
    return reg


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from("abc"), st.integers(0, 3),
                          st.integers(0, 8)), min_size=1, max_size=8))
def test_any_plan_gives_the_sequential_results(steps: list[tuple[bool, str, int, int]]) -> None:
    # Writes bump a per-key counter and reads report it, so running a read and a
    # write of one key out of plan order changes the results.
    calls = []
    for i, (writes, key, yields, ref) in enumerate(steps, 1):
        args: dict[str, Any] = {"key": key, "yields": yields}
        if 0 < ref < i:
            args["input"] = f"${ref}.seen"
        calls.append(c(str(i), "write" if writes else "read", **args))

    async def sequential() -> dict[str, Any]:
        reg = _state_registry({}, [])
        values: dict[str, Any] = {}
        for call in calls:
            args = {k: values[v[1:].split(".")[0]]["seen"] if k == "input" else v
                    for k, v in call.arguments.items()}
            values[call.id] = (await reg.invoke(ToolCall(call.name, args))).value
        return values

    expected = run(sequential())
    result = run(DagExecutor(_state_registry({}, [])).run(calls))
    assert result.ok and result.values() == expected
    for entry in result.timeline.values():
        assert all(result.timeline[d].ended_ns <= entry.started_ns for d in entry.deps)


def test_through_the_speculative_executor_a_running_prediction_is_joined() -> None:
    from speculation.executor import SpeculativeExecutor

    home = Home(VOICE)
    release = asyncio.Event()
    home.gates["get_weather"] = lambda args: release.wait()

    async def main() -> tuple[DagRun, int]:
        spec = SpeculativeExecutor(home.registry, None)
        try:
            assert await spec.speculate([c("", "get_weather", city="Paris")]) == 1
            await asyncio.sleep(0)
            assert home.log == ["start get_weather(Paris)"]  # predicted, running ahead
            session = DagExecutor(home.registry, spec.call).session()
            session.add(c("1", "get_weather", city="Paris"))
            session.add(c("2", "get_weather", city="Rome"))
            session.close()
            await asyncio.sleep(0.01)
            release.set()
            return await session.wait(), spec.metrics.joins
        finally:
            await spec.aclose()

    result, joins = run(main())
    assert result.ok and joins == 1
    assert result.results["1"].speculative and not result.results["2"].speculative
    assert home.log.count("start get_weather(Paris)") == 1  # joined, never started twice


@pytest.mark.slow
def test_real_decoder_stream_feeds_the_executor_while_it_decodes() -> None:
    import time

    from models.decoder import DecodeContext
    from models.factory import make_decoder
    from models.resolve import resolve_model

    home = Home(VOICE)
    done_ns: list[int] = []

    with make_decoder("simpletool", resolve_model()) as dec:
        def decoded() -> Iterator[ToolCall]:  # runs in the executor's worker thread
            yield from dec.decode_stream(
                DecodeContext.from_request("What's the weather in Paris and in Rome?"), VOICE)
            done_ns.append(time.monotonic_ns())

        result = run_sync(DagExecutor(home.registry).run(decoded()))
    assert result.timeline and result.ok, result.failure_report()
    first = result.timeline["1"]
    assert first.name in {s.name for s in VOICE}
    assert first.ready_ns < done_ns[0]  # launched before the decoder had finished
    assert len([e for e in home.log if e.startswith("start ")]) == len(result.timeline)
