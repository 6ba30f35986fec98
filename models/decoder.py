"""The Decoder protocol: context + tools -> tool calls, with timings; and its registry.

::

    from models.decoder import make_decoder, DecodeContext
    with make_decoder("simpletool") as dec:          # or "baseline"
        result = dec.decode(DecodeContext.from_request("pick up the red cube", scene=...), tools)
        result.calls, result.latency_ms, result.forward_passes, result.sampled_tokens
        for call in dec.decode_stream(ctx, tools):   # each call as soon as it is decoded
            ...

A decoder is registered with ``@register_decoder("name")``; its constructor
takes the keyword options of :func:`make_decoder`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from control.tools import ToolCall, ToolSpec
from models.prompts import user_content
from realtime.errors import ConfigError, RtAgentError

__all__ = [
    "DEFAULT_LORA",
    "DecodeContext",
    "DecodeError",
    "DecodeResult",
    "Decoder",
    "decoder_names",
    "make_decoder",
    "register_decoder",
    "resolve_lora",
]


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


_REGISTRY: dict[str, Callable[..., Decoder]] = {}
DEFAULT_LORA = "default"
"""``lora_path`` value meaning: the shipped adapter for this base model, if any (:mod:`models.adapters`)."""


def register_decoder(name: str) -> Callable[[Callable[..., Decoder]], Callable[..., Decoder]]:
    def deco(factory: Callable[..., Decoder]) -> Callable[..., Decoder]:
        if name in _REGISTRY:
            raise ConfigError(f"decoder {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory
    return deco


def _load_builtin() -> None:
    # Importing registers them; kept lazy so `import models.decoder` stays light.
    import models.baseline  # noqa: F401
    import models.simpletool  # noqa: F401


def decoder_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def make_decoder(
    name: str = "simpletool",
    model_path: str | Path | None = None,
    *,
    model_name: str | None = None,
    n_threads: int | None = None,
    n_gpu_layers: int = 0,
    lora_path: str | Path | None = DEFAULT_LORA,
    **options: Any,
) -> Decoder:
    """A decoder by registry name over the GGUF at ``model_path`` (None: the default).

    ``model_name`` picks an embedded model (``"smollm2-135m"``, ``"gemma3-270m"``);
    ``lora_path``: a llama.cpp LoRA adapter, ``"default"`` (the default: the
    shipped adapter trained on exactly this model, if there is one; simpletool
    only, since it is trained on the compact call format) or None (the base
    model alone). Other keyword options go to the decoder (e.g. ``schedule=``).
    """
    _load_builtin()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown decoder {name!r}; expected one of {sorted(_REGISTRY)}")
    from models.artifacts import resolve_gguf

    path = resolve_gguf(model_path, name=model_name)
    if str(lora_path) == DEFAULT_LORA and name != "simpletool":
        lora_path = None  # the JSON baseline is what users do today: the base model alone
    return _REGISTRY[name](model_path=path, n_threads=n_threads, n_gpu_layers=n_gpu_layers,
                           lora_path=resolve_lora(lora_path, path), **options)


def resolve_lora(lora_path: str | Path | None, model_path: Path) -> Path | None:
    """``"default"`` -> the shipped adapter for ``model_path`` (or None); a path -> itself."""
    if lora_path is None:
        return None
    if str(lora_path) != DEFAULT_LORA:
        return Path(lora_path)
    from models.adapters import default_adapter

    return default_adapter(model_path)
