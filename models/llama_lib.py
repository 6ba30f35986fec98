"""llama.cpp's library before any model is loaded: its options, errors and model-free calls.

:func:`_lib` imports the bindings (after choosing the OpenMP :func:`wait_policy`, which
libgomp reads once, when it loads); :func:`cpu_features`, :func:`weight_type_known`,
:func:`quantize` and :func:`apply_chat_template` need no model. The resource-owning
wrappers over a loaded model are in :mod:`models.llama_backend`.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from realtime.errors import ConfigError, RtAgentError

__all__ = [
    "BackendError",
    "BackendOptions",
    "ContextOverflowError",
    "apply_chat_template",
    "cpu_features",
    "default_threads",
    "quantize",
    "wait_policy",
    "weight_type_known",
]


class BackendError(RtAgentError):
    """llama.cpp failed to load a model or adapter, or to evaluate a batch."""


class ContextOverflowError(BackendError):
    """The prompt (plus the answer's room) does not fit the context window."""


def default_threads() -> int:
    """Threads for llama.cpp on CPU: the cores this process may run on, at most 8.

    Set on purpose: more threads than cores makes llama.cpp's spin-waits fight.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


@dataclass(frozen=True)
class BackendOptions:
    """How to load the model and size the context.

    - ``n_ctx_tokens``: context window shared by all sequences (unified KV cache).
    - ``n_seq_max``: most sequences alive at once (1 main + parallel heads).
    - ``n_batch_tokens``: most tokens one ``llama_decode`` takes.
    - ``n_threads``: CPU threads (None: :func:`default_threads`).
    - ``n_gpu_layers``: layers offloaded to the GPU (0: CPU only; -1: all).
    - ``lora_path`` / ``lora_scale``: a llama.cpp LoRA adapter GGUF each context applies
      on top (none where the model has it merged: ``LlamaModel(merged_lora=...)``).
    - ``flash_attn``: llama.cpp's flash attention; None: off on the CPU, llama.cpp's
      choice (on where supported) with GPU offload. On this 2-core CPU its kernel
      walks the cached keys one by one: a 30-token batch after 850 cached tokens
      takes 99 ms with it vs 69 ms without (batches of 1-4 tokens: the same).
    - ``verbose``: let llama.cpp print its log.
    """

    n_ctx_tokens: int = 2048
    n_seq_max: int = 8
    n_batch_tokens: int = 512
    n_threads: int | None = None
    n_gpu_layers: int = 0
    lora_path: str | Path | None = None
    lora_scale: float = 1.0
    flash_attn: bool | None = None
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.n_ctx_tokens < 64:
            raise ConfigError(f"n_ctx_tokens: expected >= 64, got {self.n_ctx_tokens}")
        if not 1 <= self.n_seq_max <= 64:
            raise ConfigError(f"n_seq_max: expected 1..64, got {self.n_seq_max}")
        if self.n_batch_tokens < 16:
            raise ConfigError(f"n_batch_tokens: expected >= 16, got {self.n_batch_tokens}")
        if self.n_threads is not None and self.n_threads < 1:
            raise ConfigError(f"n_threads: expected >= 1 or None, got {self.n_threads}")
        if self.n_gpu_layers < -1:
            raise ConfigError(f"n_gpu_layers: expected -1 (all) or >= 0, got {self.n_gpu_layers}")


_SPIN_ROUNDS = "1000"


def wait_policy(policy: Literal["passive", "spin"]) -> None:
    """How llama.cpp's OpenMP threads wait at the ~450 barriers of a forward pass.

    ``"passive"`` (the default): sleep at once. Where other processes share the cores
    (the demos) a spinning thread holds the core the thread it waits for needs: one
    busy process beside a decode took it from 0.65 s to 15 s with OpenMP's default spin.
    ``"spin"``: spin ~1000 rounds, then sleep; for a process that has the cores to
    itself (``rtagent calls``, ``bench decoder``): waking sleeping threads costs ~20 ms
    a pass in this VM (one token after 850 cached: 31 ms passive, 11 ms spinning;
    beside a busy process: 17 vs 40 ms).

    libgomp reads it once, when it loads: call before the first model. A user's own
    ``OMP_WAIT_POLICY`` / ``GOMP_SPINCOUNT`` win.
    """
    if policy not in ("passive", "spin"):
        raise ConfigError(f"wait policy: expected passive or spin, got {policy!r}")
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    if policy == "spin":
        os.environ["GOMP_SPINCOUNT"] = _SPIN_ROUNDS
    else:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def _lib():  # type: ignore[no-untyped-def]
    wait_policy("passive")  # unless chosen before (no effect once libgomp is loaded)
    try:
        import llama_cpp._logger as llama_logger
        import llama_cpp.llama_cpp as lib
    except ImportError as exc:
        raise BackendError(
            f"llama-cpp-python is not importable ({exc}); install it with the README's "
            "set-up command (pip install llama-cpp-python==0.3.36)"
        ) from exc
    return lib, llama_logger


def cpu_features() -> frozenset[str]:
    """The CPU features llama.cpp's CPU backend uses here (``AVX2``, ``AVX512_BF16``...)."""
    lib, _ = _lib()
    info = lib.llama_print_system_info().decode(errors="replace")
    return frozenset(key.split(":")[-1].strip() for part in info.split("|") if "=" in part
                     for key, value in [part.rsplit("=", 1)] if value.strip() == "1")


def _ftype(lib, type_name: str) -> int | None:  # type: ignore[no-untyped-def]
    return getattr(lib, f"LLAMA_FTYPE_MOSTLY_{type_name.upper()}", None)


def weight_type_known(type_name: str) -> bool:
    """Whether llama.cpp can re-encode weights as ``type_name`` (``"BF16"``, ``"Q8_0"``...)."""
    lib, _ = _lib()
    return _ftype(lib, type_name) is not None


def quantize(src: str | Path, dst: str | Path, type_name: str) -> None:
    """Write ``src`` re-encoded as llama.cpp weight type ``type_name`` (e.g. ``"Q8_0"``)
    to ``dst`` with llama.cpp's quantizer (re-quantizing a quantized file is allowed)."""
    lib, logger = _lib()
    logger.set_verbose(False)  # its per-tensor log is noise; failure is the return code
    ftype = _ftype(lib, type_name)
    if ftype is None:
        raise ConfigError(f"unknown llama.cpp weight type {type_name!r} (e.g. Q8_0, Q4_0, F16)")
    params = lib.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = default_threads()
    if lib.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)) != 0:
        raise BackendError(f"llama.cpp could not re-encode {src} as {type_name}")


def apply_chat_template(template: str, messages: Sequence[Mapping[str, str]],
                        add_assistant: bool) -> str:
    """Render ``messages`` with llama.cpp's built-in template engine (no model needed).

    ``template`` is a GGUF's Jinja template (llama.cpp recognises the known
    families from it) or a built-in name such as ``"chatml"`` or ``"gemma"``.
    """
    lib, _ = _lib()
    keep = [(m["role"].encode(), m["content"].encode()) for m in messages]
    chat = (lib.llama_chat_message * len(keep))()
    for i, (role, content) in enumerate(keep):
        chat[i].role = role
        chat[i].content = content
    size = 4096 + sum(len(c) + len(r) + 32 for r, c in keep)
    buf = ctypes.create_string_buffer(size)
    n = lib.llama_chat_apply_template(template.encode(), chat, len(keep), add_assistant, buf, size)
    if n < 0:
        raise BackendError(f"llama.cpp does not know the chat template {template[:60]!r}")
    if n > size:
        buf = ctypes.create_string_buffer(n)
        n = lib.llama_chat_apply_template(template.encode(), chat, len(keep), add_assistant,
                                          buf, n)
    return buf.raw[:n].decode("utf-8")
