"""A peft LoRA adapter -> a llama.cpp LoRA adapter GGUF (gguf-py writer).

Written the way llama.cpp's ``convert_lora_to_gguf.py`` writes one:
``general.type = "adapter"``, ``adapter.type = "lora"``, ``adapter.lora.alpha``,
``general.architecture`` of the base, and per adapted weight two tensors
``blk.N.<name>.weight.lora_a`` (rank x in) and ``.lora_b`` (out x rank), where
``<name>`` is llama.cpp's (``attn_q``, ``attn_k``, ``attn_v``, ``attn_output``,
``ffn_gate``, ``ffn_up``, ``ffn_down``). llama.cpp scales by alpha / rank.

llama-family GGUFs store the q and k projections with their rows permuted for
llama.cpp's rope layout (``convert_hf_to_gguf.LlamaModel.permute``), and
transformers un-permutes them when it loads the GGUF. An adapter trained in
torch is therefore in the un-permuted layout, and ``lora_b`` of q and k (the
output rows) must get the same permutation, or the adapter loads and is subtly
wrong. Other architectures (gemma3) are stored unpermuted.

Extra keys ``rtagent.*`` carry the recipe and the base model's sha256
(llama.cpp ignores keys it does not know).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from models.gguf_meta import read_gguf_metadata
from realtime.errors import RtAgentError

__all__ = ["ExportError", "export_gguf", "lora_tensors", "permute_rows", "write_lora_gguf"]

_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_KEY = re.compile(r"(?:.*\.)?layers\.(\d+)\.(.+)\.lora_([AB])(?:\.default)?\.weight$")
_PERMUTED_ARCHS = frozenset({"llama"})


class ExportError(RtAgentError):
    """The adapter cannot be written as a llama.cpp LoRA GGUF."""


def permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row order: per head, interleave the two rotary halves."""
    rows = w.shape[0]
    if rows % (2 * n_head):
        raise ExportError(f"cannot permute {rows} rows into {n_head} heads")
    return (w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def lora_tensors(state: Mapping[str, Any], architecture: str, n_head: int,
                 n_head_kv: int) -> dict[str, np.ndarray]:
    """llama.cpp tensor name -> float32 array, from a peft state dict (lora_A / lora_B)."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        m = _KEY.match(key)
        if not m:
            continue
        layer, module, ab = int(m.group(1)), m.group(2), m.group(3)
        if module not in _NAMES:
            raise ExportError(f"no llama.cpp name for the adapted module {module!r}; adapt only "
                              f"{sorted(_NAMES)}")
        arr = value.detach().float().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if ab == "B" and architecture in _PERMUTED_ARCHS and module in ("self_attn.q_proj",
                                                                        "self_attn.k_proj"):
            arr = permute_rows(arr, n_head if module == "self_attn.q_proj" else n_head_kv)
        out[f"blk.{layer}.{_NAMES[module]}.weight.lora_{ab.lower()}"] = np.ascontiguousarray(arr)
    if not out:
        raise ExportError("the state dict holds no LoRA tensors (lora_A / lora_B)")
    return out


def export_gguf(peft_model: Any, base_gguf: str | Path, out_path: str | Path, *,
                alpha: float, dtype: str = "f16", extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``peft_model``'s adapter as a llama.cpp LoRA GGUF at ``out_path``."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(peft_model, save_embedding_layers=False)
    return write_lora_gguf(state, base_gguf, out_path,
                           alpha=alpha, dtype=dtype, extra=extra)


def write_lora_gguf(state: Mapping[str, Any], base_gguf: str | Path, out_path: str | Path, *,
                    alpha: float, dtype: str = "f16", extra: Mapping[str, Any] | None = None) -> Path:
    """Write a peft-style state dict (``...layers.N.<module>.lora_A/B.weight``: torch tensors or
    numpy arrays) as a llama.cpp LoRA GGUF for ``base_gguf``; atomically (temp file, rename)."""
    import gguf

    info = read_gguf_metadata(base_gguf)
    arch = info.architecture
    n_head = int(info.metadata.get(f"{arch}.attention.head_count", 0))
    n_head_kv = int(info.metadata.get(f"{arch}.attention.head_count_kv", n_head))
    if arch in _PERMUTED_ARCHS and not n_head:
        raise ExportError(f"{base_gguf} has no {arch}.attention.head_count; cannot permute q/k")
    tensors = lora_tensors(state, arch, n_head, n_head_kv)
    np_dtype = {"f16": np.float16, "f32": np.float32}.get(dtype)
    if np_dtype is None:
        raise ExportError(f"dtype: expected 'f16' or 'f32', got {dtype!r}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    w = gguf.GGUFWriter(str(tmp), arch)
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    w.add_name(f"{info.name} rtagent tools LoRA")
    for key, value in (extra or {}).items():
        w.add_string(f"rtagent.{key}", value if isinstance(value, str) else json.dumps(value))
    for name in sorted(tensors, key=_order):
        w.add_tensor(name, tensors[name].astype(np_dtype))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(out)
    return out


def _order(name: str) -> tuple[int, str]:
    parts = name.split(".")
    return int(parts[1]), ".".join(parts[2:])
