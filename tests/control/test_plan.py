"""Plans as DAGs: references, dependencies from resources, and plan errors.

Uses the real voice and robot tool specs (the demos' contract).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from control.plan import (
    ArgumentTypeError,
    DuplicateCallIdError,
    MissingFieldError,
    MissingReferenceError,
    Plan,
    PlanCycleError,
    PlanError,
    Reference,
    parse_reference,
    resolve_reference,
    resources_overlap,
    substitute,
)
from control.tools import ToolCall, ToolRegistry, ToolSpec, load_tool_specs
from realtime.errors import RtAgentError

ROOT = Path(__file__).resolve().parents[2]
VOICE = load_tool_specs(json.loads((ROOT / "audio" / "voice_tools.json").read_text()))
ROBOT = load_tool_specs(json.loads((ROOT / "sim_envs" / "robot_tools.json").read_text()))


def _registry(specs: list[ToolSpec]) -> ToolRegistry:
    reg = ToolRegistry()
    for spec in specs:
        reg.register(spec, lambda **kw: kw, dry_run=lambda **kw: kw)
    return reg


def c(call_id: str, name: str, **args: object) -> ToolCall:
    return ToolCall(name, args, call_id)


def test_parse_reference_exact_strings_only() -> None:
    assert parse_reference("$1") == Reference("1", ())
    assert parse_reference("$1.pose.x") == Reference("1", ("pose", "x"))
    assert parse_reference("$2.objects[0].name") == Reference("2", ("objects", "0", "name"))
    assert parse_reference("$2.objects.0.name") == Reference("2", ("objects", "0", "name"))
    assert str(Reference("1", ("pose", "x"))) == "$1.pose.x"
    for text in ("1", "Paris", "$", "$1 and $2", "costs $1.", "x$1", "$1.pose..x"):
        assert parse_reference(text) is None, text


def test_fan_out_reads_are_independent_and_fan_in_waits_for_all() -> None:
    plan = Plan.from_calls([
        c("1", "get_weather", city="Paris"),
        c("2", "get_weather", city="Rome"),
        c("3", "get_time", city="Rome"),
        c("4", "send_message", contact="Anna", text="Paris: ${1.summary}, Rome: $2.summary"),
    ], VOICE)
    assert [p.deps for p in plan][:3] == [frozenset()] * 3
    assert plan["4"].refs == {"1", "2"} and plan["4"].deps == {"1", "2"}
    assert plan.dependants("1") == ["4"]


def test_write_conflicts_keep_their_order_and_other_resources_do_not_wait() -> None:
    plan = Plan.from_calls([
        c("1", "set_light", room="kitchen", on=True),
        c("2", "get_light_state", room="kitchen"),  # read after write
        c("3", "get_light_state", room="bedroom"),  # other room: free
        c("4", "set_light", room="kitchen", on=False),  # write after read and write
        c("5", "set_light", room="bedroom", on=True),  # write after read of bedroom
        c("6", "get_weather", city="Oslo"),
    ], VOICE)
    deps = {p.id: p.deps for p in plan}
    assert deps == {"1": set(), "2": {"1"}, "3": set(), "4": {"1", "2"}, "5": {"3"}, "6": set()}
    assert plan["4"].order_deps == {"1", "2"} and not plan["4"].refs


def test_a_referenced_resource_argument_is_a_wildcard() -> None:
    # The room is unknown until call 1 runs, so call 2 may touch any light.
    plan = Plan.from_calls([
        c("1", "get_calendar"),
        c("2", "set_light", room="$1.room", on=True),
        c("3", "get_light_state", room="office"),
        c("4", "get_weather", city="Oslo"),
    ], VOICE)
    assert plan["2"].writes == {"light:*"}
    assert plan["3"].deps == {"2"} and plan["4"].deps == set()


def test_a_write_tool_without_declared_resources_is_a_barrier() -> None:
    opaque = ToolSpec("reboot")  # no metadata: the unsafe default, a write of everything
    plan = Plan.from_calls([
        c("1", "get_weather", city="Oslo"), c("2", "reboot"), c("3", "get_calendar")
    ], [*VOICE, opaque])
    assert plan["2"].writes == {"*"}
    assert plan["2"].deps == {"1"} and plan["3"].deps == {"2"}


def test_resource_overlap_with_wildcards() -> None:
    assert resources_overlap(frozenset({"light:*"}), frozenset({"light:kitchen"}))
    assert resources_overlap(frozenset({"*"}), frozenset({"scene"}))
    assert not resources_overlap(frozenset({"light:*"}), frozenset({"thermostat:kitchen"}))
    assert not resources_overlap(frozenset(), frozenset({"*"}))
    assert not resources_overlap(frozenset({"a.b"}), frozenset({"a?b"}))


def test_robot_plan_reads_run_together_and_motions_are_sequenced() -> None:
    plan = Plan.from_calls([
        c("1", "locate_object", object="red_cube"),
        c("2", "locate_object", object="blue_cube"),
        c("3", "move_to", x="$1.x", y="$1.y", z=0.3),
        c("4", "grasp", object="red_cube"),
        c("5", "plan_path", x="$2.x", y="$2.y", z=0.3),
    ], ROBOT)
    assert plan["1"].deps == plan["2"].deps == set()
    assert plan["3"].deps == {"1"}  # data; move_to writes the arm, which nobody read before
    assert plan["4"].deps >= {"1", "3"}  # grasp writes the scene and the arm
    assert plan["5"].deps >= {"2", "3", "4"}  # reads the arm after both motions
    length, path = plan.critical_path({"1": 1, "2": 1, "3": 5, "4": 5, "5": 1})
    assert length == 12 and path == ["1", "3", "4", "5"]
    assert [p.id for p in plan.topological_order()] == ["1", "2", "3", "4", "5"]


def test_forward_references_wait_and_cycles_are_refused() -> None:
    plan = Plan.from_calls([c("1", "web_search", query="$2"), c("2", "get_calendar")], VOICE)
    assert plan["1"].deps == {"2"}
    assert [p.id for p in plan.topological_order()] == ["2", "1"]
    with pytest.raises(PlanCycleError, match=r"\$2 -> \$1 -> \$2"):
        Plan.from_calls([c("1", "web_search", query="$2"), c("2", "web_search", query="$1")],
                        VOICE)
    with pytest.raises(PlanCycleError):
        Plan.from_calls([c("1", "web_search", query="$1")], VOICE)
    # A reference against resource order: 1 writes before 2 reads, but 1 needs 2.
    with pytest.raises(PlanCycleError):
        Plan.from_calls([c("1", "set_light", room="kitchen", on="$2.on"),
                         c("2", "get_light_state", room="kitchen")], VOICE)


def test_structural_errors_are_clear_rtagent_errors() -> None:
    with pytest.raises(MissingReferenceError, match=r"\$7 \(used by call 2\)") as info:
        Plan.from_calls([c("1", "get_calendar"), c("2", "web_search", query="$7.title")], VOICE)
    assert isinstance(info.value, RtAgentError)
    with pytest.raises(DuplicateCallIdError, match="'1'"):
        Plan.from_calls([c("1", "get_calendar"), c("1", "list_timers")], VOICE)
    with pytest.raises(PlanError, match="unknown tool 'fly'"):
        Plan.from_calls([c("1", "fly")], VOICE)
    plan = Plan(VOICE)
    plan.add(c("1", "get_calendar"))
    with pytest.raises(PlanCycleError):
        plan.add(c("2", "web_search", query="$2"))
    assert len(plan) == 1  # a refused call is not added
    plan.close()
    with pytest.raises(PlanError, match="closed"):
        plan.add(c("3", "get_calendar"))


def test_calls_without_ids_are_numbered_in_order() -> None:
    plan = Plan.from_calls([ToolCall("get_calendar"), ToolCall("web_search", {"query": "$1"})],
                           VOICE)
    assert [p.id for p in plan] == ["1", "2"] and plan["2"].deps == {"1"}


@dataclass
class Pose:
    x: float
    y: float


def test_substitute_nested_fields_lists_text_and_attributes() -> None:
    plan = Plan.from_calls([
        c("1", "detect_objects"),
        c("2", "locate_object", object="$1.objects[1].name"),
        c("3", "plan_path", x="$2.pose.x", y="$2.pose.y", z=0.25),
    ], ROBOT)
    values = {"1": {"objects": [{"name": "red_cube"}, {"name": "blue_cube"}]},
              "2": {"pose": Pose(0.5, -0.1)}}
    reg = _registry(ROBOT)
    assert substitute(plan["2"], values, reg).arguments == {"object": "blue_cube"}
    assert substitute(plan["3"], values, reg).arguments == {"x": 0.5, "y": -0.1, "z": 0.25}
    assert substitute(plan["1"], values, reg) is plan["1"].call  # nothing to replace

    text = Plan.from_calls([
        c("1", "get_weather", city="Paris"),
        c("2", "send_message", contact="Bo", text="It is ${1.temp}C ($1.sky), costs $5 $1"),
    ], VOICE)
    sent = substitute(text["2"], {"1": {"temp": 21.5, "sky": "clear"}})
    assert sent.arguments["text"] == 'It is 21.5C (clear), costs $5 {"temp": 21.5, "sky": "clear"}'


def test_missing_fields_and_type_mismatches_name_the_reference() -> None:
    plan = Plan.from_calls([
        c("1", "locate_object", object="red_cube"),
        c("2", "plan_path", x="$1.pose", y=0.0, z=0.2),
        c("3", "plan_path", x="$1.pose.w", y=0.0, z=0.2),
        c("4", "plan_path", x="$1.pose.x", y=0.0, z=0.2),
    ], ROBOT)
    values = {"1": {"pose": {"x": 0.5, "y": 0.0}}}
    reg = _registry(ROBOT)
    with pytest.raises(ArgumentTypeError, match=r"references x='\$1.pose'.* at x: .* not of type 'number'"):
        substitute(plan["2"], values, reg)
    with pytest.raises(MissingFieldError, match=r"\$1\.pose has no field 'w'.*\['x', 'y'\]"):
        substitute(plan["3"], values, reg)
    with pytest.raises(ArgumentTypeError, match="maximum|0.8"):  # out of the schema's range
        substitute(plan["4"], {"1": {"pose": {"x": 3.0}}}, reg)
    with pytest.raises(MissingFieldError):
        resolve_reference(Reference("1", ("0",)), {"1": [1, 2][:0]})


def test_the_compound_sets_then_is_kept_where_it_matters() -> None:
    """Each order the compound eval set asks for ("A, then B") is a dependency of the plan
    where running B first or alongside would change what happens: a robot motion after
    another (the gripper opens where the arm has gone), or calls on the same resources
    (the light off, then on again). The rest may overlap: a read before a motion of
    another part, voice calls on different things."""
    from models.evalsets.score import load_cases
    from speculation.workloads import load_specs

    tools = {"robot": load_specs("robot"), "voice": load_specs("voice")}
    kept = free = 0
    for case in load_cases("compound"):
        calls = [ToolCall(e["name"], e["arguments"], id=str(i + 1))
                 for i, e in enumerate(case.expected or ())]
        if not calls:
            continue
        plan = Plan.from_calls(calls, tools[case.toolset_in("compound")])

        def ancestors(call_id: str, plan: Plan = plan) -> set[str]:
            out, todo = set(), [call_id]
            while todo:
                for dep in plan[todo.pop()].deps:
                    if dep not in out:
                        out.add(dep)
                        todo.append(dep)
            return out

        for i, j in case.order:
            a, b = plan[str(i + 1)], plan[str(j + 1)]
            if a.id in ancestors(b.id):
                kept += 1
                continue
            free += 1
            assert not (a.writes and b.writes and case.toolset == "robot"), (case.id, i, j)
            assert not resources_overlap(a.writes, b.reads | b.writes), (case.id, i, j)
            assert not resources_overlap(b.writes, a.reads | a.writes), (case.id, i, j)
    assert kept > 3 * free > 0
