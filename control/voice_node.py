"""The voice demo's decision process: sockets, decoder, agent and executor around
:class:`~control.voice_decision.VoiceDecision`.

``python -m control.voice_node decision CONFIG_JSON`` runs it (a
:class:`VoiceDecisionConfig` as JSON) under
:class:`realtime.supervisor.Supervisor`. It subscribes to perception's
``transcript`` and ``barge_in`` topics, publishes ``speech`` (replies) and
``event`` (turns, status) on ``decision``, serves ``stats`` on
``decision_ctl``, and calls the home tools on actuation's ``home`` RPC; the
remote services run here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from control.agent import Agent
from control.tools import ToolCall, ToolRegistry, ToolResult, ToolSpec
from control.voice_confirm import ConfirmedCalls, ConfirmGate
from control.voice_dates import DatedDecoder
from control.voice_decision import CallLog, DecisionPorts, DecoderChoice, VoiceDecision, decode_context
from control.voice_preflight import PreflightDecoder
from models.decoder import DecodeContext
from models.resolve import ResolvedModel, resolve_model
from realtime import messages as m
from realtime.bus import Publisher, Subscriber
from realtime.bus_async import AsyncRequestClient
from realtime.bus_rpc import ReplyServer
from realtime.clock import MonotonicClock
from realtime.errors import ConfigError
from realtime.events import EVENT_OPTIONS
from realtime.loop import LoopOptions
from realtime.node import Node, node_main
from realtime.node_trace import node_tracer, run_traced
from realtime.trace import Tracer
from sim_envs.home.errors import HomeError
from sim_envs.home.services import ServiceOptions, Services
from sim_envs.home.tools import HOME_TOOLS, confirm_tools, voice_tool_specs
from sim_envs.home.weather import OPEN_METEO_URL
from speculation.executor import SpeculationOptions, SpeculativeExecutor
from speculation.trace_hooks import TracedInvoke, TracedRegistry, TracedSpeculation

__all__ = ["VoiceDecisionConfig", "build_registry", "run_decision"]

HomeCall = Callable[[str, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class VoiceDecisionConfig:
    """What the decision process needs; sent to it as JSON.

    hz: the deadline loop's rate. speculation: decode partials ahead and run read-only
        calls before the final transcript (off: decode the final only, call when called).
    decoder / model / lora: the decoder by name, the GGUF (None: the embedded default) and
        the LoRA adapter ("default": the shipped one for the model; None: none).
    decoder_threads: a decode's threads (None: llama.cpp's choice); with speculation on,
        ``final_decoder_threads`` for the decode of a final transcript (or the rest of
        the preflight it waits for): one, as waking a second thread sleeping at each
        barrier costs more than it computes in this VM (BF16, 20 tokens after 600
        cached: 60 ms on 1 thread, 115 on 2).
    service_min_ms / service_max_ms: the simulated latency range of the offline services.
    weather: "offline" (the deterministic stand-in) or "online" (Open-Meteo at
        ``weather_url``; the stand-in while it cannot be reached, said once in the log).
    trace_label: with tracing on, the process is named "LABEL/decision".
    """

    hz: float = 16.0
    speculation: bool = True
    decoder: str = "simpletool"
    model: str | None = None
    lora: str | None = "default"
    decoder_threads: int | None = 1
    final_decoder_threads: int = 1
    service_min_ms: float = 150.0
    service_max_ms: float = 400.0
    weather: str = "offline"
    weather_url: str = OPEN_METEO_URL
    trace_label: str = ""

    def __post_init__(self) -> None:
        if not self.decoder:
            raise ConfigError("decoder: expected a decoder name like 'simpletool', got ''")
        if not (self.decoder_threads is None or 1 <= self.decoder_threads <= 64):
            raise ConfigError(f"decoder_threads: expected 1..64 threads or None, got "
                              f"{self.decoder_threads!r}")
        if not isinstance(self.final_decoder_threads, int) or not 1 <= self.final_decoder_threads <= 64:
            raise ConfigError(f"final_decoder_threads: expected 1..64 threads, got "
                              f"{self.final_decoder_threads!r}")
        self.loop_options()  # they check their own ranges ("expected X, got Y")
        self.service_options()

    def loop_options(self) -> LoopOptions:
        return LoopOptions(hz=self.hz)

    def service_options(self) -> ServiceOptions:
        return ServiceOptions(self.service_min_ms, self.service_max_ms, weather=self.weather,
                              weather_url=self.weather_url)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> VoiceDecisionConfig:
        return cls(**json.loads(text))


class HomeRpc:
    """The home tools over actuation's ``home`` RPC (the client is made on the agent's loop)."""

    def __init__(self) -> None:
        self.client: AsyncRequestClient | None = None

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        assert self.client is not None, "HomeRpc.client is set before any turn runs"
        got = await self.client.acall(m.ToolRequest(name=name, arguments_json=json.dumps(arguments)),
                                      timeout_ms=3000)
        if not got.ok:
            raise HomeError(got.error)
        return json.loads(got.value_json)


def build_registry(cfg: VoiceDecisionConfig, home_call: HomeCall,
                   services: Services | None = None) -> ToolRegistry:
    """Every voice tool: home tools through ``home_call(name, args)``, services here."""
    services = services or Services(cfg.service_options())
    registry = ToolRegistry()
    for spec in voice_tool_specs():
        if spec.name in services.handlers:
            registry.register(spec, services.handlers[spec.name])
        elif spec.name in HOME_TOOLS:
            registry.register(spec, _home_tool(spec.name, home_call))
        else:
            raise HomeError(f"voice tool {spec.name!r} has no backend in the voice demo")
    return registry


def _home_tool(name: str, home_call: HomeCall) -> Callable[..., Awaitable[Any]]:
    async def call(**arguments: Any) -> Any:
        return await home_call(name, arguments)
    call.__name__ = name
    return call


def load_decoder(cfg: VoiceDecisionConfig, model: ResolvedModel, tracer: Tracer) -> Any:
    """The decoder on ``model``, in a :class:`PreflightDecoder` with speculation on."""
    from models.factory import make_decoder

    # Without preflights every decode is of a final transcript (Whisper idle).
    raw = make_decoder(cfg.decoder, model, n_threads=(
        cfg.decoder_threads if cfg.speculation else cfg.final_decoder_threads))
    threads = (cfg.decoder_threads or 1, cfg.final_decoder_threads)
    return PreflightDecoder(raw, tracer=tracer, threads=threads) if cfg.speculation else raw


def warm_up(decoder: Any, specs: Sequence[ToolSpec], tracer: Tracer) -> None:
    """Evaluate the system prompt and tool list once now (prefix KV cache)."""
    with tracer.span("warm-up", "decoder", "decode"):
        decoder.decode(DecodeContext.from_request("what's the weather in Oslo"), specs)


class LoggedInvoke:
    """Every real call of the agent, through ``inner`` (set once the executor exists),
    logged in ``calls`` (see :class:`~control.voice_decision.CallLog`)."""

    def __init__(self, calls: CallLog) -> None:
        self.calls = calls
        self.inner: Callable[[ToolCall], Awaitable[ToolResult]] | None = None

    async def __call__(self, call: ToolCall) -> ToolResult:
        assert self.inner is not None, "LoggedInvoke.inner is set before any turn runs"
        result = await self.inner(call)
        self.calls.add(call, result)
        return result


class LoopSpeculation:
    """The speculative executor as the preflight thread sees it: ``speculate`` schedules
    the calls on the agent's event loop."""

    def __init__(self, executor: SpeculativeExecutor, loop: asyncio.AbstractEventLoop) -> None:
        self.executor, self.loop = executor, loop

    @property
    def metrics(self) -> Any:
        return self.executor.metrics

    def speculate(self, calls: list[ToolCall]) -> None:
        asyncio.run_coroutine_threadsafe(self.executor.speculate(calls), self.loop)


def run_decision(cfg: VoiceDecisionConfig, node: Node) -> None:
    tracer = node_tracer(node, "decision", cfg.trace_label)
    rd = node.run_dir
    ports = DecisionPorts(
        transcripts=node.own(Subscriber(rd.endpoint("perception"), ("transcript", "barge_in"),
                                        types=(m.Transcript, m.PlaybackControl))),
        events=node.own(Publisher(rd.endpoint("decision"), source="decision", options=EVENT_OPTIONS)),
        control=node.own(ReplyServer(rd.endpoint("decision_ctl"), source="decision")))
    specs = voice_tool_specs()
    services = Services(cfg.service_options())
    with node.beating():
        # lora "default": the model's shipped adapter, if any; the JSON baseline runs the
        # base model alone. Resolving may make the run-time file (seconds).
        model = resolve_model(cfg.model, cfg.lora if cfg.decoder == "simpletool" else None)
        decoder = node.own(DatedDecoder(load_decoder(cfg, model, tracer)))
        warm_up(decoder, specs, tracer)  # (a PreflightDecoder's decode is its inner one's)
        services.warm_up()  # the gazetteer and the date parser

    home = HomeRpc()
    registry = build_registry(cfg, home.call, services)
    # Traced: every tool run (direct or ahead), and how each of the agent's calls was served.
    tools = TracedRegistry(registry, tracer) if tracer.enabled else registry
    clock = MonotonicClock(spin_us=200.0)
    calls = CallLog(clock)
    invoke = LoggedInvoke(calls)  # the agent's calls: confirm tools held at the gate
    gate = ConfirmGate(confirm_tools())
    answered_invoke = LoggedInvoke(calls)  # the calls the user said yes to: past the gate
    agent = Agent(decoder, registry, decode_context, tools_fn=lambda: specs, invoke=invoke,
                  tracer=tracer)
    node.report_turns(agent.progress)  # heartbeats carry the turn's progress
    home.client = agent.run_on_loop(lambda: AsyncRequestClient(rd.endpoint("home"),
                                                               source="decision"))
    spec = None
    if cfg.speculation:
        spec = agent.run_on_loop(lambda: SpeculativeExecutor(
            tools, None, SpeculationOptions(top_k=0, max_concurrency=6)))
    if tracer.enabled:
        gate.inner = (TracedSpeculation(spec, tracer).call if spec is not None
                      else TracedInvoke(tools, tracer).call)
    else:
        gate.inner = spec.call if spec is not None else registry.invoke
    invoke.inner, answered_invoke.inner = gate, gate.inner
    node.own(home.client)
    node.own(agent)
    decision = VoiceDecision(
        cfg.loop_options(), clock=clock, agent=agent, specs=specs, ports=ports, calls=calls,
        decoder=DecoderChoice(cfg.decoder, model.gguf.name,
                              model.adapter.name if model.adapter else None),
        preflight=decoder if spec is not None else None,
        speculation=LoopSpeculation(spec, agent.loop) if spec is not None else None,
        heart=node, tracer=tracer, answered=ConfirmedCalls(answered_invoke, agent.loop),
        confirm=gate.confirm)
    node.beat("running", force=True)
    run_traced(decision.loop, tracer, node)


def main(argv: list[str] | None = None) -> int:
    return node_main("control.voice_node", {"decision": run_decision}, VoiceDecisionConfig.from_json,
                     argv)


if __name__ == "__main__":
    raise SystemExit(main())
