"""Read a GGUF file's metadata (key/value header) without loading tensors.

The ``gguf`` package's reader maps and indexes every tensor, which takes seconds
on a busy 2-core machine; the decoder and ``rtagent doctor`` only need the
header, so this reads just that. Large arrays (the vocabulary) are skipped and
reported by length.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from realtime.errors import RtAgentError

__all__ = ["GGUFInfo", "GGUFFormatError", "read_gguf_metadata"]

GGUF_MAGIC = b"GGUF"

# GGUF value types (gguf spec): scalar struct formats, 8 = string, 9 = array.
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_KEEP_ARRAY_MAX = 64  # arrays longer than this (vocabularies, merges) are skipped

# llama.cpp's LLAMA_FTYPE values for `general.file_type`.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 28: "IQ4_XS", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4",
}


class GGUFFormatError(RtAgentError):
    """The file is not a readable GGUF (wrong magic, truncated or corrupt header)."""


@dataclass(frozen=True)
class GGUFInfo:
    """What the decoder needs to know about a GGUF model."""

    path: Path
    size_bytes: int
    version: int
    tensor_count: int
    architecture: str
    name: str
    quantization: str
    context_length: int
    vocab_size: int
    chat_template: str | None
    license: str | None
    bos_token_id: int | None
    eos_token_id: int | None
    adapter_type: str | None  # "lora" for a LoRA adapter file
    metadata: dict[str, Any]


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise GGUFFormatError("file ends inside the GGUF header (truncated download or copy?)")
    return data


def _unpack(f: BinaryIO, fmt: str) -> Any:
    return struct.unpack("<" + fmt, _read(f, struct.calcsize(fmt)))[0]


def _string(f: BinaryIO) -> str:
    n = _unpack(f, "Q")
    if n > 1 << 26:
        raise GGUFFormatError(f"implausible string length {n} in GGUF header (corrupt file)")
    return _read(f, n).decode("utf-8", errors="replace")


def _value(f: BinaryIO, vtype: int) -> Any:
    if vtype in _SCALAR:
        return _unpack(f, _SCALAR[vtype])
    if vtype == _STRING:
        return _string(f)
    if vtype == _ARRAY:
        etype, n = _unpack(f, "I"), _unpack(f, "Q")
        if n > 1 << 28:
            raise GGUFFormatError(f"implausible array length {n} in GGUF header (corrupt file)")
        if etype in _SCALAR and n > _KEEP_ARRAY_MAX:
            f.seek(struct.calcsize(_SCALAR[etype]) * n, 1)
            return f"<array of {n}>"
        items = [_value(f, etype) for _ in range(n)]
        return items if n <= _KEEP_ARRAY_MAX else f"<array of {n}>"
    raise GGUFFormatError(f"unknown GGUF value type {vtype} (corrupt file or newer GGUF version)")


def read_gguf_metadata(path: str | Path) -> GGUFInfo:
    """Parse the header of ``path``; raise :class:`GGUFFormatError` if it is not valid GGUF."""
    path = Path(path)
    size = path.stat().st_size
    meta: dict[str, Any] = {}
    with path.open("rb") as f:
        if _read(f, 4) != GGUF_MAGIC:
            raise GGUFFormatError(f"{path} is not a GGUF file (bad magic bytes)")
        version = _unpack(f, "I")
        if version not in (2, 3):
            raise GGUFFormatError(f"{path}: unsupported GGUF version {version} (expected 2 or 3)")
        tensor_count, kv_count = _unpack(f, "Q"), _unpack(f, "Q")
        if kv_count > 100_000 or tensor_count > 1_000_000:
            raise GGUFFormatError(f"{path}: implausible header counts (corrupt file)")
        for _ in range(kv_count):
            key = _string(f)
            meta[key] = _value(f, _unpack(f, "I"))
        if f.tell() > size:
            raise GGUFFormatError(f"{path}: header runs past the end of the file (truncated)")
    arch = str(meta.get("general.architecture", "unknown"))
    vocab = meta.get(f"{arch}.vocab_size")
    if vocab is None and isinstance(meta.get("tokenizer.ggml.tokens"), str):
        vocab = int(str(meta["tokenizer.ggml.tokens"]).split()[-1].rstrip(">"))
    ftype = meta.get("general.file_type")
    return GGUFInfo(
        path=path,
        size_bytes=size,
        version=version,
        tensor_count=tensor_count,
        architecture=arch,
        name=str(meta.get("general.name", path.stem)),
        quantization=FILE_TYPES.get(ftype, f"type {ftype}") if ftype is not None else "unknown",
        context_length=int(meta.get(f"{arch}.context_length", 0)),
        vocab_size=int(vocab or 0),
        chat_template=meta.get("tokenizer.chat_template"),
        license=meta.get("general.license"),
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
        adapter_type=meta.get("adapter.type"),
        metadata=meta,
    )
