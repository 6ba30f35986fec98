"""The voice demo's decision process: the deadline loop, the agent, speculation on partials.

Every tick (16 Hz by default) the loop drains the transcripts perception
published and never waits for anything; between ticks it waits for the next
one (and for finished turns) until just before the next release, so neither
waits for a tick:

- a *partial* transcript (with speculation on) is handed to the
  :class:`~demos.voice_preflight.PreflightDecoder`, which decodes it on its own
  thread; the calls it finds go to the speculative executor, which runs the
  read-only ones ahead (weather, time, search, home reads) and refuses writes;
- a *final* transcript is submitted to the agent: decode (served from the
  preflight when the text did not change), the calls as a parallel DAG through
  the speculative executor (a matching run in flight is joined, a finished one
  served), home tools over RPC to actuation, remote services here;
- a finished turn becomes a spoken reply (``SpeechOut`` to actuation) and a
  ``turn`` event with the latency breakdown, all on the monotonic clock shared
  by the processes of one host: end of speech -> final transcript -> first call
  -> first result (first committed action) -> all results.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections import defaultdict, deque
from typing import Any

from control.agent import Agent
from control.tools import Effect, ToolCall, ToolRegistry
from demos.voice_nodes import EVENTS, HOME_TOOLS, VoiceDemoConfig, event, fail, reply
from realtime import messages as m
from realtime.bus import Publisher, Subscriber
from realtime.bus_rpc import ReplyServer
from realtime.clock import MonotonicClock
from realtime.loop import DeadlineLoop, LoopOptions, TickInfo
from realtime.node import Node
from realtime.node_trace import hop, node_tracer, run_traced

log = logging.getLogger("rtagent.voice")

MIN_PARTIAL_WORDS = 2
WAIT_MARGIN_NS = 3_000_000  # between ticks, stop waiting this long before the next release
WAIT_SLICE_MS = 5.0  # while waiting for a transcript, look for finished turns this often


def build_registry(cfg: VoiceDemoConfig, home_call: Any) -> ToolRegistry:
    """Every voice tool: home tools through ``home_call(name, args)``, services here."""
    from audio.errors import AudioError
    from audio.services import ServiceOptions, Services
    from audio.voice_tools import voice_tool_specs

    services = Services(ServiceOptions(cfg.service_min_ms, cfg.service_max_ms))
    registry = ToolRegistry()
    for spec in voice_tool_specs():
        if spec.name in services.handlers:
            registry.register(spec, services.handlers[spec.name])
        elif spec.name in HOME_TOOLS:
            registry.register(spec, _home_tool(spec.name, home_call))
        else:
            raise AudioError(f"voice tool {spec.name!r} has no backend in the voice demo")
    return registry


def _home_tool(name: str, home_call: Any) -> Any:
    async def call(**arguments: Any) -> Any:
        return await home_call(name, arguments)
    call.__name__ = name
    return call


class CallLog:
    """What each real call got (speculative or not, when it ran), FIFO per call key:
    turns run one at a time, so a turn's calls are the oldest entries for their keys."""

    def __init__(self) -> None:
        self._entries: dict[str, deque[dict[str, Any]]] = defaultdict(lambda: deque(maxlen=64))

    def add(self, call: ToolCall, result: Any) -> None:
        self._entries[call.key()].append({
            "speculative": bool(result.speculative), "ok": bool(result.ok),
            "started_ns": int(result.started_ns), "ended_ns": int(result.ended_ns),
            "returned_ns": time.monotonic_ns()})

    def take(self, call: dict[str, Any], since_ns: int = 0) -> dict[str, Any] | None:
        """The oldest entry for ``call`` returned after ``since_ns`` (older ones, e.g. from
        an attempt that was replanned, are dropped)."""
        q = self._entries.get(ToolCall(call["name"], call["arguments"]).key())
        while q and q[0]["returned_ns"] < since_ns:
            q.popleft()
        return q.popleft() if q else None


def run_decision(cfg: VoiceDemoConfig, node: Node) -> None:
    from audio.errors import AudioError
    from audio.replies import NOT_UNDERSTOOD, reply_text
    from audio.voice_tools import voice_tool_specs
    from demos.voice_preflight import PreflightDecoder
    from models.decoder import DecodeContext, make_decoder
    from realtime.bus_async import AsyncRequestClient
    from speculation.executor import SpeculationOptions, SpeculativeExecutor
    from speculation.trace_hooks import TracedInvoke, TracedRegistry, TracedSpeculation

    tracer = node_tracer(node, "decision", cfg.trace_label)
    rd = node.run_dir
    transcripts = node.own(Subscriber(rd.endpoint("perception"), ("transcript", "barge_in"),
                                      types=(m.Transcript, m.PlaybackControl)))
    pub = node.own(Publisher(rd.endpoint("decision"), source="decision", options=EVENTS))
    ctl = node.own(ReplyServer(rd.endpoint("decision_ctl"), source="decision"))
    specs = voice_tool_specs()
    from models.artifacts import resolve_gguf
    from models.decoder import resolve_lora

    model = resolve_gguf(cfg.model)
    # lora "default": the shipped adapter for this model, if there is one (models.adapters)
    lora = resolve_lora(cfg.lora, model) if cfg.decoder == "simpletool" else None
    with node.beating():
        # Without preflights every decode is of a final transcript (Whisper idle).
        raw = make_decoder(cfg.decoder, model, lora_path=lora, n_threads=(
            cfg.decoder_threads if cfg.speculation else cfg.final_decoder_threads))
        threads = (cfg.decoder_threads or 1, cfg.final_decoder_threads)
        decoder: Any = (PreflightDecoder(raw, tracer=tracer, threads=threads) if cfg.speculation
                        else raw)
        node.own(decoder)
        # Evaluate the system prompt and tool list once now (prefix KV cache).
        with tracer.span("warm-up", "decoder", "decode"):
            raw.decode(DecodeContext.from_request("what's the weather in Oslo"), specs)

    def context(text: str, history: Any) -> DecodeContext:
        if history:
            return DecodeContext(tuple(history))
        return DecodeContext.from_request(text)

    clients: dict[str, Any] = {}

    async def home_call(name: str, arguments: dict[str, Any]) -> Any:
        got = await clients["home"].acall(m.ToolRequest(name=name, arguments_json=json.dumps(arguments)),
                                          timeout_ms=3000)
        if not got.ok:
            raise AudioError(got.error)
        return json.loads(got.value_json)

    registry = build_registry(cfg, home_call)
    # Traced: every tool run (direct or ahead), and how each of the agent's calls was served.
    tools = TracedRegistry(registry, tracer) if tracer.enabled else registry
    calls = CallLog()
    base: dict[str, Any] = {}

    async def invoke(call: ToolCall) -> Any:  # every real call, logged (see CallLog)
        result = await base["invoke"](call)
        calls.add(call, result)
        return result

    agent = Agent(decoder, registry, context, tools_fn=lambda: specs, invoke=invoke, tracer=tracer)
    node.report_turns(agent.progress)  # heartbeats carry the turn's progress
    clients["home"] = agent.run_on_loop(lambda: AsyncRequestClient(rd.endpoint("home"),
                                                                   source="decision"))
    spec = None
    if cfg.speculation:
        spec = agent.run_on_loop(lambda: SpeculativeExecutor(
            tools, None, SpeculationOptions(top_k=0, max_concurrency=6)))
    if tracer.enabled:
        base["invoke"] = (TracedSpeculation(spec, tracer).call if spec is not None
                          else TracedInvoke(tools, tracer).call)
    else:
        base["invoke"] = spec.call if spec is not None else registry.invoke
    node.own(clients["home"])
    node.own(agent)
    state: dict[str, Any] = {"partial": "", "hearing": False, "preflights": 0, "speculated": 0}
    pending: dict[int, dict[str, Any]] = {}  # turn id -> what we know of its utterance
    turns: list[dict[str, Any]] = []
    read_only = {s.name for s in specs if s.effect is Effect.READ}

    def speculate(found: list[ToolCall], complete: bool) -> None:  # on the preflight thread
        assert spec is not None
        ahead = [c for c in found if c.name in read_only]
        if ahead:
            state["speculated"] += len(ahead)
            tracer.instant("speculate", "speculation", calls=", ".join(c.name for c in ahead))
            asyncio.run_coroutine_threadsafe(spec.speculate(ahead), agent.loop)

    def on_transcript(msg: m.Transcript) -> None:
        text = msg.text.strip()
        if not msg.is_final:
            state["partial"], state["hearing"] = text, True
            if spec is not None and len(text.split()) >= MIN_PARTIAL_WORDS:
                state["preflights"] += decoder.preflight(context(text, []), specs, speculate)
            return
        state["partial"], state["hearing"] = "", False
        info = {"utterance": msg.utterance_id, "text": text, "speech_start_ns": msg.audio_start_ns,
                "end_of_speech_ns": msg.audio_end_ns, "final_ns": msg.t_ns,
                "received_ns": time.monotonic_ns()}
        if not text:
            turns.append({**info, "turn": None, "reply": NOT_UNDERSTOOD, "reply_id": 0,
                          "error": "no words recognised in the utterance"})
            pub.publish(m.SpeechOut(text=NOT_UNDERSTOOD, reply_id=0), topic="speech")
            event(pub, "turn", **turns[-1])
            return
        pending[agent.submit(text)] = info

    def finish(turn: Any) -> None:
        info = pending.pop(turn.id, {})
        tj = turn.to_json()
        for c, r in zip(tj["calls"], tj["results"], strict=False):
            r.update(calls.take(c, turn.submitted_ns) or {})
        text = reply_text(tj)
        out = {**info, "turn": tj, "reply": text, "reply_id": turn.id, "error": turn.error,
               "first_call_ns": turn.first_call_ns, "first_result_ns": turn.first_result_ns,
               "done_ns": turn.done_ns, "submitted_ns": turn.submitted_ns}
        turns.append(out)
        pub.publish(m.SpeechOut(text=text, reply_id=turn.id), topic="speech")
        event(pub, "turn", **out)

    def handle(req: m.ToolRequest) -> m.ToolReply:
        if req.name == "stats":
            out: dict[str, Any] = {"turns": len(turns), "busy": agent.busy or bool(pending),
                                   "decoder": {"name": cfg.decoder, "model": model.name,
                                               "lora": lora.name if lora else None},
                                   "loop": dataclasses.asdict(loop.summarize()),
                                   "preflights": state["preflights"],
                                   "speculated_calls": state["speculated"]}
            if spec is not None:
                out["speculation"] = spec.metrics.to_json()
                out["preflight"] = decoder.stats.to_json()
            return reply(out)
        return fail(f"unknown decision request {req.name!r}")

    def take(got: Any) -> None:
        if isinstance(got.message, m.Transcript):
            hop(tracer, got, "final transcript" if got.message.is_final else "partial")
            on_transcript(got.message)
        else:
            state["hearing"] = True

    def tick(info: TickInfo) -> None:
        for _ in range(64):
            got = transcripts.recv(0)
            if got is None:
                break
            take(got)
        for turn in agent.poll():
            finish(turn)
        ctl.serve_once(handle, timeout_ms=0)

    def between(info: TickInfo) -> None:
        node.beat()
        node.counters.update(ticks=info.seq, turns=len(turns))
        if info.seq % 4 == 0:
            busy = agent.busy or bool(pending)
            event(pub, "status", tick=info.seq, turns=len(turns), partial=state["partial"],
                  state="thinking" if busy else "hearing" if state["hearing"] else "listening",
                  misses=loop.summarize().deadline_misses)
        # Until just before the next release, wait for transcripts and finished turns:
        # each is handled when it comes instead of up to a period (62 ms) later.
        until = info.release_ns + info.period_ns - WAIT_MARGIN_NS
        while (left_ms := (until - time.monotonic_ns()) / 1e6) > 0:
            got = transcripts.recv(min(left_ms, WAIT_SLICE_MS))
            if got is not None:
                take(got)
            for turn in agent.poll():
                finish(turn)

    loop: DeadlineLoop[None] = DeadlineLoop(MonotonicClock(spin_us=200.0), LoopOptions(hz=cfg.hz),
                                            tick, between_ticks=between)
    node.beat("running", force=True)
    run_traced(loop, tracer, node)
