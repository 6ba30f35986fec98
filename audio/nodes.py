"""The voice demo's perception process: audio -> Silero VAD -> streaming Whisper -> transcripts.

It publishes on ``perception``: ``transcript`` (partial and final
:class:`~realtime.messages.Transcript`), ``barge_in`` (a
:class:`~realtime.messages.PlaybackControl` at each start of speech, so a reply
being spoken stops) and ``event`` (VAD decisions, start and end of the audio,
input errors). It waits for a ``start`` request on ``perception_ctl`` (sent by
the session once every process is up), so no transcript is published before
its subscribers are connected. With ``live_vocabulary`` it follows the
``vocabulary`` events of actuation (the home's rooms, devices, contacts,
shopping items) and decision (cities asked about lately) and biases Whisper
with them (:mod:`audio.vocabulary`). With ``echo_cancel`` it takes the reply
actuation plays (``playback_audio``) out of the microphone before the VAD
(:mod:`audio.echo`): the assistant's own voice does not barge in on itself.

``python -m audio.nodes perception CONFIG_JSON`` runs it (a
:class:`PerceptionConfig` as JSON) under :class:`realtime.supervisor.Supervisor`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from audio.chunks import AudioChunk
from audio.echo import EchoCanceller
from audio.errors import AudioError
from audio.resample import Resampler
from audio.sources import SAMPLE_RATE_HZ, AudioSource, PacedSource, open_source
from audio.streaming import StreamingOptions, StreamingTranscriber
from audio.stt import SttOptions, Transcript, WhisperStt
from audio.vad import SpeechEnd, SpeechStart, StreamingVad, VadOptions
from audio.vocabulary import Vocabulary
from realtime import messages as m
from realtime.bus import Publisher, Subscriber
from realtime.bus_rpc import ReplyServer, error_reply, ok_reply
from realtime.errors import ConfigError
from realtime.events import EVENT_OPTIONS, EVENT_TOPIC, publish_event
from realtime.node import Node, node_main
from realtime.node_trace import node_tracer
from realtime.trace import Tracer

__all__ = ["PerceptionConfig", "run_perception"]


@dataclass(frozen=True)
class PerceptionConfig:
    """What the perception process needs; sent to it as JSON.

    stream_wav: a WAV file played in real time (None: capture ``device``).
    device: PyAudio input (index or name); ``max_duration_s`` limits the capture;
        ``pace`` releases captured audio in real time (a virtual device has no clock).
    silence_ms: silence that ends an utterance; ``early_silence_ms``: a pause this long
        ends a request whose partial transcript sounds finished (0: off).
    partial_interval_ms: audio between partial transcripts.
    stt_threads: Whisper's CPU threads; ``stt_prompt``: its "previous text", which biases
        it toward the domain's vocabulary (None: no prompt); ``live_vocabulary``: replace
        it with the tools' vocabulary as the other processes announce it.
    echo_cancel: take the replies actuation plays out of the microphone signal.
    trace_label: with tracing on, the process is named "LABEL/perception".
    """

    stream_wav: str | None = None
    device: str | None = None
    max_duration_s: float | None = None
    pace: bool = True
    silence_ms: float = 400.0
    early_silence_ms: float = 200.0
    partial_interval_ms: float = 250.0
    stt_threads: int = 1
    stt_prompt: str | None = None
    live_vocabulary: bool = False
    echo_cancel: bool = False
    trace_label: str = ""

    def __post_init__(self) -> None:
        if self.max_duration_s is not None and not self.max_duration_s > 0:
            raise ConfigError(f"max_duration_s: expected > 0 s or None, got {self.max_duration_s!r}")
        # The options check their own ranges ("expected X, got Y"): here, before any model loads.
        self.stt_options()
        self.vad_options()
        self.streaming_options()

    def stt_options(self) -> SttOptions:
        return SttOptions(cpu_threads=self.stt_threads, initial_prompt=self.stt_prompt)

    def vad_options(self) -> VadOptions:
        return VadOptions(silence_ms=self.silence_ms)

    def streaming_options(self) -> StreamingOptions:
        return StreamingOptions(partial_interval_ms=self.partial_interval_ms,
                                early_silence_ms=self.early_silence_ms)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PerceptionConfig:
        return cls(**json.loads(text))


def open_input(cfg: PerceptionConfig) -> AudioSource:
    """The WAV stream (paced in real time) or the PyAudio device ``cfg`` names."""
    if cfg.stream_wav is not None:
        return open_source("paced_wav", path=cfg.stream_wav)
    device: int | str | None = cfg.device
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    src = open_source("pyaudio", device=device, max_duration_s=cfg.max_duration_s)
    return PacedSource(src) if cfg.pace else src


def run_perception(cfg: PerceptionConfig, node: Node) -> None:
    """Audio -> Silero VAD -> streaming Whisper: partial and final transcripts."""
    tracer = node_tracer(node, "perception", cfg.trace_label)
    rd = node.run_dir
    pub = node.own(Publisher(rd.endpoint("perception"), source="perception", options=EVENT_OPTIONS))
    ctl = node.own(ReplyServer(rd.endpoint("perception_ctl"), source="perception"))
    with node.beating():
        stt = WhisperStt(cfg.stt_options())
        vad = StreamingVad(cfg.vad_options())
    st = node.own(StreamingTranscriber(stt, vad, cfg.streaming_options()))
    started = False

    def handle(req: m.ToolRequest) -> m.ToolReply:
        nonlocal started
        if req.name == "start":
            started = True
            return ok_reply({"started": True})
        return error_reply(f"unknown perception request {req.name!r}; expected 'start'")

    node.beat("running", force=True)
    while not node.stopping and not started:
        ctl.serve_once(handle, timeout_ms=50)
        node.beat()
    if node.stopping:
        return
    try:
        source = node.own(open_input(cfg))
    except AudioError as exc:  # missing device, bad file: say so, stay up, never crash-loop
        publish_event(pub, "input", "error", error=str(exc))
        while not node.stopping:
            node.wait(0.2)
            node.beat()
        return
    out = _TranscriptPublisher(pub, tracer)
    live = LiveVocabulary([node.own(Subscriber(rd.endpoint(name), (EVENT_TOPIC,), types=(m.LogEvent,)))
                           for name in ("actuation", "decision")], stt, tracer) \
        if cfg.live_vocabulary else None
    echo = PlaybackEcho(node.own(Subscriber(rd.endpoint("actuation"), ("playback_audio",),
                                            types=(m.AudioChunk,)))) if cfg.echo_cancel else None
    first = True
    try:
        for chunk in source:
            if live is not None:
                live.poll()
            if echo is not None:
                chunk = echo.process(chunk)
            if first:
                publish_event(pub, "source", kind="start", t_ns=chunk.t_ns)
                first = False
            for ev in st.feed(chunk):
                out.publish(ev)
            node.beat()
            ctl.serve_once(handle, timeout_ms=0)
            if node.stopping:
                return
        for ev in st.finish():
            out.publish(ev)
    except AudioError as exc:
        publish_event(pub, "input", "error", error=str(exc))
    publish_event(pub, "source", kind="end", t_ns=time.monotonic_ns(), utterances=len(out.ends))
    while not node.stopping:
        ctl.serve_once(handle, timeout_ms=100)
        node.beat()


class PlaybackEcho:
    """The microphone's chunks with what actuation played (``playback_audio``) taken out.

    A reply's blocks are laid end to end from the time its first block was played (a
    block's own stamp jitters by the player's pacing; the speaker plays on its sample
    clock); a gap in ``start_sample`` starts a new reply."""

    def __init__(self, reference: Any) -> None:
        self.reference = reference
        self.canceller = EchoCanceller()
        self._resampler: Resampler | None = None
        self._next: tuple[int, int] | None = None  # (start_sample, t_ns) a contiguous block has

    def process(self, chunk: AudioChunk) -> AudioChunk:
        while (got := self.reference.recv(0)) is not None:
            self._add(got.message)
        return AudioChunk(self.canceller.process(chunk.samples, chunk.t_ns), chunk.t_ns, chunk.seq)

    def _add(self, played: Any) -> None:
        pcm = np.asarray(played.pcm)
        x = pcm.astype(np.float32) / 32768.0 if pcm.dtype.kind == "i" else pcm.astype(np.float32)
        rate = int(played.sample_rate_hz)
        if self._next is None or self._next[0] != played.start_sample or self._resampler is None:
            self._resampler = Resampler(rate, SAMPLE_RATE_HZ)
            self._next = (played.start_sample, played.t_ns)
        start_ns = self._next[1]
        self._next = (played.start_sample + len(x), start_ns + len(x) * 1_000_000_000 // rate)
        self.canceller.add_reference(self._resampler(x), start_ns)


class LiveVocabulary:
    """Whisper's prompt from the ``vocabulary`` events on ``subscribers`` (each event: a
    ``source`` and its words), updated between chunks when the words change."""

    def __init__(self, subscribers: list[Any], stt: Any, tracer: Tracer) -> None:
        self.subscribers, self.stt, self.tracer = subscribers, stt, tracer
        self.vocabulary = Vocabulary()
        self.updates = 0

    def poll(self) -> None:
        for sub in self.subscribers:
            while (got := sub.recv(0)) is not None:
                if got.message.logger != "vocabulary":
                    continue
                try:
                    words = json.loads(got.message.text)
                except ValueError:
                    continue
                if self.vocabulary.update(str(words.get("source", "?")), words):
                    self.stt.set_prompt(self.vocabulary.prompt())
                    self.updates += 1
                    self.tracer.instant("vocabulary", "stt", prompt=self.vocabulary.prompt()[:120])


class _TranscriptPublisher:
    """Publishes the transcriber's events, stamping each transcript with its utterance's
    start of speech and end of speech (as the VAD decided them)."""

    def __init__(self, pub: Publisher, tracer: Tracer) -> None:
        self.pub, self.tracer = pub, tracer
        self.starts: list[int] = []
        self.ends: list[SpeechEnd] = []

    def publish(self, ev: Any) -> None:
        pub, starts, ends = self.pub, self.starts, self.ends
        if isinstance(ev, SpeechStart):
            starts.append(ev.t_ns)
            pub.publish(m.PlaybackControl(action="stop", reason="barge-in"), topic="barge_in")
            publish_event(pub, "vad", kind="start", utterance=len(starts) - 1, t_ns=ev.t_ns,
                          detected_ns=ev.detected_t_ns)
        elif isinstance(ev, SpeechEnd):
            ends.append(ev)
            publish_event(pub, "vad", kind="end", utterance=len(ends) - 1, end_ns=ev.end_t_ns,
                          detected_ns=ev.detected_t_ns, forced=ev.forced, early=ev.early)
            trace_speech(self.tracer, starts, ev)
        elif isinstance(ev, Transcript):
            u = ev.utterance
            end_ns = ends[u].end_t_ns if ev.final and u < len(ends) else ev.end_t_ns
            trace_transcript(self.tracer, ev)
            pub.publish(m.Transcript(text=ev.text, is_final=ev.final, utterance_id=u,
                                     audio_start_ns=starts[u] if u < len(starts) else 0,
                                     audio_end_ns=end_ns, t_ns=ev.ready_t_ns or time.monotonic_ns()),
                        topic="transcript")


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


def main(argv: list[str] | None = None) -> int:
    return node_main("audio.nodes", {"perception": run_perception}, PerceptionConfig.from_json, argv)


if __name__ == "__main__":
    raise SystemExit(main())
