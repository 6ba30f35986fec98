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

:class:`LlamaModel` loads exactly the file it is given: which file that is for a
model asked for (a re-encoded copy, an adapter merged in) is the run-time file
policy's choice (:mod:`models.runtime_file`, through :func:`models.resolve.resolve_model`).
Options, errors and the calls that need no model are in :mod:`models.llama_lib`
(re-exported here).
"""

from __future__ import annotations

import ctypes
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.llama_lib import (
    BackendError,
    BackendOptions,
    ContextOverflowError,
    _lib,
    apply_chat_template,
    cpu_features,
    default_threads,
    quantize,
    wait_policy,
    weight_type_known,
)
from realtime.errors import ConfigError

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


_BACKEND_READY = False


class LlamaModel:
    """A loaded GGUF model and its vocabulary. Close it (or use ``with``).

    llama.cpp loads ``path`` as it is. ``merged_lora``: the adapter already merged into
    its weights, if any (:class:`models.runtime_file.RunFile`); a context over this model
    then applies no other copy of it.
    """

    def __init__(self, path: str | Path, options: BackendOptions | None = None, *,
                 merged_lora: str | Path | None = None) -> None:
        global _BACKEND_READY

        self.options = options or BackendOptions()
        self.path = Path(path)
        self.merged_lora = Path(merged_lora) if merged_lora is not None else None
        lib, logger = _lib()
        self._lib = lib
        logger.set_verbose(self.options.verbose)
        if not _BACKEND_READY:
            lib.llama_backend_init()
            _BACKEND_READY = True
        if not self.path.is_file():
            raise BackendError(f"model file not found at {self.path}")
        params = lib.llama_model_default_params()
        params.n_gpu_layers = self.options.n_gpu_layers if self.options.n_gpu_layers >= 0 else 999
        # Extra CPU buffer types (AMX tiles, repacking) are off unless asked for: in some VMs
        # the CPU advertises AMX but its tile instructions trap (SIGILL at the first decode).
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = os.environ.get("RTAGENT_LLAMA_EXTRA_BUFTS") == "1"
        self.ptr = lib.llama_model_load_from_file(str(self.path).encode(), params)
        if not self.ptr:
            raise BackendError(
                f"llama.cpp could not load {self.path} (corrupt, truncated, or an "
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
