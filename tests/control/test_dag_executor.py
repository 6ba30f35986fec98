"""The DAG executor on a real asyncio (uvloop) loop with real registry tools.

Ordering and concurrency are shown by events, never by timing: concurrent
calls meet at an ``asyncio.Barrier`` (sequential execution would never get
there; a guard timeout turns that into a failure instead of a hang).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from control.dag_executor import CallStatus, DagExecutor, DagOptions, DagRun, run_sync
from control.plan import (
    ArgumentTypeError,
    DuplicateCallIdError,
    MissingFieldError,
    MissingReferenceError,
    PlanCycleError,
    PlanError,
)
from control.tools import Effect, ToolCall, ToolRegistry, ToolResult, ToolSpec, load_tool_specs
from realtime.errors import ConfigError
from realtime.trace import Tracer, to_chrome

ROOT = Path(__file__).resolve().parents[2]
VOICE = load_tool_specs(json.loads((ROOT / "audio" / "voice_tools.json").read_text()))
ROBOT = load_tool_specs(json.loads((ROOT / "sim_envs" / "robot_tools.json").read_text()))
GUARD_S = 5.0  # only stops a broken executor from hanging the suite


def c(call_id: str, name: str, **args: object) -> ToolCall:
    return ToolCall(name, args, call_id)


class Home:
    """Tool backends that log what happens and can be held at a gate."""

    def __init__(self, specs: list[ToolSpec]) -> None:
        self.log: list[str] = []
        self.gates: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {}
        self.values: dict[str, Any] = {}
        self.registry = ToolRegistry()
        for spec in specs:
            self.registry.register(spec, self._backend(spec.name), dry_run=self._backend(spec.name))

    def _backend(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def run(**args: Any) -> Any:
            tag = f"{name}({','.join(str(v) for v in args.values())})"
            self.log.append("start " + tag)
            if name in self.gates:
                await self.gates[name](args)
            await asyncio.sleep(0)
            self.log.append("end " + tag)
            if name == "fail":
                raise RuntimeError("the service is down")
            return self.values.get(name, {"tool": name, **args})

        return run

    def before(self, first: str, second: str) -> bool:
        return self.log.index(first) < self.log.index(second)


def run(coro: Awaitable[Any]) -> Any:
    async def guarded() -> Any:
        return await asyncio.wait_for(coro, GUARD_S)

    return run_sync(guarded())


def test_fan_out_runs_concurrently_and_fan_in_gets_every_result() -> None:
    home = Home(VOICE)
    meet = asyncio.Barrier(3)
    home.gates["get_weather"] = lambda args: meet.wait()  # all three at once, or no pass
    home.values["get_weather"] = {"sky": "clear", "celsius": 21}
    ex = DagExecutor(home.registry)
    result: DagRun = run(ex.run([
        c("1", "get_weather", city="Paris"),
        c("2", "get_weather", city="Rome"),
        c("3", "get_weather", city="Oslo"),
        c("4", "send_message", contact="Anna", text="Paris $1.sky, Rome ${2.celsius}C"),
    ]))
    assert result.ok and result.ids(CallStatus.OK) == ["1", "2", "3", "4"]
    assert result.results["4"].value["text"] == "Paris clear, Rome 21C"
    assert all(home.before(f"end get_weather({city})", "start send_message(Anna,Paris clear, "
                           "Rome 21C)") for city in ("Paris", "Rome"))
    line = result.timeline["4"]
    assert line.deps == ("1", "2") and line.started_ns >= result.timeline["2"].ended_ns
    assert json.dumps([e.to_json() for e in result.timeline.values()])
    tracer = Tracer("decision")
    result.trace(tracer)
    spans = [e for e in to_chrome(tracer.events())["traceEvents"] if e.get("ph") == "X"]
    assert sorted(e["name"] for e in spans) == ["1 get_weather", "2 get_weather",
                                                "3 get_weather", "4 send_message"]


def test_chains_pass_nested_fields_and_keep_types() -> None:
    home = Home(ROBOT)
    home.values["detect_objects"] = {"objects": [{"name": "red_cube"}, {"name": "blue_cube"}]}
    home.values["locate_object"] = {"pose": {"x": 0.5, "y": -0.2, "z": 0.02}}
    result = run(DagExecutor(home.registry).run([
        c("1", "detect_objects"),
        c("2", "locate_object", object="$1.objects[1].name"),
        c("3", "plan_path", x="$2.pose.x", y="$2.pose.y", z=0.3),
    ]))
    assert result.ok
    assert result.results["2"].call.arguments == {"object": "blue_cube"}
    assert result.results["3"].value == {"tool": "plan_path", "x": 0.5, "y": -0.2, "z": 0.3}
    assert home.log == ["start detect_objects()", "end detect_objects()",
                        "start locate_object(blue_cube)", "end locate_object(blue_cube)",
                        "start plan_path(0.5,-0.2,0.3)", "end plan_path(0.5,-0.2,0.3)"]


def test_write_conflicts_keep_order_while_unrelated_calls_overlap() -> None:
    home = Home(VOICE)
    meet = asyncio.Barrier(2)  # set_light(kitchen, on) and the bedroom read must overlap

    async def gate(args: dict[str, Any]) -> None:
        if args in ({"room": "kitchen", "on": True}, {"room": "bedroom"}):
            await meet.wait()

    home.gates["set_light"] = home.gates["get_light_state"] = gate
    result = run(DagExecutor(home.registry).run([
        c("1", "set_light", room="kitchen", on=True),
        c("2", "get_light_state", room="kitchen"),
        c("3", "set_light", room="kitchen", on=False),
        c("4", "get_light_state", room="bedroom"),
    ]))
    assert result.ok
    assert home.before("end set_light(kitchen,True)", "start get_light_state(kitchen)")
    assert home.before("end get_light_state(kitchen)", "start set_light(kitchen,False)")
    assert home.before("start get_light_state(bedroom)", "end set_light(kitchen,True)")


def test_a_failed_call_cancels_exactly_its_dependants() -> None:
    fail = ToolSpec("fail", effect=Effect.WRITE, writes=("arm",))
    home = Home([*ROBOT, fail])
    home.values["locate_object"] = {"pose": {"x": 0.5, "y": 0.1}}
    result = run(DagExecutor(home.registry).run([
        c("1", "fail"),
        c("2", "locate_object", object="red_cube"),  # independent read
        c("3", "plan_path", x="$2.pose.x", y="$2.pose.y", z=0.2),  # reads the arm after 1
        c("4", "move_to", x="$3.x", y=0.0, z=0.2),  # downstream of 3
        c("5", "locate_object", object="blue_cube"),  # independent
        c("6", "go_home"),  # writes the arm after 1: ordered behind it
    ]))
    assert not result.ok
    assert result.ids(CallStatus.FAILED) == ["1"]
    assert result.ids(CallStatus.CANCELLED) == ["3", "4", "6"]
    assert result.ids(CallStatus.OK) == ["2", "5"]
    assert not any("plan_path" in e or "move_to" in e or "go_home" in e for e in home.log)
    assert "RuntimeError: the service is down" in (result.results["1"].error or "")
    report = result.failure_report()
    assert "call 1 fail({}) failed" in report and "call 4" in report and "call 2" not in report
    assert "depends on call 1, which did not succeed" in (result.timeline["3"].error or "")


def test_timeout_fails_the_call_and_its_dependants_only() -> None:
    home = Home(VOICE)
    never = asyncio.Event()
    home.gates["web_search"] = lambda args: never.wait()  # never answers
    ex = DagExecutor(home.registry, options=DagOptions(tool_timeouts_s={"web_search": 0.05}))
    result = run(ex.run([
        c("1", "web_search", query="cheap flights"),
        c("2", "send_message", contact="Bo", text="$1"),
        c("3", "get_calendar"),
    ]))
    assert result.status("1") is CallStatus.TIMED_OUT
    assert result.status("2") is CallStatus.CANCELLED and result.status("3") is CallStatus.OK
    assert "timed out after 0.05 s" in (result.results["1"].error or "")


def test_concurrency_is_bounded() -> None:
    home = Home(VOICE)
    active = peak = 0

    async def gate(args: dict[str, Any]) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        for _ in range(5):
            await asyncio.sleep(0)
        active -= 1

    home.gates["get_weather"] = gate
    ex = DagExecutor(home.registry, options=DagOptions(max_concurrency=2))
    result = run(ex.run([c(str(i), "get_weather", city=f"c{i}") for i in range(1, 8)]))
    assert result.ok and peak == 2


def test_streaming_starts_calls_before_the_plan_is_complete() -> None:
    home = Home(VOICE)
    started = asyncio.Event()

    async def first_gate(args: dict[str, Any]) -> None:
        started.set()

    home.gates["get_weather"] = first_gate

    async def decoder() -> AsyncIterator[ToolCall]:
        yield c("1", "get_weather", city="Paris")
        await started.wait()  # the executor must start call 1 before call 2 exists
        home.log.append("decoded 2")
        yield c("2", "get_time", city="$1.city")

    result = run(DagExecutor(home.registry).run(decoder()))
    assert result.ok and home.log[0] == "start get_weather(Paris)"
    assert home.before("start get_weather(Paris)", "decoded 2")
    assert result.results["2"].call.arguments == {"city": "Paris"}


def test_streaming_from_a_blocking_generator_in_a_thread() -> None:
    home = Home(VOICE)
    started = threading.Event()
    home.gates["get_calendar"] = lambda args: asyncio.sleep(0, started.set())

    def decoder() -> Iterator[ToolCall]:  # blocks like a model decoding on the CPU
        yield c("1", "get_calendar")
        assert started.wait(GUARD_S)
        yield c("2", "list_timers")

    result = run(DagExecutor(home.registry).run(decoder()))
    assert result.ok and result.ids(CallStatus.OK) == ["1", "2"]


def test_session_add_and_close() -> None:
    home = Home(VOICE)

    async def main() -> DagRun:
        ex = DagExecutor(home.registry)
        async with ex.session() as session:
            session.add(c("1", "get_weather", city="Rome"))
            await asyncio.sleep(0.01)
            assert home.log and home.log[0] == "start get_weather(Rome)"
            session.add(c("2", "web_search", query="$1.city"))
            with pytest.raises(PlanCycleError):
                session.add(c("3", "web_search", query="$3"))
            session.close()
            return await session.wait()

    result = run(main())
    assert result.ok and list(result.results) == ["1", "2"]


def test_plan_errors_raise_before_anything_runs() -> None:
    home = Home(VOICE)
    ex = DagExecutor(home.registry)
    with pytest.raises(PlanCycleError):
        run(ex.run([c("1", "get_calendar"), c("2", "web_search", query="$3"),
                    c("3", "web_search", query="$2")]))
    with pytest.raises(MissingReferenceError):
        run(ex.run([c("1", "get_calendar"), c("2", "web_search", query="$9")]))
    assert home.log == []


def test_a_streamed_plan_error_lets_started_calls_finish() -> None:
    home = Home(VOICE)

    async def decoder() -> AsyncIterator[ToolCall]:
        yield c("1", "get_calendar")
        yield c("2", "web_search", query="$4")  # call 4 never comes
        yield c("3", "web_search", query="$1.tool")

    with pytest.raises(MissingReferenceError, match=r"\$4") as info:
        run(DagExecutor(home.registry).run(decoder()))
    partial = info.value.partial
    assert isinstance(partial, DagRun) and partial.status("1") is CallStatus.OK
    assert partial.status("2") is CallStatus.FAILED and partial.status("3") is CallStatus.OK


def test_a_broken_stream_stops_and_closes_its_producer() -> None:
    home = Home(VOICE)
    produced: list[str] = []

    def decoder() -> Iterator[ToolCall]:
        try:
            for call in (c("1", "get_calendar"), c("1", "list_timers"), c("3", "get_calendar")):
                produced.append(call.id)
                yield call
        finally:
            produced.append("closed")

    with pytest.raises(DuplicateCallIdError) as info:
        run(DagExecutor(home.registry).run(decoder()))
    assert produced == ["1", "1", "closed"]
    assert info.value.partial.status("1") is CallStatus.OK


def test_missing_fields_and_type_mismatches_fail_the_call_for_a_replan() -> None:
    home = Home(ROBOT)
    home.values["locate_object"] = {"pose": {"x": 0.5, "y": 0.1}}
    result = run(DagExecutor(home.registry).run([
        c("1", "locate_object", object="red_cube"),
        c("2", "plan_path", x="$1.pose.w", y=0.0, z=0.2),
        c("3", "plan_path", x="$1.pose", y=0.0, z=0.2),
        c("4", "plan_path", x="$1.pose.x", y="$1.pose.y", z=0.2),
    ]))
    assert isinstance(result.errors["2"], MissingFieldError)
    assert isinstance(result.errors["3"], ArgumentTypeError)
    assert result.ids(CallStatus.FAILED) == ["2", "3"] and result.status("4") is CallStatus.OK


def test_injected_invoke_is_the_only_way_calls_run() -> None:
    home = Home(VOICE)
    seen: list[str] = []

    async def invoke(call: ToolCall) -> ToolResult:  # e.g. SpeculativeExecutor.call
        seen.append(call.key())
        return ToolResult(call, True, value={"joined": call.name}, speculative=True)

    result = run(DagExecutor(home.registry, invoke).run(
        [c("1", "get_weather", city="Oslo"), c("2", "web_search", query="$1.joined")]))
    assert result.ok and home.log == []
    assert seen == ['get_weather:{"city":"Oslo"}', 'web_search:{"query":"get_weather"}']

    async def broken(call: ToolCall) -> ToolResult:
        raise ConnectionError("speculation service gone")

    result = run(DagExecutor(home.registry, broken).run([c("1", "get_calendar")]))
    assert result.status("1") is CallStatus.FAILED
    assert "ConnectionError" in (result.results["1"].error or "")


def test_replans_are_bounded_and_get_the_failure() -> None:
    home = Home(VOICE)
    seen: list[str | None] = []

    def plan_fn(previous: DagRun | None) -> list[ToolCall]:
        seen.append(previous.failure_report() if previous else None)
        if previous is None:
            return [c("1", "get_calendar"), c("2", "web_search", query="$1.nope")]
        return [c("1", "get_calendar"), c("2", "web_search", query="$1.tool")]

    outcome = run(DagExecutor(home.registry).run_with_replans(plan_fn, max_replans=2))
    assert outcome.ok and outcome.replans == 1
    assert seen[0] is None and "no field 'nope'" in (seen[1] or "")

    async def always_broken(previous: DagRun | None) -> list[ToolCall]:
        return [c("1", "web_search", query="$2")]

    outcome = run(DagExecutor(home.registry).run_with_replans(always_broken, max_replans=2))
    assert not outcome.ok and len(outcome.runs) == 3
    assert isinstance(outcome.final.plan_error, MissingReferenceError)
    assert isinstance(outcome.final.plan_error, PlanError)


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="max_concurrency"):
        DagOptions(max_concurrency=0)
    with pytest.raises(ConfigError, match="expected seconds > 0"):
        DagOptions(call_timeout_s=0)
    with pytest.raises(ConfigError, match="max_replans"):
        run(DagExecutor(Home(VOICE).registry).run_with_replans(lambda p: [], max_replans=-1))


def test_cancel_stops_running_and_waiting_calls() -> None:
    home = Home(VOICE)
    never = asyncio.Event()
    home.gates["web_search"] = lambda args: never.wait()

    async def main() -> DagRun:
        session = DagExecutor(home.registry).session()
        session.add(c("1", "web_search", query="x"))
        session.add(c("2", "send_message", contact="Bo", text="$1"))
        await asyncio.sleep(0.01)
        await session.cancel()
        return await session.wait()

    result = run(main())
    assert result.ids(CallStatus.CANCELLED) == ["1", "2"]
