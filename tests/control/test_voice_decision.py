"""The voice demo's decision without processes or a model: transcripts from a fake bus,
a fake agent and preflight decoder, virtual time. A final transcript starts a turn and
a finished turn is spoken and reported; a partial is decoded ahead and its read-only
calls run ahead; control requests; the wait between ticks."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import pytest

from control.agent import Turn
from control.tools import ToolCall
from control.voice_decision import CallLog, DecisionPorts, DecoderChoice, VoiceDecision
from control.voice_node import VoiceDecisionConfig
from realtime import messages as m
from realtime.bus import Latest
from realtime.clock import FakeClock
from realtime.errors import RtAgentError
from realtime.loop import LoopOptions, TickInfo
from sim_envs.home.replies import NOT_UNDERSTOOD
from sim_envs.home.tools import voice_tool_specs

PERIOD_NS = 62_500_000  # 16 Hz


class Inbox:
    """Perception's topics: queued messages; each empty wait moves virtual time on."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.queue: deque[m.Message] = deque()
        self.waits_ms: list[float] = []

    def recv(self, timeout_ms: float = 0.0) -> Latest[m.Message] | None:
        if self.queue:
            return Latest(self.queue.popleft(), 0.0, "transcript", self.clock.now_ns(), True)
        if timeout_ms > 0:
            self.waits_ms.append(timeout_ms)
            self.clock.advance(int(timeout_ms * 1e6))
        return None


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, m.Message]] = []

    def publish(self, msg: m.Message, topic: str | None = None) -> None:
        self.sent.append((topic or type(msg).__name__, msg))

    def speech(self) -> list[m.SpeechOut]:
        return [msg for topic, msg in self.sent if topic == "speech"]  # type: ignore[misc]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(msg.text) for topic, msg in self.sent  # type: ignore[attr-defined]
                if topic == "event" and msg.logger == kind]  # type: ignore[attr-defined]


class Control:
    def __init__(self) -> None:
        self.requests: deque[m.ToolRequest] = deque()
        self.replies: list[m.ToolReply] = []

    def serve_once(self, handler: Any, timeout_ms: float = 0.0) -> bool:
        if not self.requests:
            return False
        self.replies.append(handler(self.requests.popleft()))
        return True


class Agent:
    def __init__(self) -> None:
        self.submitted: list[str] = []
        self.done: list[Turn] = []  # finished, not polled yet
        self.returned = 0

    @property
    def busy(self) -> bool:
        return self.returned < len(self.submitted)

    def submit(self, text: str) -> int:
        self.submitted.append(text)
        return len(self.submitted)

    def poll(self) -> list[Turn]:
        out, self.done = self.done, []
        self.returned += len(out)
        return out


class Preflight:
    """Decodes each new text to the calls it was given for it; an old text: False."""

    def __init__(self, calls: dict[str, list[ToolCall]]) -> None:
        self.calls = calls
        self.texts: list[str] = []

    def preflight(self, context: Any, tools: Any, on_calls: Any) -> bool:
        text = context.messages[-1]["content"]
        if text in self.texts:
            return False
        self.texts.append(text)
        for call in self.calls.get(text, []):
            on_calls([call], False)
        on_calls([], True)
        return True

    @property
    def stats(self) -> Any:
        return type("Stats", (), {"to_json": lambda self: {"preflights": 9}})()


class Speculation:
    def __init__(self) -> None:
        self.ahead: list[list[ToolCall]] = []
        self.metrics = type("Metrics", (), {"to_json": lambda self: {"hits": 1}})()

    def speculate(self, calls: list[ToolCall]) -> None:
        self.ahead.append(calls)


class Heart:
    def __init__(self) -> None:
        self.beats = 0
        self.counters: dict[str, int] = {}

    def beat(self) -> bool:
        self.beats += 1
        return True


def _decision(speculation: bool = True, calls: dict[str, list[ToolCall]] | None = None
              ) -> tuple[VoiceDecision, Inbox, Outbox, Control, Agent, FakeClock]:
    clock = FakeClock(start_ns=1_000_000_000)
    inbox, outbox, control, agent = Inbox(clock), Outbox(), Control(), Agent()
    decision = VoiceDecision(
        LoopOptions(hz=16.0), clock=clock, agent=agent,
        specs=voice_tool_specs(), ports=DecisionPorts(inbox, outbox, control),  # type: ignore[arg-type]
        decoder=DecoderChoice("simpletool", "model.gguf", None), calls=CallLog(clock),
        preflight=Preflight(calls or {}) if speculation else None,
        speculation=Speculation() if speculation else None, heart=Heart())
    return decision, inbox, outbox, control, agent, clock


def _tick(seq: int = 1, release_ns: int = 0) -> TickInfo:
    return TickInfo(seq, seq, release_ns, release_ns + PERIOD_NS, release_ns, 0, PERIOD_NS)


def _final(text: str, utterance: int = 0) -> m.Transcript:
    return m.Transcript(text=text, is_final=True, utterance_id=utterance, audio_start_ns=100,
                        audio_end_ns=200, t_ns=300)


def _partial(text: str) -> m.Transcript:
    return m.Transcript(text=text, is_final=False, utterance_id=0)


def test_a_final_transcript_starts_a_turn_and_its_end_is_spoken_and_reported() -> None:
    decision, inbox, outbox, _, agent, clock = _decision()
    inbox.queue.append(_final("  turn off the kitchen lights "))
    decision.tick(_tick())
    assert agent.submitted == ["turn off the kitchen lights"]
    assert decision.busy and not outbox.speech()  # nothing said before the turn is done

    turn = Turn(1, "turn off the kitchen lights", submitted_ns=clock.now_ns(),
                calls=[ToolCall("set_light", {"room": "kitchen", "on": False})],
                results=[{"name": "set_light", "ok": True,
                          "value": {"room": "kitchen", "on": False, "brightness": 80}}],
                ok=True, first_call_ns=clock.now_ns() + 5, first_result_ns=clock.now_ns() + 9,
                done_ns=clock.now_ns() + 9)
    agent.done.append(turn)
    decision.tick(_tick(2))
    [speech] = outbox.speech()
    assert (speech.text, speech.reply_id) == ("Okay, the kitchen lights are off.", 1)
    [event] = outbox.events("turn")
    assert event["reply"] == speech.text and event["reply_id"] == 1
    assert (event["utterance"], event["speech_start_ns"], event["end_of_speech_ns"],
            event["final_ns"], event["received_ns"]) == (0, 100, 200, 300, 1_000_000_000)
    assert (event["first_call_ns"], event["first_result_ns"]) == (turn.first_call_ns,
                                                                  turn.first_result_ns)
    assert event["turn"]["calls"][0]["name"] == "set_light"
    assert decision.turns_done == 1 and not decision.busy


def test_a_final_without_words_is_answered_without_a_turn() -> None:
    decision, inbox, outbox, _, agent, _ = _decision()
    inbox.queue.append(_final("   "))
    decision.tick(_tick())
    assert agent.submitted == []
    [speech] = outbox.speech()
    assert (speech.text, speech.reply_id) == (NOT_UNDERSTOOD, 0)
    [event] = outbox.events("turn")
    assert event["turn"] is None and event["error"] == "no words recognised in the utterance"


def test_a_partial_is_decoded_ahead_and_only_its_read_only_calls_run_ahead() -> None:
    weather = ToolCall("get_weather", {"city": "Paris"})
    light = ToolCall("set_light", {"room": "office", "on": True})
    decision, inbox, _, _, agent, _ = _decision(
        calls={"weather in Paris and office lights": [weather, light]})
    inbox.queue.extend([_partial("weather"),  # one word: too little to decode
                        _partial("weather in Paris and office lights"),
                        _partial("weather in Paris and office lights")])  # decoded already
    decision.tick(_tick())
    assert decision.preflight.texts == ["weather in Paris and office lights"]
    assert decision.speculation.ahead == [[weather]]  # the write waits for the final
    assert (decision.preflights, decision.speculated) == (1, 1)
    assert decision.hearing and decision.partial == "weather in Paris and office lights"
    assert agent.submitted == []  # a partial never starts a turn


def test_without_speculation_a_partial_is_only_heard() -> None:
    decision, inbox, outbox, _, agent, _ = _decision(speculation=False)
    inbox.queue.append(_partial("what's the weather in"))
    decision.tick(_tick())
    decision.between_ticks(_tick(4, release_ns=decision.clock.now_ns()))
    assert decision.preflights == 0 and agent.submitted == []
    [status] = outbox.events("status")
    assert (status["state"], status["partial"]) == ("hearing", "what's the weather in")


def test_a_barge_in_means_hearing_and_a_final_ends_it() -> None:
    decision, inbox, _, _, _, _ = _decision()
    inbox.queue.append(m.PlaybackControl(action="stop", reason="barge-in"))
    decision.tick(_tick())
    assert decision.hearing
    inbox.queue.append(_final("what time is it"))
    decision.tick(_tick(2))
    assert not decision.hearing and decision.partial == ""


def test_control_requests_stats_and_refuses_others() -> None:
    decision, inbox, _, control, _, _ = _decision()
    inbox.queue.append(_partial("set a timer"))
    control.requests.extend([m.ToolRequest(name="stats"), m.ToolRequest(name="reboot")])
    decision.tick(_tick())
    decision.tick(_tick(2))
    stats, refused = control.replies
    got = json.loads(stats.value_json)
    assert got["decoder"] == {"name": "simpletool", "model": "model.gguf", "lora": None}
    assert (got["turns"], got["preflights"], got["speculation"], got["preflight"]) == (
        0, 1, {"hits": 1}, {"preflights": 9})
    assert got["loop"]["ticks"] == 0  # the loop itself never ran here
    assert not refused.ok and "unknown decision request 'reboot'; expected 'stats'" in refused.error


def test_a_turns_results_say_how_each_call_was_served() -> None:
    clock = FakeClock(start_ns=10)
    log = CallLog(clock)
    call = ToolCall("get_weather", {"city": "Oslo"})
    result = type("Result", (), {"speculative": True, "ok": True, "started_ns": 3, "ended_ns": 7})()
    log.add(call, result)  # returned at 10: an earlier attempt
    clock.advance(90)
    log.add(call, result)  # returned at 100
    served = log.take(call.to_json(), since_ns=50)
    assert served is not None and (served.returned_ns, served.speculative) == (100, True)
    assert log.take(call.to_json()) is None  # the older entry was dropped


def test_between_ticks_it_waits_for_transcripts_until_just_before_the_next_release() -> None:
    decision, inbox, outbox, _, _, clock = _decision()
    release = clock.now_ns()
    decision.between_ticks(_tick(3, release_ns=release))
    assert decision.heart.beats == 1 and decision.heart.counters == {"ticks": 3, "turns": 0}
    assert not outbox.events("status")  # a status every 4 ticks
    assert all(w <= 5.0 for w in inbox.waits_ms)  # waits in slices, polling for turns
    stop = release + PERIOD_NS - 3_000_000
    assert stop <= clock.now_ns() < stop + 5_000_000


@pytest.mark.parametrize("bad", [{"hz": 0.0}, {"decoder_threads": 0}, {"final_decoder_threads": None},
                                 {"service_min_ms": 500.0}, {"decoder": ""}])
def test_a_bad_decision_option_says_what_was_expected(bad: dict[str, Any]) -> None:
    with pytest.raises(RtAgentError, match="expected"):
        VoiceDecisionConfig(**bad)
