"""Shipped llama.cpp LoRA adapters, and which base model each one is for.

::

    from models.adapters import default_adapter
    path = default_adapter(model_gguf)      # the adapter trained on exactly this file, or None

(which model and adapter a run uses is :func:`models.resolve.resolve_model`'s choice:
``lora="default"`` asks for this one)

Each adapter ``NAME.gguf`` ships with ``NAME.json``, its recipe: the options
``rtagent tune`` ran with (data seed, LoRA and training options, tool files),
what the run did (steps, minutes, loss), the adapter's sha256 and the base
model's identity (size, sha256, and a cheap fingerprint of its first and last
MiB). An adapter is offered only for the exact base file it was trained on:
:func:`default_adapter` matches size and fingerprint (no full hash at start-up).
Reproduce one with ``rtagent tune --recipe models/adapters/NAME.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ADAPTER_DIR", "Adapter", "adapters", "base_identity", "default_adapter", "fingerprint"]

ADAPTER_DIR = Path(__file__).resolve().parent
_MIB = 1 << 20
_cache: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class Adapter:
    """One shipped adapter: its file, its recipe and the base model it is for."""

    path: Path
    recipe: dict[str, Any]

    @property
    def base(self) -> dict[str, Any]:
        return dict(self.recipe.get("base", {}))


def fingerprint(path: str | Path) -> str:
    """sha256 of the size, the first MiB and the last MiB (cheap; cached per file state)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _cache:
        h = hashlib.sha256(str(st.st_size).encode())
        with p.open("rb") as f:
            h.update(f.read(_MIB))
            if st.st_size > _MIB:
                f.seek(max(_MIB, st.st_size - _MIB))
                h.update(f.read(_MIB))
        _cache[key] = h.hexdigest()
    return _cache[key]


def base_identity(path: str | Path, full: bool = True) -> dict[str, Any]:
    """What a recipe records of its base model: name, size, fingerprint (and sha256)."""
    p = Path(path)
    out: dict[str, Any] = {"file": p.name, "size": p.stat().st_size, "fingerprint": fingerprint(p)}
    if full:
        from models.artifacts import sha256_file

        out["sha256"] = sha256_file(p)
    return out


def adapters(directory: Path = ADAPTER_DIR) -> list[Adapter]:
    """Every adapter in ``directory`` that has both its recipe and its GGUF."""
    found = []
    for recipe_path in sorted(directory.glob("*.json")):
        try:
            recipe = json.loads(recipe_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        gguf = recipe_path.with_name(str(recipe.get("adapter", recipe_path.stem + ".gguf")))
        if isinstance(recipe, dict) and gguf.is_file():
            found.append(Adapter(gguf, recipe))
    return found


def default_adapter(model_path: str | Path, directory: Path = ADAPTER_DIR) -> Path | None:
    """The shipped adapter trained on exactly the base GGUF at ``model_path``, else None."""
    path = Path(model_path)
    if not path.is_file():
        return None
    size = path.stat().st_size
    for adapter in adapters(directory):
        base = adapter.base
        if base.get("size") == size and base.get("fingerprint") == fingerprint(path):
            return adapter.path
    return None
