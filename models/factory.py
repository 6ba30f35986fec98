"""The decoders by name: ``make_decoder("simpletool" | "baseline", resolved_model, ...)``.

The protocol (:mod:`models.decoder`) knows no implementation; this module imports each
one when it is first asked for (so importing it stays light).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.decoder import Decoder
from models.resolve import ResolvedModel
from realtime.errors import ConfigError

__all__ = ["decoder_names", "make_decoder"]


def _baseline() -> Callable[..., Decoder]:
    from models.baseline import JsonBaselineDecoder

    return JsonBaselineDecoder


def _simpletool() -> Callable[..., Decoder]:
    from models.simpletool import SimpleToolDecoder

    return SimpleToolDecoder


_DECODERS: dict[str, Callable[[], Callable[..., Decoder]]] = {
    "baseline": _baseline,
    "simpletool": _simpletool,
}


def decoder_names() -> list[str]:
    return sorted(_DECODERS)


def make_decoder(name: str, model: ResolvedModel, *, n_threads: int | None = None,
                 n_gpu_layers: int = 0, **options: Any) -> Decoder:
    """The decoder ``name`` over ``model`` (:func:`models.resolve.resolve_model`).

    Other keyword options go to the decoder (e.g. ``schedule=``, ``max_calls=``).
    """
    if name not in _DECODERS:
        raise ConfigError(f"unknown decoder {name!r}; expected one of {decoder_names()}")
    if not isinstance(model, ResolvedModel):
        raise ConfigError(f"make_decoder: expected the model as models.resolve.resolve_model "
                          f"gives it, got {type(model).__name__} {model!r}")
    return _DECODERS[name]()(model, n_threads=n_threads, n_gpu_layers=n_gpu_layers, **options)
