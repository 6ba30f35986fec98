"""Live speculation: the on-disk trace store, mining between turns and across runs,
and the live predictor (speculation/trace_store.py, speculation/live.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from control.tools import Effect, SpeculationPolicy, ToolCall, ToolRegistry, ToolSpec
from speculation.derive import Context
from speculation.executor import SpeculationOptions
from speculation.live import LiveMiner, LivePredictor, LiveSpeculation, request_features
from speculation.patterns import PatternLibrary
from speculation.trace_store import (
    SCHEMA,
    JsonlTraceStore,
    compact_result,
    load_library,
    read_traces,
    save_library,
    spec_dir,
    trace_files,
)
from speculation.traces import Episode, Step


def _step(name: str, **arguments: Any) -> Step:
    return Step(name, arguments, result={"ok": True, **arguments}, tool_ms=5.0)


def test_the_store_appends_lines_with_a_schema_and_reads_them_back_as_episodes(
        tmp_path: Path) -> None:
    store = JsonlTraceStore(tmp_path, "run-a")
    assert store.record("run-a/t1", _step("get_weather", city="Oslo")) == 0
    assert store.record("run-a/t1", _step("get_time", city="Oslo")) == 1
    assert store.record("run-a/t2", _step("get_weather", city="Rome")) == 0
    store.close()
    lines = [json.loads(x) for x in store.path.read_text().splitlines()]
    assert [d["schema"] for d in lines] == [SCHEMA] * 3
    assert lines[1]["episode"] == "run-a/t1" and lines[1]["idx"] == 1
    read = read_traces(tmp_path)
    assert [[s.name for s in e.steps] for e in read.episodes] == [
        ["get_weather", "get_time"], ["get_weather"]]
    assert read.calls == 3 and read.skipped_lines == 0


def test_a_torn_line_or_another_schema_is_skipped_and_counted(tmp_path: Path) -> None:
    store = JsonlTraceStore(tmp_path, "run-a")
    store.record("e", _step("a"))
    store.close()
    with store.path.open("a") as f:
        f.write(json.dumps({"schema": "rtagent-trace/99", "name": "b"}) + "\n")
        f.write('{"schema": "rtagent-trace/1", "name": "c", "argu')  # a crash mid-line
    read = read_traces(tmp_path)
    assert [s.name for e in read.episodes for s in e.steps] == ["a"]
    assert read.skipped_lines == 2


def test_files_rotate_by_size_and_the_oldest_go(tmp_path: Path) -> None:
    store = JsonlTraceStore(tmp_path, "run-a", max_file_bytes=2048, max_files=3)
    for i in range(60):
        store.record("e", _step("lookup", query="x" * 100, i=i))
    store.close()
    files = trace_files(tmp_path)
    assert len(files) == 3 and all(f.stat().st_size < 2048 + 400 for f in files)
    kept = [s.arguments["i"] for e in read_traces(tmp_path).episodes for s in e.steps]
    assert kept == sorted(kept) and kept[-1] == 59 and kept[0] > 0  # the newest survive


def test_a_big_result_is_recorded_by_its_small_fields() -> None:
    plan = {"feasible": True, "version": 7, "waypoints": [[0.1] * 7] * 200}
    assert compact_result(plan) == {"feasible": True, "version": 7, "_omitted": ["waypoints"]}
    assert compact_result({"city": "Oslo"}) == {"city": "Oslo"}


def test_the_store_lives_in_the_cache_dir_unless_told(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.delenv("RTAGENT_SPEC_DIR", raising=False)
    monkeypatch.setenv("RTAGENT_CACHE", str(tmp_path / "cache"))
    assert spec_dir("robot") == tmp_path / "cache" / "speculation" / "robot"
    monkeypatch.setenv("RTAGENT_SPEC_DIR", str(tmp_path / "mine"))
    assert spec_dir("voice") == tmp_path / "mine" / "voice"


def test_the_library_is_saved_whole_and_a_broken_one_is_not_loaded(tmp_path: Path) -> None:
    lib = PatternLibrary(min_support=1)
    lib.update([Episode("e", (_step("get_weather", city="Oslo"), _step("get_time", city="Oslo")))])
    save_library(lib, tmp_path)
    again = load_library(tmp_path)
    assert again is not None and again.to_json() == lib.to_json()
    (tmp_path / "patterns.json").write_text("{not json")
    assert load_library(tmp_path) is None


def test_request_features_name_objects_in_the_order_said_and_keep_numbers() -> None:
    f = request_features("Stack the blue cube on the red cube",
                         ["red_cube", "blue_cube", "green_cube", "bin"])
    assert f == {"w0": "stack", "m0": "blue_cube", "m1": "red_cube"}
    g = request_features("move the gripper to x 0.5 y -0.1 z 0.3 in 10 s")
    assert g["numbers"] == [0.5, -0.1, 0.3, 10] and isinstance(g["numbers"][3], int)


def _library(*episodes: tuple[Step, ...]) -> PatternLibrary:
    lib = PatternLibrary(min_support=1)
    lib.update([Episode(f"e{i}", steps) for i, steps in enumerate(episodes)])
    return lib


def test_the_live_predictor_proposes_only_what_may_run_ahead_and_not_while_gated() -> None:
    lib = _library((_step("get_weather", city="Oslo"), _step("get_time", city="Oslo"),
                    _step("set_light", room="kitchen")))
    open_gate = [True]
    pred = LivePredictor(lib, speculable=lambda n: n != "set_light", gate=lambda: open_gate[0])
    ctx = Context((_step("get_weather", city="Rome"),))
    (p,) = pred.predict(ctx, 1)
    assert p.call == ToolCall("get_time", {"city": "Rome"}) and p.source == "pattern"
    after_time = Context((*ctx.history, _step("get_time", city="Rome")))
    assert all(q.call.name != "set_light" for q in pred.predict(after_time, 3))
    open_gate[0] = False
    assert pred.predict(ctx, 3) == []
    chain = [q.call.name for q in pred.chain(Context((_step("get_weather", city="Rome"),)))]
    assert chain[:2] == ["get_time", "set_light"]  # a draft may name writes


def test_the_miner_counts_each_turn_once_after_the_calls_before_it() -> None:
    lib = PatternLibrary(min_support=1)
    miner = LiveMiner()
    miner.add("run", _step("get_weather", city="Rome"))
    (batch,) = [miner.take()]
    LiveMiner.apply(lib, batch)
    assert miner.take() == []  # nothing new: nothing counted twice
    miner.add("run", _step("get_time", city="Rome"))  # the next turn of the same session
    (before, episode), = miner.take()
    assert [s.name for s in before] == ["get_weather"] and [s.name for s in episode.steps] == [
        "get_time"]
    LiveMiner.apply(lib, [(before, episode)])
    whole = _library((_step("get_weather", city="Rome"), _step("get_time", city="Rome")))
    assert lib.next_tool == whole.next_tool and lib.derivs == whole.derivs
    (p,) = lib.predict(Context((_step("get_weather", city="Oslo"),)), 1)
    assert p.call == ToolCall("get_time", {"city": "Oslo"})


def _registry(log: list[str]) -> ToolRegistry:
    reg = ToolRegistry()
    for name in ("get_weather", "get_time"):
        spec = ToolSpec(name, parameters={"type": "object", "properties": {
            "city": {"type": "string"}}, "required": ["city"]}, effect=Effect.READ,
            speculation=SpeculationPolicy.ALLOW, reads=(f"{name}:{{city}}",))

        async def fn(city: str, _name: str = name) -> dict[str, Any]:
            log.append(f"{_name}({city})")
            await asyncio.sleep(0.05)
            return {"city": city, "tool": _name}
        reg.register(spec, fn)
    return reg


def _session(tmp_path: Path, calls: list[ToolCall], log: list[str]) -> dict[str, Any]:
    """One "run" of a demo: its calls through a fresh LiveSpeculation, a turn per call."""

    async def main() -> dict[str, Any]:
        live = LiveSpeculation("voice", _registry(log),
                               SpeculationOptions(top_k=2, launch_at_issue=False),
                               directory=tmp_path)
        loop = asyncio.get_running_loop()
        for call in calls:
            await live.executor.call(call)
            await asyncio.sleep(0.2)  # the user says the next request meanwhile
            live.after_turn(loop)
            await asyncio.to_thread(live.wait_mined)
            await asyncio.sleep(0)  # the swap, on this loop
        out = {"metrics": live.executor.metrics, "loaded": live.loaded, "mined": live.mined}
        await live.executor.aclose()
        live.close()
        return out

    return asyncio.run(main())


def test_a_second_run_speculates_from_what_the_first_recorded(tmp_path: Path) -> None:
    log: list[str] = []
    first = _session(tmp_path, [ToolCall("get_weather", {"city": "Paris"}),
                                ToolCall("get_time", {"city": "Paris"})], log)
    assert first["loaded"] == "none" and first["metrics"].served == 0 and first["mined"] == 2
    assert (tmp_path / "patterns.json").is_file() and read_traces(tmp_path).calls == 2
    log.clear()
    second = _session(tmp_path, [ToolCall("get_weather", {"city": "Oslo"}),
                                 ToolCall("get_time", {"city": "Oslo"})], log)
    m = second["metrics"]
    assert second["loaded"] == "library"
    assert m.hits == 1 and m.served_by == {"pattern": 1} and m.latency_saved_s > 0
    assert log.count("get_time(Oslo)") == 1  # ran once, ahead, and was served


def test_spec_mine_recorded_mines_the_demos_store_into_the_library_they_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from demos.cli import main

    monkeypatch.setenv("RTAGENT_SPEC_DIR", str(tmp_path))
    assert main(["spec", "mine", "--recorded", "--demo", "voice"]) == 1
    assert "nothing recorded" in capsys.readouterr().out
    store = JsonlTraceStore(tmp_path / "voice", "run-a")
    for city in ("Oslo", "Rome"):
        store.record(f"run-a/{city}", _step("get_weather", city=city))
        store.record(f"run-a/{city}", _step("get_time", city=city))
    store.close()
    assert main(["spec", "mine", "--recorded", "--demo", "voice"]) == 0
    out = capsys.readouterr().out
    assert "mined 2 recorded episodes (4 calls" in out and "get_time(city get_weather.arg" in out
    lib = load_library(tmp_path / "voice")
    assert lib is not None and lib.episodes == 2
    (p,) = lib.predict(Context((_step("get_weather", city="Lima"),)), 1)
    assert p.call == ToolCall("get_time", {"city": "Lima"})
