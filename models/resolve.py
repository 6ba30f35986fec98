"""The one place a run's model and adapter are chosen.

::

    from models.resolve import resolve_model
    from models.factory import make_decoder
    model = resolve_model()                          # the default model and its adapter
    model = resolve_model("gemma3-270m", lora=None)  # an embedded model by name, no adapter
    model = resolve_model("my.gguf", "my-lora.gguf")
    with make_decoder("simpletool", model) as dec: ...

The model: a path, else ``$RTAGENT_GGUF``, else the embedded :data:`DEFAULT_GGUF`
(SmolLM2-135M); a name of :data:`models.artifacts.GGUF_MODELS` picks that embedded
model (and wins over ``$RTAGENT_GGUF``, as a path does). The adapter: ``"default"``
(:data:`DEFAULT_LORA`), the shipped one trained on exactly that file if there is one
(:mod:`models.adapters`); a path; or None. The shipped adapter is trained on the
SimpleTool decoder's compact call format: the JSON baseline runs without it
(:func:`default_lora`). :func:`resolve_model` also asks the run-time file policy
(:mod:`models.runtime_file`) which file llama.cpp loads for them, making it on first use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from models.adapters import default_adapter
from models.artifacts import DEFAULT_GGUF, GGUF_MODELS, check_gguf, embedded_gguf
from models.runtime_file import RunFile, runtime_gguf

__all__ = ["DEFAULT_LORA", "ENV_GGUF", "ResolvedModel", "default_lora", "resolve_gguf",
           "resolve_model"]

ENV_GGUF = "RTAGENT_GGUF"
DEFAULT_LORA = "default"
"""``lora`` value meaning: the shipped adapter for this model, if any (:mod:`models.adapters`)."""


@dataclass(frozen=True)
class ResolvedModel:
    """A model and adapter as chosen, and what the run-time file policy made of them.

    - ``gguf``: the model file (verified: a readable GGUF; an embedded one by its sha256).
    - ``adapter``: the LoRA adapter GGUF to apply, or None.
    - ``run_file``: the file llama.cpp loads (``run_file.path``: ``gguf`` or its re-encoded
      copy) and the adapter merged into it, if it is (``run_file.lora_merged``: then no
      context applies it again).
    """

    gguf: Path
    adapter: Path | None
    run_file: RunFile

    @property
    def runtime_adapter(self) -> Path | None:
        """The adapter to apply at run time: None without one, or where it is merged."""
        return None if self.run_file.lora_merged is not None else self.adapter


def resolve_gguf(model: str | Path | None = None) -> Path:
    """The model file alone (a name, a path, ``$RTAGENT_GGUF`` or the default), verified;
    for what needs no adapter or run-time file (training on it, another program)."""
    if isinstance(model, str) and model in GGUF_MODELS:
        return embedded_gguf(model)
    chosen = model or os.environ.get(ENV_GGUF)
    return check_gguf(chosen) if chosen else embedded_gguf(DEFAULT_GGUF)


def resolve_model(model: str | Path | None = None,
                  lora: str | Path | None = DEFAULT_LORA) -> ResolvedModel:
    """``model`` and ``lora`` chosen as the module docstring says, with their run-time file."""
    gguf = resolve_gguf(model)
    if lora is None:
        adapter = None
    elif str(lora) == DEFAULT_LORA:
        adapter = default_adapter(gguf)
    else:
        adapter = Path(lora)
    return ResolvedModel(gguf, adapter, runtime_gguf(gguf, adapter))


def default_lora(decoder: str) -> str | None:
    """The adapter a decoder gets unless one is named: the shipped one for ``simpletool``
    (trained on its compact call format), none for the JSON ``baseline``."""
    return DEFAULT_LORA if decoder == "simpletool" else None
