"""The voice demo's actuation process: the home's device actions over RPC, replies spoken.

It serves the home tools (:data:`~sim_envs.home.tools.HOME_TOOLS`, and
``snapshot``) on ``home`` against a :class:`~sim_envs.home.store.HomeStore`;
speaks each ``speech`` reply (:class:`~realtime.messages.SpeechOut`) from the
decision process with espeak-ng, stopping the one being spoken when a newer
reply comes or perception hears the user talk over it (``barge_in``); and
publishes on ``actuation`` an ``event`` per reply played (and per barge-in), and
a ``vocabulary`` event with the home's words (rooms, devices, contacts, shopping
items) when they change and every few seconds (for Whisper's prompt); and, as
``playback_audio``, what it plays, stamped (:class:`ReferenceTap`), so that
perception can take the reply's echo out of the microphone (:mod:`audio.echo`).

``python -m sim_envs.home.nodes actuation CONFIG_JSON`` runs it (an
:class:`ActuationConfig` as JSON) under :class:`realtime.supervisor.Supervisor`.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from audio.tts import AudioSink, EspeakTts, PyAudioSink, SpeechPlayer, TtsOptions, WavSink
from realtime import messages as m
from realtime.bus import Publisher, Subscriber
from realtime.bus_rpc import ReplyServer, error_reply, ok_reply
from realtime.events import EVENT_OPTIONS, publish_event
from realtime.node import Node, node_main
from realtime.node_trace import node_tracer
from realtime.trace import Tracer
from sim_envs.home.store import HomeStore
from sim_envs.home.tools import HOME_TOOLS

__all__ = ["ActuationConfig", "HomeVocabulary", "ReferenceTap", "run_actuation"]

VOCABULARY_EVERY_S = 5.0  # re-sent this often: a subscriber that joined late gets it too
NEW_REPLY_GAP_NS = 200_000_000  # played blocks further apart than this are not one stream


@dataclass(frozen=True)
class ActuationConfig:
    """What the actuation process needs; sent to it as JSON.

    out_device / out_wav: where replies are spoken (a PyAudio output, index or name, or
        a WAV file; neither: played to nowhere, in real time all the same).
    home_db: the home store's SQLite file (None: a fresh home in memory).
    voice / words_per_min: espeak-ng's voice and speed for the replies.
    trace_label: with tracing on, the process is named "LABEL/actuation".
    """

    out_device: str | None = None
    out_wav: str | None = None
    home_db: str | None = None
    voice: str = "en-us"
    words_per_min: int = 175
    trace_label: str = ""

    def __post_init__(self) -> None:
        self.tts_options()  # checks voice and words_per_min ("expected X, got Y")

    def tts_options(self) -> TtsOptions:
        return TtsOptions(voice=self.voice, words_per_min=self.words_per_min)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ActuationConfig:
        return cls(**json.loads(text))


class _NullSink:
    def write(self, pcm: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def open_output(cfg: ActuationConfig, rate_hz: int) -> AudioSink:
    """The WAV file or output device ``cfg`` names, else a sink that discards."""
    if cfg.out_wav:
        return WavSink(cfg.out_wav, rate_hz)
    if cfg.out_device is not None:
        dev: int | str = int(cfg.out_device) if cfg.out_device.isdigit() else cfg.out_device
        return PyAudioSink(dev, rate_hz)
    return _NullSink()


class ReferenceTap:
    """A sink that also keeps each block it plays with the time it began (for echo
    cancellation); ``publish`` (on the thread that owns the socket) sends them."""

    def __init__(self, inner: AudioSink, rate_hz: int,
                 now_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.inner, self.rate_hz, self._now_ns = inner, rate_hz, now_ns
        self._played: queue.SimpleQueue[tuple[int, int, bytes]] = queue.SimpleQueue()
        self._samples = 0  # written so far: a gap in it marks a new reply
        self._last_ns = 0

    def write(self, pcm: bytes) -> None:  # (the player's thread)
        now = self._now_ns()
        if now - self._last_ns > NEW_REPLY_GAP_NS:
            self._samples += self.rate_hz  # not contiguous with the last block
        self._played.put((self._samples, now, pcm))
        self._samples += len(pcm) // 2
        self.inner.write(pcm)
        self._last_ns = self._now_ns()

    def close(self) -> None:
        self.inner.close()

    def publish(self, pub: Publisher) -> None:
        while True:
            try:
                start, t_ns, pcm = self._played.get_nowait()
            except queue.Empty:
                return
            pub.publish(m.AudioChunk(stream="playback", pcm=np.frombuffer(pcm, "<i2"),
                                     sample_rate_hz=self.rate_hz, start_sample=start, t_ns=t_ns),
                        topic="playback_audio")


class HomeServer:
    """Answers the home's RPC: a home tool by name (JSON arguments), or ``snapshot``."""

    def __init__(self, store: HomeStore, tracer: Tracer) -> None:
        self.store, self.tracer = store, tracer

    def handle(self, req: m.ToolRequest) -> m.ToolReply:
        args = json.loads(req.arguments_json or "{}")
        if req.name == "snapshot":
            return ok_reply(self.store.snapshot())
        if req.name not in HOME_TOOLS:
            return error_reply(f"unknown home request {req.name!r}; expected one of "
                               f"{', '.join(HOME_TOOLS)}")
        try:
            with self.tracer.span(req.name, "home", "tool"):
                return ok_reply(getattr(self.store, req.name)(**args))
        except (ValueError, TypeError) as exc:  # a bad room or contact: the agent hears why
            return error_reply(str(exc))


class HomeVocabulary:
    """Announces the home's words: at once, when a request changed them, and every
    :data:`VOCABULARY_EVERY_S` seconds."""

    def __init__(self, store: HomeStore, pub: Publisher) -> None:
        self.store, self.pub = store, pub
        self.words: dict[str, list[str]] | None = None
        self.sent_s = 0.0

    def poll(self, handled: bool) -> None:
        now = time.monotonic()
        if not handled and now - self.sent_s < VOCABULARY_EVERY_S:
            return
        words = self.store.vocabulary()
        if words != self.words or now - self.sent_s >= VOCABULARY_EVERY_S:
            publish_event(self.pub, "vocabulary", source="home", **words)
            self.words, self.sent_s = words, now


class Speaker:
    """Speaks one reply at a time: a newer reply or a barge-in stops the current one;
    each reply played (whole or cut short) becomes a ``playback`` event."""

    def __init__(self, player: SpeechPlayer, pub: Publisher, tracer: Tracer) -> None:
        self.player, self.pub, self.tracer = player, pub, tracer
        self.reply: m.SpeechOut | None = None  # the reply being spoken (or just finished)
        self.start_ns = 0

    def speak(self, msg: m.SpeechOut) -> None:
        if self.player.speaking:
            self.player.stop()
            self.player.wait(2.0)
        self.finished()
        self.reply, self.start_ns = msg, time.monotonic_ns()
        self.player.start(msg.text)

    def barge_in(self) -> None:
        if self.player.speaking:
            self.player.stop()
            self.player.wait(1.0)
            publish_event(self.pub, "barge_in", reply_id=self.reply.reply_id if self.reply else 0)
            self.tracer.instant("barge-in: reply stopped", "speech")

    def poll(self) -> None:
        """Report the reply once it has stopped playing."""
        if self.reply is not None and not self.player.speaking:
            self.finished()

    def finished(self) -> None:
        p, rep = self.player.last, self.reply
        if rep is None or p is None:
            return
        first_audio_ns = self.start_ns + int(p.first_audio_ms * 1e6)
        publish_event(self.pub, "playback", reply_id=rep.reply_id, text=rep.text,
                      stopped=p.stopped, first_audio_ns=first_audio_ns,
                      played_ms=round(p.played_ms, 1))
        if self.tracer.enabled:
            self.tracer.complete("synthesize", "speech", self.start_ns, first_audio_ns, "tts",
                                 reply=rep.reply_id)
            self.tracer.complete("speak", "speech", first_audio_ns,
                                 first_audio_ns + round(p.played_ms * 1e6), "tts",
                                 reply=rep.reply_id, stopped=p.stopped, text=rep.text[:80])
        self.reply = None


def run_actuation(cfg: ActuationConfig, node: Node) -> None:
    """The home store's device actions over RPC; replies spoken, stopped on barge-in."""
    tracer = node_tracer(node, "actuation", cfg.trace_label)
    rd = node.run_dir
    pub = node.own(Publisher(rd.endpoint("actuation"), source="actuation", options=EVENT_OPTIONS))
    home = node.own(ReplyServer(rd.endpoint("home"), source="actuation"))
    speech = node.own(Subscriber(rd.endpoint("decision"), ("speech",), types=(m.SpeechOut,)))
    barge = node.own(Subscriber(rd.endpoint("perception"), ("barge_in",),
                                types=(m.PlaybackControl,)))
    server = HomeServer(node.own(HomeStore(cfg.home_db or ":memory:")), tracer)
    tts = EspeakTts(cfg.tts_options())
    tap = ReferenceTap(open_output(cfg, tts.rate_hz), tts.rate_hz)
    speaker = Speaker(node.own(SpeechPlayer(tts, tap)), pub, tracer)
    vocabulary = HomeVocabulary(server.store, pub)

    node.beat("running", force=True)
    while not node.stopping:
        vocabulary.poll(home.serve_once(server.handle, timeout_ms=2))
        while (got := speech.recv(0)) is not None:
            speaker.speak(got.message)
        while barge.recv(0) is not None:
            speaker.barge_in()
        speaker.poll()
        tap.publish(pub)
        node.beat()


def main(argv: list[str] | None = None) -> int:
    return node_main("sim_envs.home.nodes", {"actuation": run_actuation}, ActuationConfig.from_json,
                     argv)


if __name__ == "__main__":
    raise SystemExit(main())
