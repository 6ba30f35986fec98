"""The one resolver: which model and adapter a run uses, and what it hands the decoders
(real embedded files; ``RTAGENT_REENCODE=0`` keeps the run-time file policy out of it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models import artifacts
from models.adapters import adapters
from models.factory import decoder_names, make_decoder
from models.resolve import DEFAULT_LORA, ResolvedModel, default_lora, resolve_model
from models.runtime_file import RunFile
from realtime.errors import ConfigError


@pytest.fixture
def as_shipped(monkeypatch):
    monkeypatch.setenv("RTAGENT_REENCODE", "0")
    monkeypatch.delenv("RTAGENT_GGUF", raising=False)


def test_the_model_is_a_path_a_name_the_env_or_the_default(as_shipped, default_gguf: Path,
                                                           tmp_path: Path, monkeypatch) -> None:
    embedded = artifacts.embedded_gguf()
    assert resolve_model(lora=None) == ResolvedModel(embedded, None, RunFile(embedded))
    copy = tmp_path / "mine.gguf"
    shutil.copy(default_gguf, copy)
    monkeypatch.setenv("RTAGENT_GGUF", str(copy))
    assert resolve_model(lora=None).gguf == copy
    assert resolve_model("smollm2-135m", None).gguf == embedded  # a name wins over the env
    assert resolve_model(str(default_gguf), None).gguf == default_gguf
    with pytest.raises(artifacts.ModelNotFoundError, match="--model"):
        resolve_model(tmp_path / "absent.gguf")


def test_the_default_adapter_is_the_one_trained_on_that_file(as_shipped, default_gguf: Path,
                                                             tmp_path: Path) -> None:
    if not adapters():
        pytest.skip("no adapter shipped in models/adapters")
    shipped = adapters()[0].path
    model = resolve_model()
    assert model.adapter == shipped and resolve_model(default_gguf, DEFAULT_LORA) == model
    assert model.runtime_adapter == shipped  # not merged as shipped: applied at run time
    other = tmp_path / "other.gguf"
    shutil.copy(shipped, other)  # a valid GGUF no adapter is trained on
    assert resolve_model(other).adapter is None
    mine = tmp_path / "mine-lora.gguf"
    assert resolve_model(lora=mine).adapter == mine  # a path is taken as it is
    assert resolve_model(lora=None).adapter is None


def test_the_shipped_adapter_is_for_simpletool_only() -> None:
    assert default_lora("simpletool") == DEFAULT_LORA
    assert default_lora("baseline") is None


def test_make_decoder_takes_a_resolved_model(as_shipped, default_gguf: Path) -> None:
    assert decoder_names() == ["baseline", "simpletool"]
    with pytest.raises(ConfigError, match="resolve_model"):
        make_decoder("simpletool", default_gguf)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown decoder 'nope'"):
        make_decoder("nope", resolve_model(lora=None))
