"""The voice demo's decision: the deadline loop, the agent, speculation on partials.

Every tick (16 Hz by default) :class:`VoiceDecision` drains the transcripts
perception published and never waits for anything; between ticks it waits for
the next one (and for finished turns) until just before the next release, so
neither waits for a tick:

- a *partial* transcript (with speculation on) is handed to the
  :class:`~control.voice_preflight.PreflightDecoder`, which decodes it on its own
  thread; the calls it finds go to the speculative executor, which runs the
  read-only ones ahead (weather, time, search, home reads) and refuses writes;
- a *final* transcript is submitted to the agent: decode (served from the
  preflight when the text did not change), the calls as a parallel DAG through
  the speculative executor (a matching run in flight is joined, a finished one
  served), home tools over RPC to actuation, remote services here;
- a finished turn becomes a spoken reply (``SpeechOut`` to actuation) and a
  ``turn`` event with the latency breakdown, all on the monotonic clock shared
  by the processes of one host: end of speech -> final transcript -> first call
  -> first result (first committed action) -> all results;
- a turn whose reply asks back (an irreversible call held for a yes, "Call
  Mom?"; a lookup unsure of its argument, "Did you mean Reykjavik?") leaves
  its calls waiting (:mod:`control.voice_confirm`): the next final transcript,
  within :data:`ANSWER_WINDOW_NS`, is read as the answer first — yes runs them,
  no drops them, anything else drops them and is a new request.

The process around it (sockets, decoder, agent, executor) and its config are
:mod:`control.voice_node`.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from control.agent import Turn
from control.tools import Effect, ToolCall, ToolSpec
from control.voice_confirm import Waiting, waiting_calls
from models.decoder import DecodeContext
from realtime import messages as m
from realtime.bus import Latest, Publisher, ReplyServer, Subscriber
from realtime.bus_rpc import error_reply, ok_reply
from realtime.clock import Clock
from realtime.events import publish_event
from realtime.loop import DeadlineLoop, LoopOptions, TickInfo
from realtime.node_trace import hop
from realtime.trace import Tracer
from sim_envs.home.replies import NOT_UNDERSTOOD, reply_text

__all__ = ["CallLog", "DecisionPorts", "DecoderChoice", "VoiceDecision", "decode_context"]

MIN_PARTIAL_WORDS = 2  # a shorter partial is too little to decode ahead
MAX_DRAIN = 64  # transcripts handled per tick at most
STATUS_EVERY_TICKS = 4
WAIT_MARGIN_NS = 3_000_000  # between ticks, stop waiting this long before the next release
WAIT_SLICE_MS = 5.0  # while waiting for a transcript, look for finished turns this often
ANSWER_WINDOW_NS = 30_000_000_000  # a question asked longer ago than this is no longer open
RECENT_CITIES = 8  # the cities last asked about, announced for Whisper's prompt


def decode_context(text: str, history: Sequence[Any]) -> DecodeContext:
    """What the decoder sees: the request alone, or the turn's history so far (replans)."""
    if history:
        return DecodeContext(tuple(history))
    return DecodeContext.from_request(text)


@dataclass(frozen=True)
class CallRecord:
    """How one real call was served (merged into the turn's result of that call)."""

    speculative: bool
    ok: bool
    started_ns: int
    ended_ns: int
    returned_ns: int


class CallLog:
    """What each real call got (speculative or not, when it ran), FIFO per call key:
    turns run one at a time, so a turn's calls are the oldest entries for their keys."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[str, deque[CallRecord]] = defaultdict(lambda: deque(maxlen=64))

    def add(self, call: ToolCall, result: Any) -> None:
        self._entries[call.key()].append(CallRecord(
            bool(result.speculative), bool(result.ok), int(result.started_ns),
            int(result.ended_ns), self._clock.now_ns()))

    def take(self, call: dict[str, Any], since_ns: int = 0) -> CallRecord | None:
        """The oldest entry for ``call`` (a call's JSON) returned after ``since_ns`` (older
        ones, e.g. from an attempt that was replanned, are dropped)."""
        q = self._entries.get(ToolCall(call["name"], call["arguments"]).key())
        while q and q[0].returned_ns < since_ns:
            q.popleft()
        return q.popleft() if q else None


@dataclass(frozen=True)
class Utterance:
    """What the decision knows of the utterance a final transcript ended."""

    utterance: int
    text: str
    speech_start_ns: int
    end_of_speech_ns: int
    final_ns: int
    received_ns: int


class AnsweredCalls(Protocol):
    """Runs calls the user said yes to (:class:`control.voice_confirm.ConfirmedCalls`)."""

    @property
    def busy(self) -> bool: ...

    def submit(self, text: str, calls: Sequence[ToolCall]) -> int: ...

    def poll(self) -> list[Turn]: ...


class TurnAgent(Protocol):
    """The agent as the decision uses it (:class:`control.agent.Agent`)."""

    @property
    def busy(self) -> bool: ...

    def submit(self, text: str) -> int: ...

    def poll(self) -> list[Turn]: ...


class Heart(Protocol):
    """Heartbeats and counters (:class:`realtime.node.Node`)."""

    counters: dict[str, int]

    def beat(self) -> bool: ...


@dataclass(frozen=True)
class DecisionPorts:
    """The decision's sockets: transcripts and barge-ins from perception in, replies and
    events out, control requests (``stats``) served."""

    transcripts: Subscriber
    events: Publisher
    control: ReplyServer


@dataclass(frozen=True)
class DecoderChoice:
    """The decoder and files loaded (``stats`` reports them)."""

    name: str
    model: str
    lora: str | None


class VoiceDecision:
    """Transcripts in, the agent's turns out as replies (see the module docstring).

    ``preflight`` (a :class:`~control.voice_preflight.PreflightDecoder`) and
    ``speculation`` (``speculate(calls)`` callable from any thread, and ``metrics``) are
    given together when speculation is on; ``heart`` (the node) beats between ticks.
    ``answered`` runs the calls a question waited on once the user says yes; the
    ``confirm`` tools (held by the agent's invoke chain) are never run ahead.
    """

    def __init__(self, loop_options: LoopOptions, *, clock: Clock, agent: TurnAgent,
                 specs: Sequence[ToolSpec], ports: DecisionPorts, decoder: DecoderChoice,
                 calls: CallLog, preflight: Any = None, speculation: Any = None,
                 heart: Heart | None = None, tracer: Tracer | None = None,
                 answered: AnsweredCalls | None = None,
                 confirm: frozenset[str] = frozenset()) -> None:
        self.clock, self.agent, self.ports = clock, agent, ports
        self.specs = list(specs)
        self.decoder, self.calls = decoder, calls
        self.preflight, self.speculation, self.heart = preflight, speculation, heart
        self.answered = answered
        self.tracer = tracer or Tracer("decision", enabled=False)
        self.read_only = {s.name for s in self.specs if s.effect is Effect.READ} - confirm
        self.waiting: Waiting | None = None  # calls the last reply asked the user about
        self.cities: deque[str] = deque(maxlen=RECENT_CITIES)  # asked about lately (Whisper)
        self.partial = ""  # the latest partial transcript of the utterance being heard
        self.hearing = False  # speech started (barge-in) or partials came, no final yet
        self.preflights = 0  # partials handed to the preflight decoder
        self.speculated = 0  # read-only calls handed to the speculative executor
        self.turns_done = 0  # turns answered (with "not understood" ones)
        self.pending: dict[int, Utterance] = {}  # agent turn id -> its utterance
        self.loop: DeadlineLoop[None] = DeadlineLoop(clock, loop_options, self.tick,
                                                     between_ticks=self.between_ticks)

    @property
    def busy(self) -> bool:
        return (self.agent.busy or bool(self.pending)
                or (self.answered is not None and self.answered.busy))

    # -- each tick ----------------------------------------------------------------------------
    def tick(self, info: TickInfo) -> None:
        for _ in range(MAX_DRAIN):
            got = self.ports.transcripts.recv(0)
            if got is None:
                break
            self.take(got)
        self.finish_turns()
        self.ports.control.serve_once(self.handle_control, timeout_ms=0)

    def between_ticks(self, info: TickInfo) -> None:
        if self.heart is not None:
            self.heart.beat()
            self.heart.counters.update(ticks=info.seq, turns=self.turns_done)
        if info.seq % STATUS_EVERY_TICKS == 0:
            state = "thinking" if self.busy else "hearing" if self.hearing else "listening"
            publish_event(self.ports.events, "status", tick=info.seq, turns=self.turns_done,
                          partial=self.partial, state=state,
                          misses=self.loop.summarize().deadline_misses)
        # Until just before the next release, wait for transcripts and finished turns:
        # each is handled when it comes instead of up to a period (62 ms) later.
        until = info.release_ns + info.period_ns - WAIT_MARGIN_NS
        while (left_ms := (until - self.clock.now_ns()) / 1e6) > 0:
            got = self.ports.transcripts.recv(min(left_ms, WAIT_SLICE_MS))
            if got is not None:
                self.take(got)
            self.finish_turns()

    def take(self, got: Latest[m.Message]) -> None:
        if isinstance(got.message, m.Transcript):
            hop(self.tracer, got, "final transcript" if got.message.is_final else "partial")
            self.on_transcript(got.message)
        else:  # barge-in: the user started speaking
            self.hearing = True

    # -- transcripts --------------------------------------------------------------------------
    def on_transcript(self, msg: m.Transcript) -> None:
        text = msg.text.strip()
        if not msg.is_final:
            self.partial, self.hearing = text, True
            if self.preflight is not None and len(text.split()) >= MIN_PARTIAL_WORDS:
                self.preflights += self.preflight.preflight(decode_context(text, []), self.specs,
                                                            self.speculate)
            return
        self.partial, self.hearing = "", False
        heard = Utterance(msg.utterance_id, text, msg.audio_start_ns, msg.audio_end_ns, msg.t_ns,
                          self.clock.now_ns())
        if not text:
            self._answer({**asdict(heard), "turn": None, "reply": NOT_UNDERSTOOD, "reply_id": 0,
                          "error": "no words recognised in the utterance"})
            return
        if self.waiting is not None and self._answers(self.waiting, heard):
            return
        self.pending[self.agent.submit(text)] = heard

    def _answers(self, waiting: Waiting, heard: Utterance) -> bool:
        """Whether ``heard`` answered the open question (then it is dealt with); the
        question is closed either way."""
        self.waiting = None
        if heard.received_ns - waiting.asked_ns > ANSWER_WINDOW_NS:
            return False
        answer = waiting.answer(heard.text)
        if answer.reply is not None:
            self._answer({**asdict(heard), "turn": None, "reply": answer.reply, "reply_id": 0,
                          "error": None})
            return True
        if answer.run and self.answered is not None:
            self.tracer.instant("answered", "decision", calls=", ".join(c.name for c in answer.run))
            self.pending[self.answered.submit(heard.text, answer.run)] = heard
            return True
        return False

    def speculate(self, found: list[ToolCall], complete: bool) -> None:
        """The preflight's calls (on its thread): the read-only ones run ahead."""
        ahead = [c for c in found if c.name in self.read_only]
        if ahead and self.speculation is not None:
            self.speculated += len(ahead)
            self.tracer.instant("speculate", "speculation", calls=", ".join(c.name for c in ahead))
            self.speculation.speculate(ahead)

    # -- turns --------------------------------------------------------------------------------
    def finish_turns(self) -> None:
        for turn in self.agent.poll():
            self.finish(turn)
        if self.answered is not None:
            for turn in self.answered.poll():
                self.finish(turn)

    def finish(self, turn: Turn) -> None:
        heard = self.pending.pop(turn.id, None)
        tj = turn.to_json()
        for c, r in zip(tj["calls"], tj["results"], strict=False):
            served = self.calls.take(c, turn.submitted_ns)
            if served is not None:
                r.update(asdict(served))
        self.waiting = waiting_calls(tj, self.clock.now_ns())
        self._note_cities(tj)
        held = [r for r in tj["results"] if isinstance(r.get("value"), dict) and r["value"].get("held")]
        # A call held for a yes is no action: a turn of held calls only has none.
        acted = turn.first_result_ns if len(held) < len(tj["results"]) else 0
        self._answer({**(asdict(heard) if heard else {}), "turn": tj, "reply": reply_text(tj),
                      "reply_id": turn.id, "error": turn.error, "held": len(held),
                      "first_call_ns": turn.first_call_ns, "first_result_ns": acted,
                      "done_ns": turn.done_ns, "submitted_ns": turn.submitted_ns})

    def _note_cities(self, tj: dict[str, Any]) -> None:
        """Announce the cities a turn found (``vocabulary`` event), if any is new."""
        new = False
        for r in tj["results"]:
            v = r.get("value")
            if r.get("ok") and isinstance(v, dict) and v.get("city") and not v.get("question"):
                city = str(v["city"])
                new |= city not in self.cities
                if city in self.cities:
                    self.cities.remove(city)
                self.cities.append(city)
        if new:
            publish_event(self.ports.events, "vocabulary", source="recent", cities=list(self.cities))

    def _answer(self, turn_event: dict[str, Any]) -> None:
        """Speak the reply, then report the turn."""
        self.turns_done += 1
        self.ports.events.publish(m.SpeechOut(text=turn_event["reply"],
                                              reply_id=turn_event["reply_id"]), topic="speech")
        publish_event(self.ports.events, "turn", **turn_event)

    # -- control requests ---------------------------------------------------------------------
    def handle_control(self, req: m.ToolRequest) -> m.ToolReply:
        if req.name != "stats":
            return error_reply(f"unknown decision request {req.name!r}; expected 'stats'")
        return ok_reply(self.stats())

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"turns": self.turns_done, "busy": self.busy,
                               "decoder": asdict(self.decoder),
                               "loop": dataclasses.asdict(self.loop.summarize()),
                               "preflights": self.preflights, "speculated_calls": self.speculated}
        if self.speculation is not None:
            out["speculation"] = self.speculation.metrics.to_json()
        if self.preflight is not None:
            out["preflight"] = self.preflight.stats.to_json()
        return out
