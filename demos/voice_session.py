"""Drive the voice demo's processes: start them, play the requests, collect the turns.

:class:`VoiceSession` starts perception, decision and actuation under a
supervisor (in the calling thread, which must be the main thread for Ctrl-C),
and follows the run on a worker thread: it waits until every process is up
(the models are loaded), tells perception to start listening, and collects the
events (speech detected, transcripts turned into calls, replies played) until
the audio has been heard and answered. Requests given as audio are laid out
one after another (:func:`audio.checks.layout`) and played either as a
paced WAV stream or through the virtual PyAudio microphone, so each turn can
be matched to its request. ``rtagent voice``, ``rtagent bench voice`` and the
tests use it.

::

  perception (audio.nodes) ── PUB "perception": transcripts (partial, final), vad
  │   events, barge_in (PlaybackControl on speech start), events
  │   audio: a microphone through PyAudio, or a WAV stream paced in real time
  ▼
  decision (control.voice_node) ── PUB "decision": speech (SpeechOut replies), turn
  │   and status events; deadline loop + agent (decoder, speculative executor,
  │   parallel DAG calls); home tools ── REQ "home" ──► actuation
  ▼
  actuation (sim_envs.home.nodes): the home store (SQLite; device actions), TTS
             playback with barge-in ── PUB "actuation": playback events

:class:`VoiceDemoConfig` holds every option of the demo; each process gets its
own part of it (a config dataclass beside its node) as JSON, so each node module
imports only what lies below it.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audio.checks import CheckedAudio, Segment, layout
from control.voice_config import VoiceDemoConfig
from control.voice_latency import breakdown
from realtime import messages as m
from realtime.bus import BusOptions, Subscriber
from realtime.bus_rpc import RequestClient
from realtime.errors import RtAgentError
from realtime.node_trace import supervisor_events
from realtime.supervisor import ProcessSpec, Supervisor, SupervisorReport, python_module
from realtime.trace import Tracer

NODE_MODULES = {"perception": "audio.nodes", "actuation": "sim_envs.home.nodes",
                "decision": "control.voice_node"}  # each runs as `python -m MODULE NAME CONFIG_JSON`
@dataclass
class VoiceResult:
    turns: list[dict[str, Any]] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    home: dict[str, Any] = field(default_factory=dict)
    playbacks: list[dict[str, Any]] = field(default_factory=list)
    barge_ins: int = 0
    speaker_s: float = 0.0  # audio that reached the virtual speaker (via="mic", speaker=True)
    errors: list[str] = field(default_factory=list)
    supervisor: SupervisorReport | None = None
    error: str | None = None


class VoiceSession:
    """Runs the voice demo on ``items`` (checked request audio) or on a live device.

    ``via``: "wav" plays the requests as a paced WAV stream; "mic" plays them
    through the virtual PyAudio microphone (PyAudio opens it for real); None
    listens on ``cfg.device`` until stopped (Ctrl-C) or ``cfg.max_duration_s``.
    """

    def __init__(self, cfg: VoiceDemoConfig, items: Sequence[CheckedAudio] = (), *,
                 via: str | None = "wav", lead_s: float = 0.5, gap_s: float = 2.5,
                 speaker: bool = False, startup_timeout_s: float = 240.0,
                 on_status: Callable[[dict[str, Any]], None] | None = None,
                 on_turn: Callable[[dict[str, Any]], None] | None = None,
                 env: Mapping[str, str] | None = None, tracer: Tracer | None = None) -> None:
        if via not in ("wav", "mic", None):
            raise RtAgentError(f"via: expected 'wav', 'mic' or None, got {via!r}")
        if via is not None and not items:
            raise RtAgentError("no request audio to play; give at least one good WAV file")
        self.cfg, self.items, self.via = cfg, list(items), via
        self.lead_s, self.gap_s, self.speaker = lead_s, gap_s, speaker
        self.startup_timeout_s = startup_timeout_s
        self.on_status = on_status or (lambda s: None)
        self.on_turn = on_turn or (lambda t: None)
        self.env = dict(env or {})  # extra environment of the processes (e.g. tracing)
        self.tracer = tracer or Tracer("frontend", enabled=False)
        self.result = VoiceResult()
        self.virtual: Any = None
        self.supervisor: Supervisor | None = None
        self._done = threading.Event()
        self._abort = threading.Event()
        self._tmp = tempfile.TemporaryDirectory(prefix="rtagent-voice-")

    def _prepare(self) -> tuple[VoiceDemoConfig, dict[str, str]]:
        # OpenMP threads (llama.cpp, CTranslate2) sleep when idle instead of spinning: the
        # processes share few cores, and a spinning pool steals them from the others.
        cfg, env = self.cfg, {"OMP_WAIT_POLICY": "PASSIVE", **self.env}
        if self.via is None:
            return cfg, env
        from audio.sources import write_wav

        stream, self.result.segments = layout(self.items, lead_s=self.lead_s, gap_s=self.gap_s)
        if self.via == "wav":
            path = write_wav(Path(self._tmp.name) / "requests.wav", stream)
            return dataclasses.replace(cfg, stream_wav=str(path), device=None), env
        from audio.alsa_virtual import MIC, SPEAKER, create_virtual_audio

        self.virtual = create_virtual_audio(Path(self._tmp.name) / "alsa")
        seconds = self.virtual.load_mic(stream, tail_silence_s=0.0)
        env["ALSA_CONFIG_PATH"] = str(self.virtual.config_path)
        out = SPEAKER if self.speaker and cfg.out_wav is None else cfg.out_device
        return dataclasses.replace(cfg, stream_wav=None, device=MIC, max_duration_s=seconds,
                                   pace=True, out_device=out), env

    def run(self, timeout_s: float | None = None) -> VoiceResult:
        try:
            cfg, env = self._prepare()
            parts = cfg.parts()
            specs = [ProcessSpec(name, python_module(module, name, parts[name].to_json()),
                                 env=env, startup_grace_ms=180_000, heartbeat_timeout_ms=10_000,
                                 # a turn (decode + its calls) past this is a hung agent
                                 turn_timeout_ms=120_000 if name == "decision" else None)
                     for name, module in NODE_MODULES.items()]
            t0_ns = time.monotonic_ns()  # the supervisor's report times count from about here
            self.supervisor = Supervisor(specs)
            worker = threading.Thread(target=self._script, name="voice-session", daemon=True)
            worker.start()
            try:
                self.result.supervisor = self.supervisor.run(until=self._done.is_set,
                                                             timeout_s=timeout_s)
            finally:
                self._abort.set()
                worker.join(timeout=15)
                supervisor_events(self.tracer, self.result.supervisor, t0_ns)
            if not self._done.is_set() and self.result.error is None and self.via is not None:
                self.result.error = ("stopped before every request was answered "
                                     f"({self.result.supervisor.stopped_because})")
            return self.result
        finally:
            if self.virtual is not None:
                self.result.speaker_s = len(self.virtual.read_speaker()) / self.virtual.speaker_rate_hz
            self._tmp.cleanup()

    # -- on the worker thread ---------------------------------------------------------------
    def _ask(self, client: RequestClient, name: str, wait_s: float) -> Any:
        deadline = time.monotonic() + wait_s
        error = "no answer"
        while time.monotonic() < deadline and not self._abort.is_set():
            try:
                got = client.call(m.ToolRequest(name=name), timeout_ms=2000)
            except RtAgentError as exc:
                error = str(exc)
                continue
            if got.ok:
                return json.loads(got.value_json)
            error = got.error
            time.sleep(0.2)
        raise RtAgentError(f"{name!r} got no answer in {wait_s:.0f} s: {error}")

    def _script(self) -> None:
        assert self.supervisor is not None
        rd = self.supervisor.run_dir
        events = Subscriber(rd.endpoint("perception"), ("event",), options=BusOptions(rcvhwm=8192))
        events.sock.connect(rd.endpoint("decision"))
        events.sock.connect(rd.endpoint("actuation"))
        decision = RequestClient(rd.endpoint("decision_ctl"), source="session")
        perception = RequestClient(rd.endpoint("perception_ctl"), source="session")
        home = RequestClient(rd.endpoint("home"), source="session")
        try:
            self._ask(decision, "stats", self.startup_timeout_s)  # the decoder is loaded
            self._ask(home, "snapshot", 30)
            time.sleep(0.3)  # subscriptions propagate before the first transcript
            self._ask(perception, "start", self.startup_timeout_s)
            self._follow(events)
            if not self._abort.is_set():  # (Ctrl-C stops the processes first)
                self.result.stats = self._ask(decision, "stats", 10)
                self.result.home = self._ask(home, "snapshot", 10)
        except RtAgentError as exc:
            self.result.error = str(exc)
        finally:
            for sock in (events, decision, perception, home):
                sock.close()
            self._done.set()

    def _follow(self, events: Subscriber) -> None:
        r = self.result
        ends: dict[int, dict[str, Any]] = {}
        played: dict[int, dict[str, Any]] = {}
        turns: list[dict[str, Any]] = []
        source_start = source_end = None
        last_turn_at = 0.0
        fired: set[int] = set()
        while not self._abort.is_set():
            got = events.recv(timeout_ms=50)
            if got is not None and isinstance(got.message, m.LogEvent):
                kind, data = got.message.logger, json.loads(got.message.text)
                if kind == "status":
                    self.on_status(data)
                elif kind == "vad" and data["kind"] == "end":
                    ends[data["utterance"]] = data
                elif kind == "source":
                    if data["kind"] == "start":
                        source_start = data["t_ns"]
                    else:
                        source_end = data
                elif kind == "input":
                    r.errors.append(data["error"])
                    r.error = data["error"]
                    return
                elif kind == "turn":
                    turns.append(data)
                    last_turn_at = time.monotonic()
                elif kind == "playback":
                    played[data["reply_id"]] = data
                    r.playbacks.append(data)
                elif kind == "barge_in":
                    r.barge_ins += 1
            for i, t in enumerate(turns):  # printed once its reply has been heard
                if i not in fired and (not t["reply_id"] or t["reply_id"] in played):
                    fired.add(i)
                    self.on_turn(self._merge(t, ends, played, source_start))
            if source_end is not None and len(turns) >= source_end["utterances"]:
                waiting = [t for t in turns if t["reply_id"] and t["reply_id"] not in played]
                if not waiting or time.monotonic() - last_turn_at > 20:
                    break
        r.turns = [self._merge(t, ends, played, source_start) for t in turns]
        for t in r.turns:
            self._trace_turn(t)
        for i, t in enumerate(r.turns):
            if i not in fired:
                self.on_turn(t)

    def _merge(self, t: dict[str, Any], ends: dict[int, dict[str, Any]],
               played: dict[int, dict[str, Any]], source_start: int | None) -> dict[str, Any]:
        t = dict(t)
        end = ends.get(t["utterance"], {})
        t["endpoint_ns"] = end.get("detected_ns")
        t["early_endpoint"] = bool(end.get("early"))
        p = played.get(t["reply_id"]) if t["reply_id"] else None
        t["first_audio_ns"] = p["first_audio_ns"] if p else None
        t["playback"] = p
        t["segment"] = self._segment(t, source_start)
        t["latency"] = breakdown(t)
        return t

    def _trace_turn(self, t: dict[str, Any]) -> None:
        """One request, from the start of speech to its first audio out (track ``turns``)."""
        start, end = t.get("speech_start_ns"), t.get("first_audio_ns") or t.get("done_ns")
        if self.tracer.enabled and start and end:
            lat = {k: v for k, v in t["latency"].items() if v is not None}
            label = f"{self.cfg.trace_label}: " if self.cfg.trace_label else ""
            self.tracer.complete(label + (t.get("segment") or f"utterance {t['utterance']}"), "turns",
                                 start, end, "session", text=t["text"][:80],
                                 reply=t["reply"][:80], **lat)

    def _segment(self, t: dict[str, Any], source_start: int | None) -> str | None:
        if source_start is None or not self.result.segments:
            return None
        a, b = t.get("speech_start_ns") or 0, t.get("end_of_speech_ns") or 0
        best, overlap = None, 0.0
        for s in self.result.segments:
            lo = max(a, source_start + s.start_s * 1e9)
            hi = min(b, source_start + s.end_s * 1e9)
            if hi - lo > overlap:
                best, overlap = s.label, hi - lo
        return best
