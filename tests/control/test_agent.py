"""The agent: decode -> DAG -> tools on its own thread; submit/poll never block."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from control.agent import Agent, AgentOptions
from control.dag_run import DagOptions
from control.tools import (
    Effect,
    SpeculationPolicy,
    ToolCall,
    ToolRegistry,
    ToolSpec,
    UnknownValueError,
    load_tool_specs,
)
from realtime.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
NUM = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}


class ScriptedDecoder:
    """A fake decoder (unit tests only): yields scripted answers, one per decode."""

    name = "scripted"

    def __init__(self, answers: list[list[ToolCall]], delay_s: float = 0.0) -> None:
        self.answers = answers
        self.delay_s = delay_s
        self.contexts: list[object] = []
        self.threads: set[str] = set()

    def decode_stream(self, context, tools):
        self.contexts.append(context)
        self.threads.add(threading.current_thread().name)
        for call in self.answers.pop(0):
            time.sleep(self.delay_s)
            yield call


def _registry(log: list[str]) -> ToolRegistry:
    reg = ToolRegistry()

    def slow(x: float) -> float:
        log.append(f"start {x}")
        time.sleep(0.2)
        log.append(f"end {x}")
        return x * 10

    def fail(x: float) -> float:
        raise RuntimeError("gripper jammed")

    reg.register(ToolSpec("look", parameters=NUM, effect=Effect.READ,
                          speculation=SpeculationPolicy.ALLOW), slow)
    reg.register(ToolSpec("fail", parameters=NUM), fail)
    return reg


def _context(text, history):
    return {"text": text, "history": list(history)}


def test_submit_returns_at_once_and_independent_calls_overlap() -> None:
    log: list[str] = []
    dec = ScriptedDecoder([[ToolCall("look", {"x": 1}), ToolCall("look", {"x": 2})]])
    agent = Agent(dec, _registry(log), _context)
    try:
        t = time.perf_counter()
        agent.submit("look twice")
        assert time.perf_counter() - t < 0.05  # handed over, not run
        assert agent.busy and agent.poll() == []
        (turn,) = agent.wait(10)
    finally:
        agent.close()
    assert turn.ok and [r["value"] for r in turn.results] == [10, 20]
    assert log.index("start 2") < log.index("end 1")  # ran concurrently
    assert dec.threads == {"decoder_0"}
    assert turn.first_call_ns >= turn.submitted_ns and len(turn.decode_ms) == 1


def test_failure_replans_with_the_report_as_feedback() -> None:
    dec = ScriptedDecoder([[ToolCall("fail", {"x": 1})], [ToolCall("look", {"x": 3})]])
    agent = Agent(dec, _registry([]), _context, options=AgentOptions(max_replans=1))
    try:
        agent.submit("do it")
        (turn,) = agent.wait(10)
    finally:
        agent.close()
    assert turn.ok and turn.replans == 1 and turn.calls[0].name == "look"
    feedback = dec.contexts[1]["history"][-1]["content"]
    assert "gripper jammed" in feedback


def test_a_failing_turn_is_reported_not_lost() -> None:
    dec = ScriptedDecoder([[ToolCall("fail", {"x": 1})]])
    agent = Agent(dec, _registry([]), _context, options=AgentOptions(max_replans=0))
    try:
        agent.submit("a")
        agent.submit("b")  # the decoder has no answer left: the turn fails cleanly
        turns = agent.wait(10)
    finally:
        agent.close()
    assert [t.ok for t in turns] == [False, False]
    assert "gripper jammed" in turns[0].error and "IndexError" in turns[1].error


def test_a_turn_without_a_call_is_ok_and_says_so() -> None:
    dec = ScriptedDecoder([[], [ToolCall("look", {"x": 1})]])
    agent = Agent(dec, _registry([]), _context)
    try:
        agent.submit("never mind")
        agent.submit("look")
        nothing, looked = agent.wait(10)
    finally:
        agent.close()
    assert nothing.ok and nothing.no_call and nothing.calls == [] and nothing.error is None
    assert nothing.to_json()["no_call"] is True
    assert looked.ok and not looked.no_call


def test_a_value_the_tool_does_not_know_ends_the_turn_without_a_replan() -> None:
    reg = ToolRegistry()

    def weather(city: str) -> dict:
        if city != "Oslo":
            raise UnknownValueError(f"no data for city {city!r}")
        return {"celsius": 3}

    text = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    reg.register(ToolSpec("weather", parameters=text, effect=Effect.READ), weather)
    dec = ScriptedDecoder([[ToolCall("weather", {"city": "Atlantis"})],
                           [ToolCall("weather", {"city": "Oslo"})]])
    agent = Agent(dec, reg, _context, options=AgentOptions(max_replans=1))
    try:
        agent.submit("weather in Atlantis")
        (turn,) = agent.wait(10)
    finally:
        agent.close()
    assert not turn.ok and turn.unknown_value and turn.replans == 0
    assert len(dec.contexts) == 1  # no second decode guessing another city
    assert "no data for city 'Atlantis'" in turn.results[0]["error"]


class ForeseeingWorld:
    """A fake foresight (unit tests only): predicts ``after``; the world then is ``actual``."""

    def __init__(self, actual: str) -> None:
        self.actual = actual
        self.predicted_from: list[list[str]] = []
        self.predicted_ns: list[int] = []

    def predict(self, calls):
        self.predicted_from.append([c.name for c in calls])
        self.predicted_ns.append(time.monotonic_ns())
        return "after"

    def context(self, text, observation):
        return {"text": text, "world": observation}

    def matches(self, predicted):
        return predicted == self.actual


def _two_requests(agent: Agent) -> list:
    """Queue "first" and "second" at once; their turns when both are done."""
    try:
        agent.submit("first")
        agent.submit("second")
        return agent.wait(10)
    finally:
        agent.close()


@pytest.mark.parametrize("actual", ["after", "something else"])
def test_the_next_request_is_decoded_while_the_calls_run(actual: str) -> None:
    """Two queued requests: the second is decoded on the predicted world while the first
    turn's call still runs, and used only if the world then matches the prediction."""
    log: list[str] = []
    answers = [[ToolCall("look", {"x": 1})], [ToolCall("look", {"x": 2})],
               [ToolCall("look", {"x": 3})]]
    dec = ScriptedDecoder(answers)
    foresight = ForeseeingWorld(actual)
    first, second = _two_requests(Agent(dec, _registry(log), _context, foresight=foresight))
    assert foresight.predicted_from[0] == ["look"]
    assert foresight.predicted_ns[0] < first.done_ns  # while "look 1" was still running
    assert dec.contexts[1] == {"text": "second", "world": "after"}
    assert first.ok and second.ok
    if actual == "after":  # the early decode stands: it ran before the first turn ended
        assert second.foreseen is True and len(dec.contexts) == 2
        assert [c.arguments["x"] for c in second.calls] == [2]
    else:  # the world is not what was predicted: decoded afresh on the real one
        assert second.foreseen is False and len(dec.contexts) == 3
        assert dec.contexts[2] == {"text": "second", "history": []}
        assert [c.arguments["x"] for c in second.calls] == [3]
    assert first.foreseen is None


@dataclass(frozen=True)
class DraftableContext:
    text: str
    world: str
    draft: tuple[ToolCall, ...] | None = None


def test_a_foreseen_decode_the_world_proved_wrong_is_the_fresh_decode_s_draft() -> None:
    log: list[str] = []
    ahead = [ToolCall("look", {"x": 2})]
    dec = ScriptedDecoder([[ToolCall("look", {"x": 1})], ahead, [ToolCall("look", {"x": 3})]])
    foresight = ForeseeingWorld("something else")
    foresight.context = lambda text, observation: DraftableContext(text, observation)
    first, second = _two_requests(Agent(
        dec, _registry(log), lambda text, history: DraftableContext(text, "now"),
        foresight=foresight))
    assert second.foreseen is False
    assert [(c.text, c.world, c.draft) for c in dec.contexts] == [
        ("first", "now", None), ("second", "after", None), ("second", "now", tuple(ahead))]


def test_a_request_queued_while_the_calls_run_is_decoded_ahead_too() -> None:
    log: list[str] = []
    dec = ScriptedDecoder([[ToolCall("look", {"x": 1})], [ToolCall("look", {"x": 2})]])
    agent = Agent(dec, _registry(log), _context, foresight=ForeseeingWorld("after"))
    try:
        agent.submit("first")
        deadline = time.monotonic() + 5
        while "start 1" not in log and time.monotonic() < deadline:  # decoded, now running
            time.sleep(0.005)
        agent.submit("second")
        first, second = agent.wait(10)
    finally:
        agent.close()
    assert second.foreseen is True and dec.contexts[1] == {"text": "second", "world": "after"}
    assert len(dec.contexts) == 2


@pytest.mark.slow
def test_real_decoder_drives_real_tools() -> None:
    from models.decoder import DecodeContext
    from models.factory import make_decoder
    from models.resolve import resolve_model

    specs = load_tool_specs(json.loads((ROOT / "audio/voice_tools.json").read_text()))
    calls: list[ToolCall] = []
    reg = ToolRegistry()
    for spec in specs:
        def fn(_name=spec.name, **kw):
            calls.append(ToolCall(_name, kw))
            return {"done": _name}
        reg.register(spec, fn)
    decoder = make_decoder("simpletool", resolve_model())
    agent = Agent(decoder, reg, lambda text, history: DecodeContext.from_request(text))
    try:
        agent.submit("what's the weather in Oslo?")
        (turn,) = agent.wait(120)
    finally:
        agent.close()
        decoder.close()
    assert turn.ok, turn.error
    # Greedy decoding is deterministic: the real model picks the weather tool for Oslo.
    assert [(c.name, dict(c.arguments)) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert turn.results[0]["value"] == {"done": "get_weather"}


@pytest.mark.slow
def test_a_compound_request_decodes_to_two_calls_the_dag_runs_at_once() -> None:
    """Greedy decoding is deterministic: the real model (with the shipped adapter) answers
    "the weather in Oslo and in Rome" with two calls, streamed into the DAG, which runs
    the two reads side by side: the first call waits for the second to start, which it
    does only if the DAG does not hold it back (one after the other, it never would)."""
    from models.decoder import DecodeContext
    from models.factory import make_decoder
    from models.resolve import resolve_model

    specs = load_tool_specs(json.loads((ROOT / "audio/voice_tools.json").read_text()))
    started = {"Oslo": threading.Event(), "Rome": threading.Event()}
    overlapped: list[bool] = []
    reg = ToolRegistry()
    for spec in specs:
        def fn(_name=spec.name, **kw):
            city = kw.get("city")
            if city in started:
                started[city].set()
            if city == "Oslo":  # the first: still running when the second starts?
                overlapped.append(started["Rome"].wait(120))
            return {"done": _name}
        reg.register(spec, fn)
    decoder = make_decoder("simpletool", resolve_model())
    agent = Agent(decoder, reg, lambda text, history: DecodeContext.from_request(text),
                  options=AgentOptions(dag=DagOptions(call_timeout_s=None)))
    try:
        agent.submit("what's the weather in Oslo and in Rome?")
        agent.submit("never mind")
        both, nothing = agent.wait(300)
    finally:
        agent.close()
        decoder.close()
    assert both.ok and [(c.name, dict(c.arguments)) for c in both.calls] == [
        ("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Rome"})]
    assert overlapped == [True]  # in parallel, not one by one
    assert nothing.ok and nothing.no_call and nothing.calls == []


class HangingDecoder:
    """A fake decoder (unit test only) whose first decode hangs until released."""

    name = "hanging"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.decodes = 0
        self.closed = 0

    def decode_stream(self, context, tools):
        self.decodes += 1
        first = self.decodes == 1
        try:
            if first:
                self.release.wait(60)
            yield ToolCall("look", {"x": 7 if first else 8})
        finally:
            self.closed += 1


def test_a_decode_past_its_timeout_ends_the_turn_and_the_next_request_runs() -> None:
    dec = HangingDecoder()
    agent = Agent(dec, _registry([]), _context, options=AgentOptions(decode_timeout_s=0.3))
    assert agent.progress() == (0, 0)
    try:
        agent.submit("hangs")
        deadline = time.monotonic() + 10
        while agent.progress()[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        started, ended = agent.progress()
        assert started > 0 and ended == 0  # what a node's heartbeat reports meanwhile
        (hung,) = agent.wait(10)
        assert not hung.ok and hung.calls == []
        assert hung.error is not None and hung.error.startswith("DecodeTimeoutError: ")
        assert "decode_timeout_s=0.3" in hung.error
        assert agent.progress() == (0, 1)
        dec.release.set()  # the decoder comes back: the next request is decoded and run
        agent.submit("next")
        (nxt,) = agent.wait(10)
    finally:
        agent.close()
    assert nxt.ok and [r["value"] for r in nxt.results] == [80]
    assert dec.closed == 2  # the abandoned decode was closed once the decoder was free
    with pytest.raises(ConfigError, match="decode_timeout_s"):
        AgentOptions(decode_timeout_s=0)
