"""Irreversible calls wait for a yes, unsure lookups for a choice, turns that ask for
nothing get a fitting reply, and requests get the dates they name: the real
VoiceDecision, Agent, tools and home store, with a fake decoder (text -> calls)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest

from control.agent import Agent
from control.tools import ToolCall
from control.voice_confirm import ConfirmedCalls, ConfirmGate, Waiting
from control.voice_dates import DatedDecoder, date_calls
from control.voice_decision import ANSWER_WINDOW_NS, CallLog, DecisionPorts, DecoderChoice, VoiceDecision
from control.voice_node import LoggedInvoke
from realtime.clock import FakeClock
from realtime.loop import LoopOptions
from sim_envs.home.intents import Intent, is_no, is_yes, social_intents
from sim_envs.home.replies import social_reply
from sim_envs.home.services import ServiceOptions, Services
from sim_envs.home.store import HomeStore
from sim_envs.home.tools import build_voice_tools, confirm_tools, voice_tool_specs
from tests.control.test_voice_decision import (
    Control,
    Heart,
    Inbox,
    Outbox,
    Preflight,
    Speculation,
    _final,
    _partial,
    _tick,
)

THURSDAY = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


class FakeDecoder:
    """Decodes each request text to the calls given for it (none for any other text)."""

    def __init__(self, calls: dict[str, list[ToolCall]]) -> None:
        self.calls, self.seen = calls, []

    def decode_stream(self, context: Any, tools: Any) -> Iterator[ToolCall]:
        text = context.messages[-1]["content"]
        self.seen.append(text)
        yield from self.calls.get(text, [])

    def close(self) -> None:
        pass


class Assistant:
    """The decision process's parts as voice_node puts them together, on fakes of the bus."""

    def __init__(self, calls: dict[str, list[ToolCall]], *, speculation: bool = False) -> None:
        self.clock = FakeClock(start_ns=1_000_000_000)
        self.inbox, self.outbox = Inbox(self.clock), Outbox()
        self.store = HomeStore(now=lambda: THURSDAY)
        services = Services(ServiceOptions(0, 0), now_utc=lambda: THURSDAY)
        registry = build_voice_tools(self.store, services)
        self.decoder = FakeDecoder(calls)
        log = CallLog(self.clock)
        invoke, answered = LoggedInvoke(log), LoggedInvoke(log)
        self.gate = ConfirmGate(confirm_tools())
        self.gate.inner = registry.invoke
        invoke.inner, answered.inner = self.gate, registry.invoke
        specs = voice_tool_specs()
        self.agent = Agent(DatedDecoder(self.decoder, now=lambda: THURSDAY), registry,
                           lambda text, history: _context(text), tools_fn=lambda: specs,
                           invoke=invoke)
        self.decision = VoiceDecision(
            LoopOptions(hz=16.0), clock=self.clock, agent=self.agent, specs=specs,
            ports=DecisionPorts(self.inbox, self.outbox, Control()),  # type: ignore[arg-type]
            decoder=DecoderChoice("fake", "none", None), calls=log,
            preflight=DatedDecoder(Preflight(calls), now=lambda: THURSDAY) if speculation else None,
            speculation=Speculation() if speculation else None, heart=Heart(),
            answered=ConfirmedCalls(answered, self.agent.loop), confirm=self.gate.confirm)
        self.seq = 0

    def say(self, text: str) -> str:
        """The reply to ``text`` as a final transcript."""
        before = len(self.outbox.speech())
        self.inbox.queue.append(_final(text))
        self.seq += 1
        self.decision.tick(_tick(self.seq))
        deadline = time.monotonic() + 10
        while self.decision.busy and time.monotonic() < deadline:
            self.decision.finish_turns()
            time.sleep(0.005)
        assert not self.decision.busy, "the turn did not finish"
        [reply] = self.outbox.speech()[before:]
        return reply.text

    def close(self) -> None:
        self.agent.close()


def _context(text: str) -> Any:
    from models.decoder import DecodeContext

    return DecodeContext.from_request(text)


@pytest.fixture
def home():
    made: list[Assistant] = []

    def make(calls: dict[str, list[ToolCall]], **kw: Any) -> Assistant:
        made.append(Assistant(calls, **kw))
        return made[-1]

    yield make
    for a in made:
        a.close()


CALL_MOM = {"call mom": [ToolCall("call_contact", {"contact": "Mom"})]}


def test_a_call_waits_for_yes_and_then_is_made(home):
    a = home(CALL_MOM)
    assert a.say("call mom") == "Call Mom?"
    assert a.store.calls() == [] and a.gate.held == 1  # asked, not dialled
    [event] = a.outbox.events("turn")
    assert event["held"] == 1 and event["first_result_ns"] == 0  # a question is no action
    assert a.say("yes") == "Calling Mom."
    assert [c["contact"] for c in a.store.calls()] == ["Mom"]
    assert a.decoder.seen == ["call mom"]  # the yes was an answer, not a request


def test_no_drops_the_call(home):
    a = home(CALL_MOM)
    a.say("call mom")
    assert a.say("no, don't") == "Okay, I won't call Mom."
    assert a.store.calls() == [] and a.decoder.seen == ["call mom"]


def test_anything_else_drops_the_call_and_is_a_new_request(home):
    a = home({"text anna that I'm late": [ToolCall("send_message", {"contact": "Anna",
                                                                    "text": "I'm late"})],
              "what's the weather in Oslo": [ToolCall("get_weather", {"city": "Oslo"})]})
    assert a.say("text anna that I'm late") == "Send Anna the message: I'm late?"
    assert a.say("what's the weather in Oslo").startswith("In Oslo it is ")
    assert a.say("yes") == "Okay."  # the question was closed: a plain yes now
    assert a.store.messages() == []
    assert a.decoder.seen == ["text anna that I'm late", "what's the weather in Oslo", "yes"]


def test_a_late_yes_runs_nothing(home):
    a = home(CALL_MOM)
    a.say("call mom")
    a.clock.advance(ANSWER_WINDOW_NS + 1)
    assert a.say("yes") == "Okay."
    assert a.store.calls() == []


def test_the_rest_of_a_turn_runs_and_the_irreversible_part_waits(home):
    a = home({"turn off the kitchen lights and call dad": [
        ToolCall("set_light", {"room": "kitchen", "on": False}),
        ToolCall("call_contact", {"contact": "Dad"})]})
    reply = a.say("turn off the kitchen lights and call dad")
    assert reply == "Okay, the kitchen lights are off. Call Dad?"
    assert not a.store.get_light_state("kitchen")["on"] and a.store.calls() == []
    assert a.say("sure, go ahead") == "Calling Dad."
    assert [c["contact"] for c in a.store.calls()] == ["Dad"]


def test_irreversible_calls_are_never_run_ahead(home):
    a = home(CALL_MOM | {"weather in Oslo": [ToolCall("get_weather", {"city": "Oslo"})]},
             speculation=True)
    a.inbox.queue.extend([_partial("call mom"), _partial("weather in Oslo")])
    a.decision.tick(_tick())
    assert a.decision.speculation.ahead == [[ToolCall("get_weather", {"city": "Oslo"})]]


def test_the_cities_asked_about_are_announced_for_speech_recognition(home):
    a = home({"weather in Reykjavik": [ToolCall("get_weather", {"city": "Reykjavik"})],
              "time in Lima": [ToolCall("get_time", {"city": "Lima"})]})
    a.say("weather in Reykjavik")
    a.say("time in Lima")
    a.say("weather in Reykjavik")  # not new: not announced again
    said = a.outbox.events("vocabulary")
    assert [e["cities"] for e in said] == [["Reykjavík"], ["Reykjavík", "Lima"]]
    assert said[0]["source"] == "recent"


def test_an_unsure_city_is_asked_back_and_yes_means_it(home):
    a = home({"weather in Edinborough": [ToolCall("get_weather", {"city": "Edinborough"})],
              "time in Springfield": [ToolCall("get_time", {"city": "Springfield"})]})
    assert a.say("weather in Edinborough") == "Did you mean Edinburgh?"
    assert a.say("yes").startswith("In Edinburgh it is ")
    question = a.say("time in Springfield")
    assert question.startswith("Did you mean Springfield in ")
    picked = "Massachusetts" if "Massachusetts" in question else question.split(" in ")[-1][:-1]
    assert a.say(f"the one in {picked}").endswith(" in Springfield.")
    [*_, last] = a.outbox.events("turn")
    assert picked in last["turn"]["calls"][0]["arguments"]["city"]


@pytest.mark.parametrize(("said", "reply"), [
    ("thanks", "You're welcome."), ("Thank you very much!", "You're welcome."),
    ("never mind", "Okay, never mind."), ("stop", "Okay."), ("hello", "Hello! What can I do for you?"),
    ("goodbye", "Goodbye!"), ("order me a pizza", "Sorry, I can't help with that.")])
def test_turns_that_need_no_tool_get_a_fitting_reply(home, said, reply):
    assert home({}).say(said) == reply


def test_a_request_gets_the_day_it_names(home):
    a = home({"what's on my calendar tomorrow": [ToolCall("get_calendar", {})],
              "what's on my calendar today": [ToolCall("get_calendar", {"date": "today"})]})
    assert a.say("what's on my calendar tomorrow").startswith("You have ")
    [event] = a.outbox.events("turn")
    assert event["turn"]["calls"][0]["arguments"] == {"date": "2026-01-16"}
    assert "tomorrow" in event["reply"]
    a.say("what's on my calendar today")
    assert a.outbox.events("turn")[-1]["turn"]["calls"][0]["arguments"] == {}  # today: no date


# -- the parts --------------------------------------------------------------------------------
def test_social_words_are_classified_generally():
    assert social_intents("yes please") == {Intent.AFFIRM}
    assert social_intents("oh, thank you!") == {Intent.GRATITUDE}
    assert social_intents("no thanks") == {Intent.DENY, Intent.GRATITUDE}
    assert social_intents("turn off the lights") == frozenset()  # a request
    assert social_intents("stop the timer") == frozenset()
    assert is_yes("yes, call her") and is_yes("sure") and not is_yes("yes and no")
    assert not is_yes("okay turn off all the lights in the house")  # a new request
    assert is_no("cancel that") and is_no("no thanks") and not is_no("yes")
    assert social_reply("what time is it") is None


def test_a_choice_is_named_by_ordinal_or_by_its_words():
    waiting = Waiting((ToolCall("get_time", {"city": "Paris"}),),
                      (({"city": "Paris, France"}, {"city": "Paris, Texas"}),), 0, False)
    assert waiting.answer("the second one").run[0].arguments == {"city": "Paris, Texas"}
    assert waiting.answer("in France").run[0].arguments == {"city": "Paris, France"}
    assert waiting.answer("yes").run == ()  # which one?
    assert waiting.answer("turn on the lights").reply is None  # not an answer


def test_dates_are_settled_from_the_request():
    specs = voice_tool_specs()
    now = lambda: THURSDAY  # noqa: E731
    cal = ToolCall("get_calendar", {})
    assert date_calls([cal], "my calendar on Saturday", specs, now)[0].arguments == {
        "date": "2026-01-17"}
    assert date_calls([ToolCall("get_weather", {"city": "Oslo", "date": "Friday"})],
                      "weather in Oslo", specs, now)[0].arguments == {"city": "Oslo",
                                                                     "date": "2026-01-16"}
    guessed = ToolCall("get_calendar", {"date": "Monday"})  # not what was said
    assert date_calls([guessed], "what's on my calendar today", specs, now)[0].arguments == {}
    two = [ToolCall("get_weather", {"city": "Oslo"}),
           ToolCall("get_weather", {"city": "Rome", "date": "Friday"})]
    assert [c.arguments.get("date") for c in date_calls(
        two, "weather in Oslo today and in Rome on Friday", specs, now)] == [None, "2026-01-16"]
    light = ToolCall("set_light", {"room": "kitchen", "on": True})
    assert date_calls([light], "kitchen lights on tomorrow", specs, now) == [light]  # no date


def test_calls_that_do_the_same_score_the_same():
    from sim_envs.home.tools import canonical_call

    now = lambda: THURSDAY  # noqa: E731
    a = canonical_call({"name": "get_weather", "arguments": {"city": "Cracow", "date": "tomorrow"}},
                       now)
    b = canonical_call({"name": "get_weather", "arguments": {"city": "Kraków",
                                                             "date": "2026-01-16"}}, now)
    assert a == b == {"name": "get_weather", "arguments": {"city": "Kraków, Poland",
                                                           "date": "2026-01-16"}}
    assert canonical_call({"name": "get_calendar", "arguments": {"date": "today"}}, now) == {
        "name": "get_calendar", "arguments": {}}
    assert canonical_call({"name": "call_contact", "arguments": {"contact": "mum"}}, now)[
        "arguments"] == {"contact": "Mom"}
    assert canonical_call({"name": "get_time", "arguments": {"city": "Springfield"}}, now)[
        "arguments"] == {"city": "Springfield"}  # unresolved: as said
