"""The voice demo's three processes, linked by ZeroMQ in the run directory.

::

  perception ── PUB "perception": transcripts (partial, final), vad events,
  │              barge_in (PlaybackControl on speech start), events
  │   audio: a microphone through PyAudio, or a WAV stream paced in real time
  ▼
  decision ── PUB "decision": speech (SpeechOut replies), turn and status events
  │   deadline loop + agent (decoder, speculative executor, parallel DAG calls)
  │   home tools ── REQ "home" ──► actuation
  ▼
  actuation: the home store (SQLite; device actions), TTS playback with barge-in
             ── PUB "actuation": playback events

Each process is ``python -m demos.voice_nodes NAME CONFIG_JSON`` under
:class:`realtime.supervisor.Supervisor`. Perception waits for a ``start``
request on ``perception_ctl`` (sent once every process is up), so no
transcript is published before its subscribers are connected.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from realtime import messages as m
from realtime.bus import BusOptions, Publisher, Subscriber
from realtime.bus_rpc import ReplyServer
from realtime.node import Node, node_main
from realtime.node_trace import node_tracer
from realtime.trace import Tracer

log = logging.getLogger("rtagent.voice")

EVENTS = BusOptions(sndhwm=4096)
HOME_TOOLS = ("get_light_state", "list_timers", "get_shopping_list", "get_calendar", "set_light",
              "set_thermostat", "set_timer", "add_to_shopping_list", "send_message")

# Whisper's "previous text": the home's vocabulary (rooms, devices, contacts, services)
# biases tiny.en toward it (WER on the request set 16.5% -> 13.2%, measured with espeak-ng).
STT_PROMPT = ("Turn the kitchen, living room, bedroom, bathroom, office or hallway lights on or "
              "off. Set the thermostat to 21 degrees. Set a timer for 10 minutes. Add milk to the "
              "shopping list. What is the weather in London? Send a message to Anna.")


@dataclass(frozen=True)
class VoiceDemoConfig:
    """Everything the three processes need; sent to each as JSON.

    stream_wav: a WAV file perception plays in real time (None: capture ``device``).
    device: PyAudio input (index or name); ``max_duration_s`` limits the capture;
        ``pace`` releases captured audio in real time (a virtual device has no clock).
    out_device / out_wav: where replies are spoken (neither: played to nowhere, paced).
    decoder_threads / stt_threads: one core each by default; on a 2-core machine two
        OpenMP pools of 2 threads stall each other at every barrier (decodes 2-9x slower).
    final_decoder_threads: the decode of a final transcript (or the rest of the preflight
        it waits for) runs on this many threads. One: with the threads sleeping at each
        barrier (the demos' wait policy) waking the second costs more than it computes
        in this VM (BF16, 20 tokens after 600 cached: 60 ms on 1 thread, 115 on 2).
    """

    stream_wav: str | None = None
    device: str | None = None
    max_duration_s: float | None = None
    pace: bool = True
    out_device: str | None = None
    out_wav: str | None = None
    hz: float = 16.0
    speculation: bool = True
    decoder: str = "simpletool"
    model: str | None = None
    lora: str | None = "default"
    decoder_threads: int | None = 1
    final_decoder_threads: int = 1
    home_db: str | None = None
    silence_ms: float = 400.0
    early_silence_ms: float = 200.0  # a pause this long ends a request that sounds finished
    partial_interval_ms: float = 250.0
    stt_threads: int = 1
    stt_prompt: str | None = STT_PROMPT
    service_min_ms: float = 150.0
    service_max_ms: float = 400.0
    voice: str = "en-us"
    words_per_min: int = 175
    trace_label: str = ""  # with tracing on: process names become "LABEL/perception", ...
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> VoiceDemoConfig:
        return cls(**json.loads(text))



def reply(value: Any) -> m.ToolReply:
    return m.ToolReply(ok=True, value_json=json.dumps(value))


def fail(error: str) -> m.ToolReply:
    return m.ToolReply(ok=False, error=error)


def event(pub: Publisher, logger: str, level: str = "info", **data: Any) -> None:
    pub.publish(m.LogEvent(logger=logger, level=level, text=json.dumps(data)),  # type: ignore[arg-type]
                topic="event")


# --------------------------------------------------------------------------- perception
def _open_source(cfg: VoiceDemoConfig) -> Any:
    from audio.sources import PacedSource, open_source

    if cfg.stream_wav is not None:
        return open_source("paced_wav", path=cfg.stream_wav)
    device: int | str | None = cfg.device
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    src = open_source("pyaudio", device=device, max_duration_s=cfg.max_duration_s)
    return PacedSource(src) if cfg.pace else src


def run_perception(cfg: VoiceDemoConfig, node: Node) -> None:
    """Audio -> Silero VAD -> streaming Whisper: partial and final transcripts."""
    from audio.errors import AudioError
    from audio.streaming import StreamingOptions, StreamingTranscriber
    from audio.stt import SttOptions, Transcript, WhisperStt
    from audio.vad import SpeechEnd, SpeechStart, StreamingVad, VadOptions

    tracer = node_tracer(node, "perception", cfg.trace_label)
    rd = node.run_dir
    pub = node.own(Publisher(rd.endpoint("perception"), source="perception", options=EVENTS))
    ctl = node.own(ReplyServer(rd.endpoint("perception_ctl"), source="perception"))
    with node.beating():
        stt = WhisperStt(SttOptions(cpu_threads=cfg.stt_threads, initial_prompt=cfg.stt_prompt))
        vad = StreamingVad(VadOptions(silence_ms=cfg.silence_ms))
    st = StreamingTranscriber(stt, vad, StreamingOptions(partial_interval_ms=cfg.partial_interval_ms,
                                                         early_silence_ms=cfg.early_silence_ms))
    node.own(st)
    started = {"go": False}

    def handle(req: m.ToolRequest) -> m.ToolReply:
        if req.name == "start":
            started["go"] = True
            return reply({"started": True})
        return fail(f"unknown perception request {req.name!r}")

    node.beat("running", force=True)
    while not node.stopping and not started["go"]:
        ctl.serve_once(handle, timeout_ms=50)
        node.beat()
    if node.stopping:
        return
    try:
        source = node.own(_open_source(cfg))
    except AudioError as exc:  # missing device, bad file: say so, stay up, never crash-loop
        event(pub, "input", "error", error=str(exc))
        while not node.stopping:
            node.wait(0.2)
            node.beat()
        return
    starts: list[int] = []
    ends: list[SpeechEnd] = []
    first = True

    def publish(ev: Any) -> None:
        if isinstance(ev, SpeechStart):
            starts.append(ev.t_ns)
            pub.publish(m.PlaybackControl(action="stop", reason="barge-in"), topic="barge_in")
            event(pub, "vad", kind="start", utterance=len(starts) - 1, t_ns=ev.t_ns,
                  detected_ns=ev.detected_t_ns)
        elif isinstance(ev, SpeechEnd):
            ends.append(ev)
            event(pub, "vad", kind="end", utterance=len(ends) - 1, end_ns=ev.end_t_ns,
                  detected_ns=ev.detected_t_ns, forced=ev.forced, early=ev.early)
            trace_speech(tracer, starts, ev)
        elif isinstance(ev, Transcript):
            u = ev.utterance
            end_ns = ends[u].end_t_ns if ev.final and u < len(ends) else ev.end_t_ns
            trace_transcript(tracer, ev)
            pub.publish(m.Transcript(text=ev.text, is_final=ev.final, utterance_id=u,
                                     audio_start_ns=starts[u] if u < len(starts) else 0,
                                     audio_end_ns=end_ns, t_ns=ev.ready_t_ns or time.monotonic_ns()),
                        topic="transcript")

    try:
        for chunk in source:
            if first:
                event(pub, "source", kind="start", t_ns=chunk.t_ns)
                first = False
            for ev in st.feed(chunk):
                publish(ev)
            node.beat()
            ctl.serve_once(handle, timeout_ms=0)
            if node.stopping:
                return
        for ev in st.finish():
            publish(ev)
    except AudioError as exc:
        event(pub, "input", "error", error=str(exc))
    event(pub, "source", kind="end", t_ns=time.monotonic_ns(), utterances=len(ends))
    while not node.stopping:
        ctl.serve_once(handle, timeout_ms=100)
        node.beat()


def trace_speech(tracer: Tracer, starts: list[int], end: Any) -> None:
    """An utterance as the VAD heard it (track ``vad``): speech, then the silence
    until the endpoint decision."""
    if tracer.enabled and starts:
        u = len(starts) - 1
        tracer.complete(f"speech {u}", "vad", starts[-1], end.end_t_ns, "audio", utterance=u)
        tracer.complete("silence to endpoint", "vad", end.end_t_ns, end.detected_t_ns, "audio",
                        utterance=u, forced=end.forced, early=end.early)


def trace_transcript(tracer: Tracer, t: Any) -> None:
    """One Whisper run (track ``stt``): its compute time, ending when the text was ready."""
    if tracer.enabled and t.ready_t_ns:
        start = t.ready_t_ns - round(t.compute_ms * 1e6)
        tracer.complete("final" if t.final else "partial", "stt", start, t.ready_t_ns, "stt",
                        utterance=t.utterance, audio_ms=round(t.audio_ms), text=t.text[:80],
                        heard_all=t.heard_all)


# --------------------------------------------------------------------------- actuation
class _NullSink:
    def write(self, pcm: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def _sink(cfg: VoiceDemoConfig, rate_hz: int) -> Any:
    from audio.tts import PyAudioSink, WavSink

    if cfg.out_wav:
        return WavSink(cfg.out_wav, rate_hz)
    if cfg.out_device is not None:
        dev: int | str = int(cfg.out_device) if cfg.out_device.isdigit() else cfg.out_device
        return PyAudioSink(dev, rate_hz)
    return _NullSink()


def run_actuation(cfg: VoiceDemoConfig, node: Node) -> None:
    """The home store's device actions over RPC; replies spoken, stopped on barge-in."""
    from audio.tts import EspeakTts, SpeechPlayer, TtsOptions
    from sim_envs.home.store import HomeStore

    tracer = node_tracer(node, "actuation", cfg.trace_label)
    rd = node.run_dir
    pub = node.own(Publisher(rd.endpoint("actuation"), source="actuation", options=EVENTS))
    home = node.own(ReplyServer(rd.endpoint("home"), source="actuation"))
    speech = node.own(Subscriber(rd.endpoint("decision"), ("speech",), types=(m.SpeechOut,)))
    barge = node.own(Subscriber(rd.endpoint("perception"), ("barge_in",),
                                types=(m.PlaybackControl,)))
    store = HomeStore(cfg.home_db or ":memory:")
    node.own(store)
    tts = EspeakTts(TtsOptions(voice=cfg.voice, words_per_min=cfg.words_per_min))
    player = SpeechPlayer(tts, _sink(cfg, tts.rate_hz))
    node.own(player)
    current: dict[str, Any] = {"reply": None, "start_ns": 0, "thread": None}

    def handle(req: m.ToolRequest) -> m.ToolReply:
        args = json.loads(req.arguments_json or "{}")
        if req.name == "snapshot":
            return reply(store.snapshot())
        if req.name not in HOME_TOOLS:
            return fail(f"unknown home request {req.name!r}; expected one of {', '.join(HOME_TOOLS)}")
        try:
            with tracer.span(req.name, "home", "tool"):
                return reply(getattr(store, req.name)(**args))
        except (ValueError, TypeError) as exc:  # a bad room or contact: the agent hears why
            return fail(str(exc))

    def finished() -> None:
        p, rep = player.last, current["reply"]
        if rep is None or p is None:
            return
        first_audio_ns = current["start_ns"] + int(p.first_audio_ms * 1e6)
        event(pub, "playback", reply_id=rep.reply_id, text=rep.text, stopped=p.stopped,
              first_audio_ns=first_audio_ns, played_ms=round(p.played_ms, 1))
        if tracer.enabled:
            tracer.complete("synthesize", "speech", current["start_ns"], first_audio_ns, "tts",
                            reply=rep.reply_id)
            tracer.complete("speak", "speech", first_audio_ns,
                            first_audio_ns + round(p.played_ms * 1e6), "tts", reply=rep.reply_id,
                            stopped=p.stopped, text=rep.text[:80])
        current["reply"] = None

    def speak(msg: m.SpeechOut) -> None:
        if player.speaking:
            player.stop()
            player.wait(2.0)
        finished()
        current.update(reply=msg, start_ns=time.monotonic_ns())
        player.start(msg.text)

    node.beat("running", force=True)
    while not node.stopping:
        home.serve_once(handle, timeout_ms=2)
        while (got := speech.recv(0)) is not None:
            speak(got.message)
        while (got := barge.recv(0)) is not None:
            if player.speaking:
                player.stop()
                player.wait(1.0)
                event(pub, "barge_in", reply_id=current["reply"].reply_id if current["reply"] else 0)
                tracer.instant("barge-in: reply stopped", "speech")
        if current["reply"] is not None and not player.speaking:
            finished()
        node.beat()


NODES: dict[str, Callable[[VoiceDemoConfig, Node], None]] = {
    "perception": run_perception,
    "actuation": run_actuation,
}


def _decision(cfg: VoiceDemoConfig, node: Node) -> None:
    from demos.voice_decision import run_decision  # the model: only in this process

    run_decision(cfg, node)


def main(argv: list[str] | None = None) -> int:
    return node_main("demos.voice_nodes", {**NODES, "decision": _decision}, VoiceDemoConfig.from_json, argv)


if __name__ == "__main__":
    raise SystemExit(main())
