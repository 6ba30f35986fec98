"""Merge a llama.cpp LoRA adapter GGUF into its base model's weights (gguf-py, numpy).

llama.cpp applies an adapter at run time as two extra small matrix products per
adapted weight and layer; on this 2-core CPU that is ~9 ms more on every ~21 ms
single-token pass of SmolLM2-135M (measured), and the SimpleTool decoder's time
after a short prompt is mostly such passes. Merged (``W + alpha/rank * B @ A``),
the adapter costs nothing per pass. :func:`merge_lora` writes the merged model
with the adapted tensors as F16 (BF16 in a BF16 model) and the others as they were or re-encoded
(:func:`models.runtime_file.runtime_gguf` asks for the type the embedded model runs
as: BF16 where the CPU has native BF16 dot products, else Q8_0). Measured in Q8_0 on
all 240 eval cases (robot / voice), exact match 111 / 111 of 120 merged, against
111 / 113 with the adapter applied at run time to the same Q8_0 weights and
109 / 111 on the shipped Q4_1 weights (any re-rounding of the weights moves a few
near-tied cases either way); decode p50 682 / 295 ms against 726 / 336 and 934 / 372 ms.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from realtime.errors import RtAgentError

__all__ = ["MergeError", "merge_lora"]


class MergeError(RtAgentError):
    """The adapter does not fit the base model (missing or mis-shaped tensors)."""


def _pairs(lora) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # type: ignore[no-untyped-def]
    parts: dict[str, dict[str, np.ndarray]] = {}
    for t in lora.tensors:
        base, _, half = t.name.rpartition(".lora_")
        if half not in ("a", "b"):
            raise MergeError(f"{t.name}: not a LoRA tensor (expected NAME.lora_a / NAME.lora_b)")
        parts.setdefault(base, {})[half] = np.asarray(t.data, dtype=np.float32)
    missing = sorted(n for n, p in parts.items() if len(p) != 2)
    if missing:
        raise MergeError(f"the adapter lacks lora_a or lora_b for {missing[:3]}")
    return {n: (p["a"], p["b"]) for n, p in parts.items()}


def merge_lora(base_gguf: str | Path, lora_gguf: str | Path, out_gguf: str | Path,
               scale: float = 1.0, others: str | None = None) -> int:
    """Write ``base + scale * alpha / rank * B @ A`` to ``out_gguf``; returns the number
    of tensors changed. The changed tensors are F16, or BF16 where ``others`` is BF16
    (re-quantized, the small change the adapter makes drowns in the quantization step:
    measured, voice exact match 105 of 120 with them in Q8_0); ``others`` re-encodes the
    quantized tensors the adapter leaves alone (e.g. ``"Q8_0"``; None: as they are).
    :class:`MergeError` if the adapter does not fit the base."""
    import gguf

    base = gguf.GGUFReader(str(base_gguf))
    lora = gguf.GGUFReader(str(lora_gguf))
    alpha_field = lora.fields.get(gguf.Keys.Adapter.LORA_ALPHA)
    if alpha_field is None:
        raise MergeError(f"{lora_gguf} has no {gguf.Keys.Adapter.LORA_ALPHA}: not a LoRA adapter")
    alpha = float(alpha_field.contents())
    pairs = _pairs(lora)
    tensors = {t.name: t for t in base.tensors}
    unknown = sorted(set(pairs) - set(tensors))
    if unknown:
        raise MergeError(f"the adapter changes tensors the base model lacks: {unknown[:3]}")

    merged: dict[str, np.ndarray] = {}
    for name, (a, b) in pairs.items():
        t = tensors[name]
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        if w.shape != (b.shape[0], a.shape[1]) or a.shape[0] != b.shape[1]:
            raise MergeError(f"{name}: adapter shapes {a.shape} / {b.shape} do not fit the "
                             f"base tensor {w.shape}")
        rank = a.shape[0]
        merged[name] = w + (scale * alpha / rank) * (b @ a)
    arch = str(base.fields[gguf.Keys.General.ARCHITECTURE].contents())
    writer = gguf.GGUFWriter(str(out_gguf), arch)
    for field in base.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == gguf.Keys.General.FILE_TYPE and others:
            value = int(getattr(gguf.LlamaFileType, f"MOSTLY_{others.upper()}"))
        writer.add_key_value(field.name, value, kind, sub_type=sub)

    out: dict[str, tuple[np.ndarray, gguf.GGMLQuantizationType]] = {}
    qtype = getattr(gguf.GGMLQuantizationType, others.upper()) if others else None
    float_types = (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16)
    bf16 = gguf.GGMLQuantizationType.BF16
    merged_type = bf16 if qtype == bf16 else gguf.GGMLQuantizationType.F16
    for t in base.tensors:
        if t.name in merged:
            out[t.name] = gguf.quants.quantize(merged[t.name], merged_type), merged_type
        elif qtype is not None and t.tensor_type not in (*float_types, qtype):
            values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
            out[t.name] = gguf.quants.quantize(values, qtype), qtype
        else:
            out[t.name] = t.data, t.tensor_type
        arr, ttype = out[t.name]
        writer.add_tensor_info(t.name, arr.shape, arr.dtype, arr.nbytes, ttype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in base.tensors:
        writer.write_tensor_data(out[t.name][0], tensor_endianess=base.endianess)
    writer.close()
    return len(merged)
