"""The run-time file policy: which file llama.cpp loads for a model (and adapter) asked for.

On this class of CPU (AVX-512, two cores) llama.cpp evaluates prompts ~30% faster
from Q8_0 weights than from Q4_1 (measured: 3.5 vs 5.1 ms a token after a
1,150-token prefix; a single-token pass costs the same), and the decoder's time is
mostly prompt. So an embedded model with a ``run_as`` encoding (the shipped Q4_1
SmolLM2) is re-encoded once into the cache directory (~1 s; BF16 where the CPU has
native BF16 dot products, see :func:`run_type`) and that copy is what
:class:`models.llama_backend.LlamaModel` is given; with an adapter (a shipped one, at
scale 1), the adapter is merged into it (:mod:`models.lora_merge`, ~6 s once), which
saves llama.cpp's per-pass cost of applying it. Q8_0 moves each weight by at most
1/254 of its block's largest magnitude (Q4_1's own step: 1/15 of the block's range).
On all 240 eval cases with the shipped adapter: exact match 111 / 111 of 120
(robot / voice) against 109 / 111 from the Q4_1 file with the adapter applied at
run time, decode p50 682 / 295 ms against 934 / 372 ms. ``RTAGENT_REENCODE=0``
loads the shipped file as it is; ``RTAGENT_RUN_AS`` forces the type.

Layering: this module imports the backend (to re-encode) and :mod:`models.artifacts`
(to know the shipped files); neither imports it back.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from models import llama_lib, lora_merge
from models.adapters import adapters
from models.artifacts import (
    GGUF_MODELS,
    EmbeddedModel,
    ModelNotFoundError,
    cache_dir,
    sha256_file,
    verified_sha256,
)
from realtime.errors import ConfigError

__all__ = ["ENV_REENCODE", "ENV_RUN_AS", "RunFile", "run_type", "runtime_gguf"]

log = logging.getLogger("rtagent.models")

ENV_REENCODE = "RTAGENT_REENCODE"
ENV_RUN_AS = "RTAGENT_RUN_AS"


@dataclass(frozen=True)
class RunFile:
    """What llama.cpp loads for a model (and adapter) asked for."""

    path: Path
    lora_merged: Path | None = None  # an adapter already merged into the weights of ``path``


def runtime_gguf(path: str | Path, lora: str | Path | None = None,
                 lora_scale: float = 1.0) -> RunFile:
    """The file llama.cpp should load for ``path`` (and ``lora``).

    For an embedded model with a ``run_as`` encoding: its re-encoded copy in the cache
    directory, with ``lora`` merged into the weights if it is a shipped adapter
    (:mod:`models.adapters`) at scale 1 (made on first use, remade if damaged). For any
    other file, or if that fails, ``path`` itself. An adapter not merged is applied at
    run time (so one being trained or tried fills no cache).
    """
    p = Path(path)
    model = None if os.environ.get(ENV_REENCODE, "1") == "0" else _run_as_model(p)
    if model is None:
        return RunFile(p)
    if (lora is not None and lora_scale == 1.0
            and Path(lora).resolve() in {a.path.resolve() for a in adapters()}):
        merged = _derived(p, model, Path(lora))
        if merged is not None:
            return RunFile(merged, Path(lora))
    return RunFile(_derived(p, model, None) or p)


def run_type(model: EmbeddedModel) -> str | None:
    """The weight type ``model`` runs as on this machine (None: as shipped).

    ``$RTAGENT_RUN_AS`` if set; else BF16 where llama.cpp's CPU backend has native BF16
    dot products (AVX512_BF16): for SmolLM2-135M a batch of 30 tokens after 850 cached
    takes 54 ms in BF16 vs 85 in Q8_0 and 123 as shipped (Q4_1); one token 12 vs 10 ms;
    else ``model.run_as`` (Q8_0: on AVX2 alone BF16 is emulated, and slow).
    """
    if model.run_as is None:
        return None
    forced = os.environ.get(ENV_RUN_AS, "").upper()
    if forced:
        if not llama_lib.weight_type_known(forced):
            raise ConfigError(f"{ENV_RUN_AS}={forced}: not a llama.cpp weight type "
                              "(e.g. BF16, Q8_0, F16)")
        return forced

    return "BF16" if "AVX512_BF16" in llama_lib.cpu_features() else model.run_as


def _run_as_model(path: Path) -> EmbeddedModel | None:
    # Only models with a run-time encoding are located (locating Gemma assembles it).
    for model in GGUF_MODELS.values():
        if model.run_as is None:
            continue
        try:
            shipped = model.locate()
        except ModelNotFoundError:
            continue
        if shipped.is_file() and path.resolve() == shipped.resolve():
            return model
    return None


def _derived(shipped: Path, model: EmbeddedModel, lora: Path | None) -> Path | None:
    """``shipped`` (+ ``lora``) as :func:`run_type` in the cache; None if it can't be made."""
    run_as = run_type(model)
    assert run_as is not None
    try:
        lora_sha = sha256_file(lora) if lora is not None else None
    except OSError:
        return None  # no adapter file: loading it at run time says so
    tag = f"+{lora.stem}-{lora_sha[:12]}" if lora is not None and lora_sha else ""
    target = cache_dir() / f"{shipped.stem}{tag}.as-{run_as}.gguf"
    stamp = target.with_suffix(".json")
    want = {"source_sha256": model.sha256, "lora_sha256": lora_sha, "type": run_as}
    try:
        made = json.loads(stamp.read_text())
        if (all(made.get(k) == v for k, v in want.items()) and target.is_file()
                and verified_sha256(target, str(made.get("sha256")))):
            return target
    except (OSError, ValueError):
        pass
    what = f"{shipped.name} with {lora.name} merged" if lora else shipped.name
    log.info("preparing %s as %s in %s (once)", what, run_as, target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        if lora is not None:
            lora_merge.merge_lora(shipped, lora, partial, others=run_as)
        else:
            llama_lib.quantize(shipped, partial, run_as)
        stamp.write_text(json.dumps({"source": shipped.name, "lora": lora.name if lora else None,
                                     **want, "sha256": sha256_file(partial)}))
        partial.replace(target)  # atomic: a process loading it never sees half a file
    except (llama_lib.BackendError, lora_merge.MergeError, OSError, ValueError) as exc:
        log.warning("could not prepare %s as %s (%s); %s", what, run_as, exc,
                    "the adapter is applied at run time instead" if lora
                    else "loading it as shipped")
        return None
    finally:
        partial.unlink(missing_ok=True)
    return target
