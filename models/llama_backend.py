"""The low-level llama.cpp layer: model, multi-sequence context, batches, LoRA.

Honest layers (as llama-cpp-python does it): raw bindings
(``llama_cpp.llama_cpp``) → resource-owning wrappers here (:class:`LlamaModel`,
:class:`LlamaContext`, each with ``close()``) → the decoders.

Why not the high-level ``Llama()``: it does not pass ``n_seq_max``, so it cannot
hold several sequences that share one prefix. Here the context is created with
``llama_init_from_model``, ``n_seq_max`` > 1 and a unified KV cache
(``kv_unified``), sequences are forked with ``llama_memory_seq_cp``, and one
``llama_batch`` carries tokens of different ``seq_id`` s, with logits requested
only where a decision is made.

:class:`LlamaContext` also keeps the tokens each sequence holds, so a new
prompt evaluates only what differs from the cached one (prefix KV reuse).
"""

from __future__ import annotations

import ctypes
import os
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from realtime.errors import ConfigError, RtAgentError

__all__ = [
    "BackendError",
    "BackendOptions",
    "BatchItem",
    "ContextOverflowError",
    "LlamaContext",
    "LlamaModel",
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
    - ``lora_path`` / ``lora_scale``: a llama.cpp LoRA adapter GGUF applied on top.
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


_BACKEND_READY = False


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
    import ctypes

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


class LlamaModel:
    """A loaded GGUF model and its vocabulary. Close it (or use ``with``).

    ``path`` is the file asked for; ``loaded_path`` the one llama.cpp loads, which for
    an embedded model is its run-time encoding (:func:`models.artifacts.runtime_gguf`),
    with ``options.lora_path`` merged into it where that could be done
    (``merged_lora``; a context over this model then applies no other copy of it).
    """

    def __init__(self, path: str | Path, options: BackendOptions | None = None) -> None:
        global _BACKEND_READY
        from models.artifacts import runtime_gguf

        self.options = options or BackendOptions()
        self.path = Path(path)
        lib, logger = _lib()
        self._lib = lib
        logger.set_verbose(self.options.verbose)
        if not _BACKEND_READY:
            lib.llama_backend_init()
            _BACKEND_READY = True
        if not self.path.is_file():
            raise BackendError(f"model file not found at {self.path}")
        run = runtime_gguf(self.path, self.options.lora_path, self.options.lora_scale)
        self.loaded_path, self.merged_lora = run.path, run.lora_merged
        params = lib.llama_model_default_params()
        params.n_gpu_layers = self.options.n_gpu_layers if self.options.n_gpu_layers >= 0 else 999
        # Extra CPU buffer types (AMX tiles, repacking) are off unless asked for: in some VMs
        # the CPU advertises AMX but its tile instructions trap (SIGILL at the first decode).
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = os.environ.get("RTAGENT_LLAMA_EXTRA_BUFTS") == "1"
        self.ptr = lib.llama_model_load_from_file(str(self.loaded_path).encode(), params)
        if not self.ptr:
            raise BackendError(
                f"llama.cpp could not load {self.loaded_path} (corrupt, truncated, or an "
                "architecture this llama.cpp build does not know); check it with "
                "`rtagent doctor` or point --model at another GGUF"
            )
        self.vocab = lib.llama_model_get_vocab(self.ptr)
        self.n_vocab = int(lib.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(lib.llama_model_n_ctx_train(self.ptr))
        self._pieces: list[bytes] | None = None
        self.contexts: weakref.WeakSet[LlamaContext] = weakref.WeakSet()

    # ----------------------------------------------------------- tokens
    def tokenize(self, text: str, *, add_special: bool = False,
                 parse_special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        n_max = len(data) + 16
        buf = (self._lib.llama_token * n_max)()
        n = self._lib.llama_tokenize(self.vocab, data, len(data), buf, n_max,
                                     add_special, parse_special)
        if n < 0:  # buffer too small: -n is the size needed
            n_max = -n
            buf = (self._lib.llama_token * n_max)()
            n = self._lib.llama_tokenize(self.vocab, data, len(data), buf, n_max,
                                         add_special, parse_special)
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for (special tokens as empty)."""
        if self._pieces is not None:
            return self._pieces[token]
        buf = ctypes.create_string_buffer(64)
        n = self._lib.llama_token_to_piece(self.vocab, token, buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self.vocab, token, buf, -n, 0, False)
        return buf.raw[:n]

    def pieces(self) -> list[bytes]:
        """Every token's bytes, computed once (the constraint masks are built from it)."""
        if self._pieces is None:
            self._pieces = [self.piece(t) for t in range(self.n_vocab)]
        return self._pieces

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def is_eog(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self.vocab, token))

    def eog_tokens(self) -> list[int]:
        """End-of-generation tokens (EOS, EOT, ``<|im_end|>``, ``<end_of_turn>``...)."""
        found = [t for t in (self._lib.llama_vocab_eos(self.vocab),
                             self._lib.llama_vocab_eot(self.vocab)) if t >= 0]
        return sorted({t for t in found if self.is_eog(t)})

    @property
    def add_bos(self) -> bool:
        return bool(self._lib.llama_vocab_get_add_bos(self.vocab))

    def bos(self) -> int:
        return int(self._lib.llama_vocab_bos(self.vocab))

    # ----------------------------------------------------------- chat template
    def chat_template(self) -> str | None:
        raw = self._lib.llama_model_chat_template(self.ptr, None)
        return raw.decode("utf-8") if raw else None

    def apply_chat_template(self, template: str, messages: Sequence[dict[str, str]],
                            add_assistant: bool) -> str:
        return apply_chat_template(template, messages, add_assistant)

    def close(self) -> None:
        """Free the model, after its contexts (llama.cpp frees the model's LoRA adapters
        with it: a context freed later would free its adapter twice)."""
        for ctx in list(getattr(self, "contexts", ())):
            ctx.close()
        if getattr(self, "ptr", None):
            self._lib.llama_model_free(self.ptr)
            self.ptr = None

    def __enter__(self) -> LlamaModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


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


@dataclass(frozen=True)
class BatchItem:
    """One token of a batch: where it goes and whether its logits are wanted."""

    token: int
    pos: int
    seq_ids: tuple[int, ...]
    logits: bool = False


def _flash_attn_type(lib, opts: BackendOptions) -> int:  # type: ignore[no-untyped-def]
    if opts.flash_attn is None:
        return int(lib.LLAMA_FLASH_ATTN_TYPE_DISABLED if opts.n_gpu_layers == 0
                   else lib.LLAMA_FLASH_ATTN_TYPE_AUTO)
    return int(lib.LLAMA_FLASH_ATTN_TYPE_ENABLED if opts.flash_attn
               else lib.LLAMA_FLASH_ATTN_TYPE_DISABLED)


class LlamaContext:
    """A multi-sequence llama.cpp context over one model, with prefix caching.

    ``tokens[s]`` mirrors what sequence ``s`` holds in the KV cache.
    """

    def __init__(self, model: LlamaModel, options: BackendOptions | None = None) -> None:
        self.model = model
        self.options = opts = options or model.options
        lib = self._lib = model._lib
        params = lib.llama_context_default_params()
        params.n_ctx = opts.n_ctx_tokens
        params.n_batch = opts.n_batch_tokens
        params.n_ubatch = opts.n_batch_tokens
        params.n_seq_max = opts.n_seq_max
        threads = opts.n_threads or default_threads()
        params.n_threads = threads
        params.n_threads_batch = threads
        params.kv_unified = True  # one cache, so forks share the prefix cells
        params.swa_full = True  # sliding-window models (Gemma 3) must keep every cell to rewind
        params.no_perf = True
        params.flash_attn_type = _flash_attn_type(lib, opts)
        self.n_threads = threads
        self.ptr = lib.llama_init_from_model(model.ptr, params)
        if not self.ptr:
            raise BackendError(
                f"llama.cpp could not create a context (n_ctx={opts.n_ctx_tokens}, "
                f"n_seq_max={opts.n_seq_max}); lower n_ctx_tokens or free memory"
            )
        self.n_ctx = int(lib.llama_n_ctx(self.ptr))
        self.mem = lib.llama_get_memory(self.ptr)
        self._batch = lib.llama_batch_init(opts.n_batch_tokens, 0, opts.n_seq_max)
        self.tokens: list[list[int]] = [[] for _ in range(opts.n_seq_max)]
        self._adapter = None
        self.forward_passes = 0
        model.contexts.add(self)
        if opts.lora_path is not None and not self._is_merged(opts.lora_path):
            self.load_lora(opts.lora_path, opts.lora_scale)

    def _is_merged(self, path: str | Path) -> bool:
        merged = self.model.merged_lora
        return merged is not None and Path(path).resolve() == merged.resolve()

    # ----------------------------------------------------------- LoRA
    def load_lora(self, path: str | Path, scale: float = 1.0) -> None:
        """Apply a llama.cpp LoRA adapter GGUF (low-level adapter API); clears the cache."""
        lib = self._lib
        p = Path(path)
        if not p.is_file():
            raise BackendError(f"LoRA adapter not found at {p}; pass an existing adapter .gguf")
        if self.model.merged_lora is not None:
            raise ConfigError(f"this model runs with {self.model.merged_lora.name} merged into "
                              f"its weights; load a LlamaModel with lora_path={p} instead")
        adapter = lib.llama_adapter_lora_init(self.model.ptr, str(p).encode())
        if not adapter:
            raise BackendError(
                f"llama.cpp could not load the LoRA adapter {p} (corrupt, or trained for "
                "another base model)"
            )
        adapters = (lib.llama_adapter_lora_p_ctypes * 1)(adapter)
        scales = (ctypes.c_float * 1)(scale)
        if lib.llama_set_adapters_lora(self.ptr, adapters, 1, scales) != 0:
            lib.llama_adapter_lora_free(adapter)
            raise BackendError(f"llama.cpp could not apply the LoRA adapter {p}")
        self._adapter = adapter
        self.clear()

    # ----------------------------------------------------------- KV cache
    def clear(self) -> None:
        self._lib.llama_memory_clear(self.mem, True)
        self.tokens = [[] for _ in range(self.options.n_seq_max)]

    def truncate(self, seq: int, n_keep: int) -> None:
        """Drop every cell of ``seq`` from position ``n_keep`` on."""
        if n_keep < len(self.tokens[seq]):
            if not self._lib.llama_memory_seq_rm(self.mem, seq, n_keep, -1):
                raise BackendError(f"llama.cpp could not rewind sequence {seq} to {n_keep}")
            del self.tokens[seq][n_keep:]

    def drop(self, seq: int) -> None:
        self._lib.llama_memory_seq_rm(self.mem, seq, -1, -1)
        self.tokens[seq] = []

    def fork(self, src: int, dst: int) -> None:
        """``dst`` becomes a copy of ``src`` sharing its cells (no recomputation)."""
        self.drop(dst)
        self._lib.llama_memory_seq_cp(self.mem, src, dst, -1, -1)
        self.tokens[dst] = list(self.tokens[src])

    def n_used(self) -> int:
        return sum(len(t) for t in self.tokens)

    def set_threads(self, n: int) -> None:
        """CPU threads of the next forward passes (e.g. more once other work is idle)."""
        if n < 1:
            raise ConfigError(f"threads: expected >= 1, got {n}")
        if n != self.n_threads:
            self._lib.llama_set_n_threads(self.ptr, n, n)
            self.n_threads = n

    # ----------------------------------------------------------- evaluation
    def decode(self, items: Sequence[BatchItem]) -> list[int]:
        """Evaluate ``items`` in as few ``llama_decode`` calls as the batch size allows.

        Returns, for each item that asked for logits, the row to read with
        :meth:`logits` (valid until the next ``decode``). Items must be in
        position order per sequence; ``tokens`` is updated for the first seq id.
        """
        cap = self.options.n_batch_tokens
        rows: list[int] = []
        for start in range(0, len(items), cap):
            chunk = items[start:start + cap]
            if start + cap < len(items) and any(it.logits for it in chunk):
                raise BackendError("logits may only be requested in the last batch chunk")
            self._decode_chunk(chunk)
            rows = [i for i, it in enumerate(chunk) if it.logits]
        return rows

    def _decode_chunk(self, items: Sequence[BatchItem]) -> None:
        b = self._batch
        for i, it in enumerate(items):
            b.token[i] = it.token
            b.pos[i] = it.pos
            b.n_seq_id[i] = len(it.seq_ids)
            for j, s in enumerate(it.seq_ids):
                b.seq_id[i][j] = s
            b.logits[i] = 1 if it.logits else 0
        b.n_tokens = len(items)
        rc = self._lib.llama_decode(self.ptr, b)
        self.forward_passes += 1
        if rc != 0:
            raise BackendError(
                f"llama_decode failed (code {rc}) on {len(items)} tokens; the KV cache may be "
                f"full ({self.n_used()} of {self.n_ctx} cells) — shorten the prompt"
            )
        for it in items:
            for s in it.seq_ids:
                self.tokens[s].append(it.token)

    def logits(self, row: int) -> np.ndarray:
        """A copy of the logits of batch row ``row`` (float32, vocabulary-sized)."""
        ptr = self._lib.llama_get_logits_ith(self.ptr, row)
        if not ptr:
            raise BackendError(f"no logits for batch row {row}")
        return np.ctypeslib.as_array(ptr, shape=(self.model.n_vocab,)).copy()

    def append(self, seq: int, tokens: Sequence[int], want_logits: bool = True) -> int | None:
        """Append ``tokens`` to ``seq`` (jump-forward: one batch); logits row of the last."""
        if not tokens:
            return None
        pos0 = len(self.tokens[seq])
        if pos0 + len(tokens) > self.n_ctx:
            raise ContextOverflowError(
                f"{pos0 + len(tokens)} tokens do not fit the context window of {self.n_ctx}; "
                "shorten the prompt or raise n_ctx_tokens"
            )
        items = [BatchItem(t, pos0 + i, (seq,), want_logits and i == len(tokens) - 1)
                 for i, t in enumerate(tokens)]
        rows = self.decode(items)
        return rows[-1] if rows else None

    def sync_prefix(self, seq: int, tokens: Sequence[int]) -> int:
        """Make ``seq`` hold exactly ``tokens``, evaluating only what differs from the cache.

        Returns the logits row of the last token. If the cache already holds all
        of ``tokens``, the last one is re-evaluated to get its logits.
        """
        if not tokens:
            raise BackendError("empty prompt")
        if len(tokens) >= self.n_ctx:
            raise ContextOverflowError(
                f"the prompt is {len(tokens)} tokens but the context window is {self.n_ctx}; "
                "shorten the prompt (fewer tools or examples) or raise n_ctx_tokens"
            )
        cached = self.tokens[seq]
        n = 0
        limit = min(len(cached), len(tokens) - 1)  # always evaluate at least one token
        while n < limit and cached[n] == tokens[n]:
            n += 1
        self.truncate(seq, n)
        row = self.append(seq, tokens[n:])
        assert row is not None
        return row

    def close(self) -> None:
        lib = getattr(self, "_lib", None)
        if lib is None:
            return
        if getattr(self, "_batch", None) is not None:
            lib.llama_batch_free(self._batch)
            self._batch = None
        if getattr(self, "ptr", None):
            lib.llama_free(self.ptr)
            self.ptr = None
        if getattr(self, "_adapter", None):
            lib.llama_adapter_lora_free(self._adapter)
            self._adapter = None

    def __enter__(self) -> LlamaContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
