"""The draft model trains in seconds and learns the known patterns; the decoder-hint
and combined predictors; `rtagent spec mine|replay` on a tool set it has never seen."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from control.tools import ToolCall
from demos.cli import main
from realtime.errors import ConfigError
from speculation.derive import Context
from speculation.draft import DraftPredictor
from speculation.patterns import PatternLibrary
from speculation.predictors import (
    CombinedPredictor,
    DecoderHintPredictor,
    PatternPredictor,
    Predictor,
)
from tests.speculation.test_patterns import research


def test_draft_model_trains_in_seconds_and_predicts_tool_and_arguments() -> None:
    eps = [research(i, fail=i % 4 == 0) for i in range(30)]
    draft = DraftPredictor.train(eps, epochs=120, hidden=32)
    assert isinstance(draft, Predictor)
    ep = research(500)
    ctx = Context((), ep.observation)
    assert draft.predict(ctx, 1)[0].call == ToolCall("search", {"query": "topic 500"})
    ctx = ctx.then(ToolCall("search", {"query": "topic 500"}), ep.steps[0].result)
    top = draft.predict(ctx, 2)
    assert top[0].call == ToolCall("open", {"url": "https://x/500"})
    assert top[0].probability > 0.5 and top[0].probability >= top[-1].probability


def test_decoder_hint_and_combined_predictors() -> None:
    lib = PatternLibrary()
    lib.update([research(i) for i in range(10)])
    ep = research(77)
    ctx = Context((), ep.observation).then(ToolCall("search", {"query": "topic 77"}),
                                           ep.steps[0].result)
    hint = DecoderHintPredictor(lambda _ctx: {"open": 0.7, "search": 0.3}, lib)
    preds = hint.predict(ctx, 2)
    assert preds[0].call == ToolCall("open", {"url": "https://x/77"})
    assert preds[0].probability == pytest.approx(0.7)
    asked: list[int] = []

    def wrong_hint(_ctx: Context) -> dict[str, float]:
        asked.append(1)
        return {"publish": 1.0}

    wrong = DecoderHintPredictor(wrong_hint, lib)
    mixed = CombinedPredictor([PatternPredictor(lib), wrong], [3, 1], confident=2.0)
    top = mixed.predict(ctx, 2)
    assert top[0].call.name == "open" and top[0].probability == pytest.approx(0.75)
    assert asked == [1]
    # Cascade: a confident first part answers alone; the slower parts are not asked.
    cascade = CombinedPredictor([PatternPredictor(lib), wrong], [3, 1])
    top = cascade.predict(ctx, 2)
    assert top[0].call.name == "open" and top[0].probability == pytest.approx(1.0)
    assert asked == [1]
    with pytest.raises(ConfigError, match="confident"):
        CombinedPredictor([wrong], confident=0.0)


FS_TOOLS = [
    {"name": "list_dir", "parameters": {"type": "object", "properties": {
        "path": {"type": "string"}}, "required": ["path"]},
     "x-effect": "read", "x-speculation": "allow", "x-resources": {"reads": ["dir:{path}"]}},
    {"name": "read_file", "parameters": {"type": "object", "properties": {
        "path": {"type": "string"}}, "required": ["path"]},
     "x-effect": "read", "x-speculation": "allow", "x-resources": {"reads": ["file:{path}"]}},
    {"name": "format_file", "parameters": {"type": "object", "properties": {
        "path": {"type": "string"}}, "required": ["path"]},
     "x-effect": "write", "x-speculation": "dry_run",
     "x-resources": {"reads": ["file:{path}"], "writes": ["file:{path}"]}},
    {"type": "function", "function": {"name": "delete_file", "parameters": {
        "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        "x-effect": "write", "x-speculation": "deny",
        "x-resources": {"writes": ["file:{path}", "dir:*"]}}},
]


def _fs_episode(rng: random.Random, i: int) -> dict[str, Any]:
    d = rng.choice(["src", "docs", "tests"])
    files = [f"{d}/f{j}.py" for j in range(rng.randint(1, 3))]
    f = files[0]
    steps = [
        {"name": "list_dir", "arguments": {"path": d}, "result": {"entries": files},
         "tool_ms": rng.uniform(50, 150), "think_ms": rng.uniform(200, 400)},
        {"name": "read_file", "arguments": {"path": f}, "result": {"text": f"v1 {i}"},
         "tool_ms": rng.uniform(300, 600), "think_ms": rng.uniform(200, 400)},
        {"name": "format_file", "arguments": {"path": f}, "result": {"changed": True},
         "tool_ms": rng.uniform(200, 400), "think_ms": rng.uniform(200, 400)},
        # the same read after a write: must never be served the pre-write text
        {"name": "read_file", "arguments": {"path": f}, "result": {"text": f"v2 {i}"},
         "tool_ms": rng.uniform(300, 600), "think_ms": rng.uniform(200, 400)},
    ]
    if rng.random() < 0.5:
        steps.append({"name": "delete_file", "arguments": {"path": f}, "result": {"ok": True},
                      "tool_ms": 50, "think_ms": 300})
        steps.append({"name": "list_dir", "arguments": {"path": d},
                      "result": {"entries": files[1:]}, "tool_ms": 80, "think_ms": 300})
    return {"id": f"fs{i}", "observation": {"dir": d}, "steps": steps}


def test_cli_mine_and_replay_on_an_unseen_tool_set(tmp_path: Path) -> None:
    rng = random.Random(5)
    tools = tmp_path / "fs_tools.json"
    tools.write_text(json.dumps(FS_TOOLS))
    for name, n in (("train", 40), ("test", 15)):
        (tmp_path / f"{name}.jsonl").write_text(
            "".join(json.dumps(_fs_episode(rng, i)) + "\n" for i in range(n)))
    assert main(["spec", "mine", str(tmp_path / "train.jsonl"), "-o",
                 str(tmp_path / "p.json")]) == 0
    assert PatternLibrary.load(tmp_path / "p.json").episodes == 40
    out = tmp_path / "report.json"
    assert main(["spec", "replay", "--tools", str(tools), "--train", str(tmp_path / "train.jsonl"),
                 "--test", str(tmp_path / "test.jsonl"), "--out", str(out),
                 "--draft-epochs", "30"]) == 0
    report = json.loads(out.read_text())
    assert out.with_suffix(".png").stat().st_size > 1000
    names = {(r["predictor"], r["mode"]) for r in report["rows"]}
    assert ("oracle (bound)", "think-ahead") in names and ("combined", "pre-exec") in names
    for r in report["rows"]:
        assert r["divergent_episodes"] == 0 and r["unrecorded_served"] == 0
        assert r["spec_writes_executed"] == 0
    pattern = next(r for r in report["rows"] if r["predictor"] == "pattern")
    assert pattern["top1"] > 0.4 and pattern["reduction"]["mean"] > 0
    assert main(["spec", "replay", "--tools", str(tmp_path / "nope.json"), "--train", "x",
                 "--test", "y"]) == 1
