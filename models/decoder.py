"""The Decoder protocol: context + tools -> tool calls, with timings.

::

    from models.decoder import DecodeContext
    from models.factory import make_decoder
    from models.resolve import resolve_model
    with make_decoder("simpletool", resolve_model()) as dec:    # or "baseline"
        result = dec.decode(DecodeContext.from_request("pick up the red cube", scene=...), tools)
        result.calls, result.latency_ms, result.forward_passes, result.sampled_tokens
        for call in dec.decode_stream(ctx, tools):   # each call as soon as it is decoded
            ...

This module knows no implementation; :mod:`models.factory` makes them by name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from control.tools import ToolCall, ToolSpec
from models.prompts import user_content
from realtime.errors import ConfigError, RtAgentError

__all__ = ["DecodeContext", "DecodeError", "DecodeResult", "Decoder"]


class DecodeError(RtAgentError):
    """A decode could not produce valid calls (nothing partial is returned)."""


@dataclass(frozen=True)
class DecodeContext:
    """What the decoder conditions on.

    - ``messages``: chat turns (``{"role", "content"}``), the last one the user's.
    - ``enums``: run-time restrictions by argument name, applied to every tool
      that has that argument, e.g. ``{"object": ["red_cube", "blue_cube"]}`` for
      the objects the robot sees now. The prompt keeps the full tool list (so its
      KV cache is reused); only the decoding constraint narrows.
    - ``max_calls``: most calls in one answer (None: the decoder's default).
    - ``draft``: calls the answer will likely be (e.g. those decoded for a partial
      transcript of the same request); a decoder that can verify a draft checks
      it in the prompt's own batch and keeps what greedy decoding agrees with, so
      the answer is the same, in fewer forward passes. ``()`` drafts "no call";
      None: no draft. Decoders that can't use one ignore it.
    """

    messages: tuple[Mapping[str, str], ...]
    enums: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    max_calls: int | None = None
    draft: tuple[ToolCall, ...] | None = None

    def __post_init__(self) -> None:
        if not self.messages or self.messages[-1].get("role") != "user":
            raise ConfigError("DecodeContext.messages: expected the last message to be the "
                              f"user's, got {[m.get('role') for m in self.messages][-3:]}")
        if self.max_calls is not None and self.max_calls < 1:
            raise ConfigError(f"max_calls: expected >= 1 or None, got {self.max_calls}")

    @classmethod
    def from_request(cls, request: str, scene: str | None = None, **kw: Any) -> DecodeContext:
        """One user turn; ``scene`` (the world state) is written before the request."""
        return cls(({"role": "user", "content": user_content(request, scene)},), **kw)

    @classmethod
    def coerce(cls, context: DecodeContext | Sequence[Mapping[str, str]]) -> DecodeContext:
        if isinstance(context, DecodeContext):
            return context
        return cls(tuple(context))


@dataclass
class DecodeResult:
    """Calls and what they cost.

    - ``prompt_tokens``: the whole prompt; ``prompt_tokens_evaluated``: the part
      not served from the prefix cache.
    - ``forward_passes``: ``llama_decode`` calls (prompt included).
    - ``sampled_tokens``: tokens the model chose (forced structure not counted).
    - ``json_tokens``: tokens the same calls take as a JSON list (the baseline's form).
    - ``text``: the answer text (compact format, or JSON for the baseline).
    """

    calls: list[ToolCall]
    latency_ms: float
    prompt_tokens: int
    forward_passes: int
    sampled_tokens: int
    json_tokens: int
    text: str
    prompt_tokens_evaluated: int = 0
    first_call_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": [c.to_json() for c in self.calls],
            "latency_ms": round(self.latency_ms, 3),
            "prompt_tokens": self.prompt_tokens,
            "forward_passes": self.forward_passes,
            "sampled_tokens": self.sampled_tokens,
        }


@runtime_checkable
class Decoder(Protocol):
    """Context + tools -> tool calls, with timings."""

    name: str

    def decode(self, context: DecodeContext | Sequence[Mapping[str, str]],
               tools: Sequence[ToolSpec]) -> DecodeResult: ...

    def decode_stream(self, context: DecodeContext | Sequence[Mapping[str, str]],
                      tools: Sequence[ToolSpec]) -> Iterator[ToolCall]: ...

    def close(self) -> None: ...
