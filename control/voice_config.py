"""The voice demo's options in one validated dataclass; each process gets its part
(:meth:`VoiceDemoConfig.parts`): the perception node's, the decision's and the actuation's."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from typing import TypeVar

from audio.nodes import PerceptionConfig
from control.voice_node import VoiceDecisionConfig
from sim_envs.home.nodes import ActuationConfig
from sim_envs.home.tools import STT_PROMPT

__all__ = ["VoiceDemoConfig"]

Part = TypeVar("Part", PerceptionConfig, VoiceDecisionConfig, ActuationConfig)

@dataclass(frozen=True)
class VoiceDemoConfig:
    """Every option of the voice demo. Each process gets its part (:meth:`parts`): the
    fields mean the same there and have the same defaults
    (:class:`~audio.nodes.PerceptionConfig`, :class:`~sim_envs.home.nodes.ActuationConfig`,
    :class:`~control.voice_node.VoiceDecisionConfig`), but for two: Whisper's
    prompt here starts as the home's vocabulary (:data:`sim_envs.home.tools.STT_PROMPT`)
    and follows the live vocabulary the processes announce (``live_vocabulary``).

    decoder_threads / stt_threads: one core each by default; on a 2-core machine two
    OpenMP pools of 2 threads stall each other at every barrier (decodes 2-9x slower).
    """

    stream_wav: str | None = PerceptionConfig.stream_wav
    device: str | None = PerceptionConfig.device
    max_duration_s: float | None = PerceptionConfig.max_duration_s
    pace: bool = PerceptionConfig.pace
    out_device: str | None = ActuationConfig.out_device
    out_wav: str | None = ActuationConfig.out_wav
    hz: float = VoiceDecisionConfig.hz
    speculation: bool = VoiceDecisionConfig.speculation
    decoder: str = VoiceDecisionConfig.decoder
    model: str | None = VoiceDecisionConfig.model
    lora: str | None = VoiceDecisionConfig.lora
    decoder_threads: int | None = VoiceDecisionConfig.decoder_threads
    final_decoder_threads: int = VoiceDecisionConfig.final_decoder_threads
    home_db: str | None = ActuationConfig.home_db
    silence_ms: float = PerceptionConfig.silence_ms
    early_silence_ms: float = PerceptionConfig.early_silence_ms
    partial_interval_ms: float = PerceptionConfig.partial_interval_ms
    stt_threads: int = PerceptionConfig.stt_threads
    stt_prompt: str | None = STT_PROMPT
    live_vocabulary: bool = True
    echo_cancel: bool = True
    service_min_ms: float = VoiceDecisionConfig.service_min_ms
    service_max_ms: float = VoiceDecisionConfig.service_max_ms
    weather: str = VoiceDecisionConfig.weather
    weather_url: str = VoiceDecisionConfig.weather_url
    voice: str = ActuationConfig.voice
    words_per_min: int = ActuationConfig.words_per_min
    trace_label: str = ""  # with tracing on: process names become "LABEL/perception", ...

    def __post_init__(self) -> None:
        self.parts()  # each part checks its own fields ("expected X, got Y")

    def parts(self) -> dict[str, PerceptionConfig | VoiceDecisionConfig | ActuationConfig]:
        """Each process's config, by process name (the keys of :data:`NODE_MODULES`)."""
        return {"perception": self._fill(PerceptionConfig), "actuation": self._fill(ActuationConfig),
                "decision": self._fill(VoiceDecisionConfig)}

    def _fill(self, cls: type[Part]) -> Part:
        return cls(**{f.name: getattr(self, f.name) for f in dataclasses.fields(cls)})

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> VoiceDemoConfig:
        return cls(**json.loads(text))
