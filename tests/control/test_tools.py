"""The shared tool vocabulary: specs with metadata, validation, invocation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from control.tools import (
    Effect,
    InvalidArgumentsError,
    SpeculationPolicy,
    ToolCall,
    ToolError,
    ToolRegistry,
    ToolSpec,
    UnknownToolError,
    canonical_json,
    load_tool_specs,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", ["sim_envs/robot_tools.json", "audio/voice_tools.json"])
def test_demo_tool_specs_load_and_round_trip(path: str) -> None:
    specs = load_tool_specs(json.loads((ROOT / path).read_text()))
    assert len(specs) >= 10
    for spec in specs:
        assert ToolSpec.from_json(spec.to_json()) == spec
        if spec.effect is Effect.WRITE:
            assert spec.speculation is not SpeculationPolicy.ALLOW


def test_spec_without_metadata_is_treated_as_unsafe() -> None:
    spec = ToolSpec.from_json({"name": "launch", "parameters": {"type": "object", "properties": {}}})
    assert (spec.effect, spec.speculation) == (Effect.WRITE, SpeculationPolicy.DENY)


def test_writes_may_not_be_speculated() -> None:
    with pytest.raises(ToolError, match="writes"):
        ToolSpec("fire", effect=Effect.WRITE, speculation=SpeculationPolicy.ALLOW)


def test_resource_templates_are_filled_and_checked() -> None:
    spec = ToolSpec("set_light", parameters={"type": "object", "properties": {"room": {"type": "string"}}},
                    writes=("light:{room}",))
    assert spec.resources({"room": "kitchen"}) == (frozenset(), frozenset({"light:kitchen"}))
    with pytest.raises(ToolError, match="unknown argument"):
        ToolSpec("bad", writes=("light:{room}",))


def test_enum_restriction_and_validation() -> None:
    spec = ToolSpec("grasp", parameters={"type": "object", "properties": {"object": {"type": "string"}},
                                         "required": ["object"]})
    reg = ToolRegistry()
    reg.register(spec.with_enum("object", ["red_cube"]), lambda object: object)
    reg.validate(ToolCall("grasp", {"object": "red_cube"}))
    with pytest.raises(InvalidArgumentsError, match="object"):
        reg.validate(ToolCall("grasp", {"object": "blue_cube"}))
    with pytest.raises(InvalidArgumentsError, match="required"):
        reg.validate(ToolCall("grasp", {}))
    with pytest.raises(UnknownToolError, match="known tools: grasp"):
        reg.validate(ToolCall("fly", {}))


def test_invoke_runs_sync_and_async_tools_and_reports_failures() -> None:
    reg = ToolRegistry()
    props = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}

    async def double(x: float) -> float:
        return 2 * x

    def boom(x: float) -> float:
        raise RuntimeError("motor stalled")

    reg.register(ToolSpec("double", parameters=props, effect=Effect.READ,
                          speculation=SpeculationPolicy.ALLOW), double)
    reg.register(ToolSpec("boom", parameters=props), boom)

    async def main() -> tuple:
        return (await reg.invoke(ToolCall("double", {"x": 2})),
                await reg.invoke(ToolCall("boom", {"x": 1})),
                await reg.invoke(ToolCall("double", {"x": "two"})))

    ok, failed, invalid = asyncio.run(main())
    assert ok.ok and ok.value == 4 and ok.ended_ns >= ok.started_ns
    assert not failed.ok and "motor stalled" in failed.error
    assert not invalid.ok and "InvalidArgumentsError" in invalid.error


def test_call_key_is_canonical() -> None:
    a = ToolCall("move_to", {"x": 1.0, "y": -0.5})
    b = ToolCall("move_to", {"y": -0.5, "x": 1})
    assert a.key() == b.key()
    assert canonical_json({"b": [1.0, 2.5], "a": "é"}) == '{"a":"é","b":[1,2.5]}'
