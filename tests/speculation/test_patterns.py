"""The pattern miner on hand-made traces with known patterns; derivations; the trace
store (SQLite WAL, JSONL); the workload generators."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from control.tools import ToolCall, ToolRegistry
from speculation.derive import Context, Derivation, candidates
from speculation.patterns import PatternLibrary
from speculation.traces import Episode, Step, TraceError, TraceStore, load_jsonl, save_jsonl
from speculation.workloads import load_specs, robot_episodes, voice_episodes


def research(i: int, *, fail: bool = False) -> Episode:
    """search(q from the observation) -> open(url = first result's url) -> summarise(doc =
    open's id, style constant) ; check -> retry on failure."""
    q = f"topic {i}"
    steps = [
        Step("search", {"query": q}, {"results": [{"url": f"https://x/{i}", "title": q}]}),
        Step("open", {"url": f"https://x/{i}"}, {"id": 100 + i, "status": "ok"}),
        Step("summarise", {"doc": 100 + i, "style": "short"}, {"text": "..."}),
        Step("check", {}, {"status": "fail" if fail else "pass"}),
    ]
    if fail:
        steps.append(Step("summarise", {"doc": 100 + i, "style": "long"}, {"text": "...."}))
    else:
        steps.append(Step("publish", {"doc": 100 + i}, {"done": True}))
    return Episode(f"r{i}", tuple(steps), {"query": q})


def test_miner_finds_the_known_patterns_with_derivations() -> None:
    lib = PatternLibrary()
    lib.update([research(i, fail=i % 4 == 0) for i in range(40)])
    ep = research(999)
    ctx = Context((), ep.observation)
    first = lib.predict(ctx, 3)[0]
    assert first.call == ToolCall("search", {"query": "topic 999"})   # obs field
    assert first.probability == pytest.approx(1.0)
    ctx = ctx.then(first.call, ep.steps[0].result)
    second = lib.predict(ctx, 1)[0]
    assert second.call == ToolCall("open", {"url": "https://x/999"})  # result field
    ctx = ctx.then(second.call, ep.steps[1].result)
    third = lib.predict(ctx, 1)[0]
    assert third.call == ToolCall("summarise", {"doc": 1099, "style": "short"})  # + constant
    ctx = ctx.then(third.call, ep.steps[2].result).then(ToolCall("check"), {"status": "pass"})
    assert lib.predict(ctx, 1)[0].call == ToolCall("publish", {"doc": 1099})
    # the result feature (status=fail) switches the prediction to the retry
    failed = Context(ctx.history[:-1], ctx.observation).then(ToolCall("check"),
                                                              {"status": "fail"})
    retry = lib.predict(failed, 1)[0]
    assert retry.call == ToolCall("summarise", {"doc": 1099, "style": "long"})
    assert retry.probability == pytest.approx(1.0)
    pats = {(p.tool, p.context): p for p in lib.patterns()}
    p = pats[("open", json.dumps(["L1", "search"], separators=(",", ":")))]
    assert p.arguments == {"url": "search.result.results[0].url"}
    assert p.support == 40 and p.probability == pytest.approx(1.0)


def test_numeric_offset_derivation_and_result_guess() -> None:
    eps = []
    for i in range(6):
        z = round(0.02 + 0.01 * i, 3)
        eps.append(Episode(f"e{i}", (
            Step("locate", {"object": "cube"}, {"x": 0.5, "y": 0.1 * i, "z": z}),
            Step("move_to", {"x": 0.5, "y": 0.1 * i, "z": round(z + 0.1, 6)}, {"reached": True}),
            Step("grasp", {"object": "cube"}, {"holding": "cube"}))))
    lib = PatternLibrary()
    lib.update(eps)
    ctx = Context((Step("locate", {"object": "cube"}, {"x": 0.4, "y": 0.3, "z": 0.25}),), {})
    pred = lib.predict(ctx, 1)[0]
    assert pred.call == ToolCall("move_to", {"x": 0.4, "y": 0.3, "z": 0.35})
    g = lib.guess_result(ToolCall("move_to", {"x": 0.4, "y": 0.3, "z": 0.35}), ctx)
    assert g is not None and g.value == {"reached": True}
    # the result's field is derived from the call's own argument
    ctx2 = ctx.then(pred.call, {"reached": True})
    g2 = lib.guess_result(ToolCall("grasp", {"object": "sphere"}), ctx2)
    assert g2 is not None and g2.value == {"holding": "sphere"}


def test_online_update_changes_predictions_and_library_round_trips(tmp_path: Path) -> None:
    lib = PatternLibrary()
    a = Episode("a", (Step("ping", {}, {"ok": True}), Step("left", {}, 1)))
    b = Episode("b", (Step("ping", {}, {"ok": True}), Step("right", {}, 2)))
    lib.update([a] * 3)
    ctx = Context((a.steps[0],), {})
    assert lib.predict(ctx, 1)[0].call.name == "left"
    lib.update([b] * 5)
    assert lib.predict(ctx, 1)[0].call.name == "right"
    assert lib.predict(ctx, 2)[1].probability == pytest.approx(3 / 8)
    path = tmp_path / "p.json"
    lib.save(path)
    again = PatternLibrary.load(path)
    assert [p.call for p in again.predict(ctx, 2)] == [p.call for p in lib.predict(ctx, 2)]
    with pytest.raises(TraceError, match="rtagent spec mine"):
        PatternLibrary.load(tmp_path / "missing.json")


def test_candidates_cover_each_derivation_kind() -> None:
    ctx = Context((Step("a", {"n": 3}, {"list": [{"id": "x"}]}),), {"who": "x", "k": 2.5})
    kinds = {d.kind for d in candidates("x", ctx)}
    assert kinds == {"const", "result", "obs"}
    assert Derivation("arg", "a", ("n",)) in candidates(3, ctx)
    off = [d for d in candidates(5.5, ctx) if d.offset]
    assert any(d.apply(ctx) == (True, 5.5) for d in off)
    assert Derivation("result", "missing", ("x",)).apply(ctx) == (False, None)


def test_save_jsonl_replaces_the_file_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "eps.jsonl"
    eps = [research(i) for i in range(3)]
    assert save_jsonl(eps, path) == 3
    before = path.read_bytes()

    def broken() -> Iterator[Episode]:
        yield research(7)
        raise RuntimeError("the recorder died")

    with pytest.raises(RuntimeError, match="recorder died"):
        save_jsonl(broken(), path)
    assert path.read_bytes() == before  # not truncated, not half-written
    assert [p.name for p in tmp_path.iterdir()] == ["eps.jsonl"]  # no temporary left
    assert save_jsonl(load_jsonl(path)[:2], path) == 2  # from the very file it replaces
    assert [e.to_json() for e in load_jsonl(path)] == [e.to_json() for e in eps[:2]]


def test_trace_store_is_wal_and_round_trips_jsonl(tmp_path: Path) -> None:
    eps = [research(i) for i in range(3)]
    src = tmp_path / "in.jsonl"
    assert save_jsonl(eps, src) == 3
    with TraceStore(tmp_path / "t.db") as store:
        assert store.import_jsonl(src) == 3
        store.record("live", Step("ping", {}, {"ok": True}, speculative=True),
                     started_ns=1, ended_ns=2)
        assert store.count_calls() == 16 and store.count_calls(speculative=True) == 1
        assert store.export_jsonl(tmp_path / "out.jsonl") == 4
    mode = sqlite3.connect(tmp_path / "t.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    back = load_jsonl(tmp_path / "out.jsonl")
    assert [e.to_json() for e in back[:3]] == [e.to_json() for e in eps]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "steps": [{"name": "x", "tool_ms": -1}]}\n')
    with pytest.raises(TraceError, match="tool_ms"):
        load_jsonl(bad)


@pytest.mark.parametrize("workload", ["robot", "voice"])
def test_workloads_are_valid_calls_of_the_demo_tools(workload: str) -> None:
    gen = robot_episodes if workload == "robot" else voice_episodes
    eps = gen(200, 3)
    assert len(eps) == 200 and gen(5, 3)[0] == eps[0]
    reg = ToolRegistry()
    for s in load_specs(workload):
        reg.register(s, lambda **_: None, (lambda **_: None) if s.speculation == "dry_run"
                     else None)
    names = set()
    for e in eps:
        for s in e.steps:
            reg.validate(ToolCall(s.name, s.arguments))
            names.add(s.name)
            assert s.tool_ms > 0 and s.think_ms > 0
    assert len(names) >= 8
