"""LoRA adapters in llama.cpp without torch: the GGUF export round trip, the shipped
adapter (loads, is matched to its base model only, raises exact match over the base
on a fixed slice of the eval sets), and the `rtagent tune` command's errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.adapters import ADAPTER_DIR, adapters, default_adapter, fingerprint
from models.tune.export import ExportError, lora_tensors, permute_rows, write_lora_gguf

ROOT = Path(__file__).resolve().parents[2]


def _reverse_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """transformers' un-permutation of llama q/k rows when it reads a GGUF."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


def test_permutation_undoes_transformers_reading_of_the_gguf() -> None:
    w = np.arange(24 * 3, dtype=np.float32).reshape(24, 3)
    assert np.array_equal(permute_rows(_reverse_permute(w, 3), 3), w)
    assert not np.array_equal(permute_rows(w, 3), w)
    with pytest.raises(ExportError, match="permute"):
        permute_rows(np.zeros((10, 2)), 3)


def test_tensor_names_and_q_k_permutation() -> None:
    a, b = np.ones((2, 8), np.float32), np.arange(16 * 2, dtype=np.float32).reshape(16, 2)
    state = {"base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight": a,
             "base_model.model.model.layers.3.self_attn.q_proj.lora_B.weight": b,
             "base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight": b}
    got = lora_tensors(state, "llama", n_head=4, n_head_kv=2)
    assert sorted(got) == ["blk.3.attn_q.weight.lora_a", "blk.3.attn_q.weight.lora_b",
                           "blk.3.attn_v.weight.lora_b"]
    assert np.array_equal(got["blk.3.attn_q.weight.lora_b"], permute_rows(b, 4))
    assert np.array_equal(got["blk.3.attn_v.weight.lora_b"], b)  # v is stored unpermuted
    assert np.array_equal(lora_tensors(state, "gemma3", 4, 2)["blk.3.attn_q.weight.lora_b"], b)
    with pytest.raises(ExportError, match="no llama.cpp name"):
        lora_tensors({"model.layers.0.mlp.fc9.lora_A.weight": a}, "llama", 4, 2)
    with pytest.raises(ExportError, match="no LoRA tensors"):
        lora_tensors({"model.embed_tokens.weight": a}, "llama", 4, 2)


def _random_state(info, rank: int, scale_b: float, seed: int = 0) -> dict[str, np.ndarray]:
    md, arch = info.metadata, info.architecture
    d = int(md[f"{arch}.embedding_length"])
    n_head, n_kv = int(md[f"{arch}.attention.head_count"]), int(md[f"{arch}.attention.head_count_kv"])
    kv = d // n_head * n_kv
    rng = np.random.default_rng(seed)
    state = {}
    for layer in range(int(md[f"{arch}.block_count"])):
        for module, out in (("q_proj", d), ("k_proj", kv), ("v_proj", kv)):
            key = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            state[f"{key}.lora_A.weight"] = rng.normal(0, 0.05, (rank, d)).astype(np.float32)
            state[f"{key}.lora_B.weight"] = rng.normal(0, scale_b, (out, rank)).astype(np.float32)
    return state


def _logits(base: Path, adapter: Path | None, prompt: str) -> np.ndarray:
    from models.llama_backend import BackendOptions, LlamaContext, LlamaModel
    from models.resolve import resolve_model

    run = resolve_model(base, adapter).run_file  # the file the decoders load (not merged here)
    opts = BackendOptions(n_ctx_tokens=256, n_seq_max=1, n_threads=2, lora_path=adapter)
    with LlamaModel(run.path, opts, merged_lora=run.lora_merged) as model, \
            LlamaContext(model, opts) as ctx:
        return ctx.logits(ctx.sync_prefix(0, model.tokenize(prompt, add_special=True)))


@pytest.mark.slow
def test_export_round_trip_loads_in_llama_cpp(default_gguf: Path, tmp_path: Path) -> None:
    import gguf

    from models.artifacts import describe_gguf

    info = describe_gguf(default_gguf)
    prompt = "The robot picks up the red cube and"
    base = _logits(default_gguf, None, prompt)
    zero = write_lora_gguf(_random_state(info, 2, 0.0), default_gguf, tmp_path / "zero.gguf",
                           alpha=4.0, extra={"base_sha256": "x" * 64, "recipe": {"seed": 1}})
    assert np.allclose(_logits(default_gguf, zero, prompt), base, atol=1e-3)  # B = 0: no change
    moved = write_lora_gguf(_random_state(info, 2, 0.05), default_gguf, tmp_path / "moved.gguf",
                            alpha=4.0)
    assert not np.allclose(_logits(default_gguf, moved, prompt), base, atol=1e-2)
    reader = gguf.GGUFReader(str(zero))
    fields = {k: reader.fields[k] for k in ("general.type", "adapter.type", "adapter.lora.alpha",
                                            "rtagent.recipe")}
    assert bytes(fields["general.type"].parts[-1]).decode() == "adapter"
    assert bytes(fields["adapter.type"].parts[-1]).decode() == "lora"
    assert float(fields["adapter.lora.alpha"].parts[-1][0]) == 4.0
    assert json.loads(bytes(fields["rtagent.recipe"].parts[-1]).decode()) == {"seed": 1}
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


@pytest.mark.slow
def test_llama_cpp_refuses_an_adapter_for_another_shape(default_gguf: Path, tmp_path: Path) -> None:
    from models.llama_backend import BackendError
    from models.tune.verify import check_loads

    state = {"model.layers.0.self_attn.q_proj.lora_A.weight": np.zeros((2, 7), np.float32),
             "model.layers.0.self_attn.q_proj.lora_B.weight": np.zeros((18, 2), np.float32)}
    bad = write_lora_gguf(state, default_gguf, tmp_path / "bad.gguf", alpha=2.0)
    with pytest.raises(BackendError):
        check_loads(default_gguf, bad)


# ---------------------------------------------------------------- the shipped adapter
def _shipped():
    found = adapters()
    if not found:
        pytest.skip("no adapter shipped in models/adapters yet")
    return found[0]


def test_shipped_adapter_is_small_and_matches_its_recipe() -> None:
    from models.artifacts import sha256_file

    adapter = _shipped()
    assert adapter.path.parent == ADAPTER_DIR
    assert adapter.path.stat().st_size < 10_000_000
    assert sha256_file(adapter.path) == adapter.recipe["adapter_sha256"]
    recipe = adapter.recipe["recipe"]
    assert recipe["data"]["seed"] == 0 and recipe["train"]["seed"] == 0
    assert adapter.recipe["training"]["steps"] >= 1
    assert set(adapter.base) >= {"sha256", "size", "fingerprint"}


@pytest.mark.slow
def test_default_adapter_only_for_its_base_model(default_gguf: Path, tmp_path: Path) -> None:
    from models.resolve import resolve_model

    adapter = _shipped()
    assert resolve_model().adapter == adapter.path  # "default": the one for the default model
    assert resolve_model(lora=None).adapter is None
    assert default_adapter(default_gguf) == adapter.path
    assert adapter.base["fingerprint"] == fingerprint(default_gguf)
    same = tmp_path / "same.gguf"
    shutil.copyfile(default_gguf, same)
    assert default_adapter(same) == adapter.path  # the same bytes under another name
    changed = tmp_path / "changed.gguf"
    shutil.copyfile(default_gguf, changed)
    with changed.open("r+b") as f:  # one byte changed near the end: another model
        f.seek(-100, os.SEEK_END)
        byte = f.read(1)
        f.seek(-100, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert default_adapter(changed) is None
    assert default_adapter(adapter.path) is None  # a valid GGUF, but no adapter is for it
    assert default_adapter(tmp_path / "absent.gguf") is None


@pytest.mark.slow
def test_shipped_adapter_raises_exact_match(default_gguf: Path) -> None:
    from models.evalsets.score import load_cases
    from models.tune.verify import ScoredCase, score_decoder

    adapter = _shipped()
    tools = {s: tuple(json.loads((ROOT / f).read_text())) for s, f in
             (("robot", "sim_envs/robot_tools.json"), ("voice", "audio/voice_tools.json"))}
    from control.tools import load_tool_specs

    cases = [ScoredCase(c, tuple(load_tool_specs(list(tools[s])))) for s in ("robot", "voice")
             for c in load_cases(s)[::15]]  # a fixed slice: every 15th case, 16 in all
    base, _ = score_decoder(default_gguf, None, cases, n_threads=2)
    tuned, rows = score_decoder(default_gguf, adapter.path, cases, n_threads=2)
    assert tuned.errors == 0
    assert tuned.exact > base.exact
    assert tuned.exact_rate >= 0.75, [r for r in rows if r["got"] != r["expected"]]


# ---------------------------------------------------------------- the command
def test_tune_help_and_missing_extra(monkeypatch, capsys) -> None:
    import sys

    from demos.cli import main

    with pytest.raises(SystemExit) as done:
        main(["tune", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--minutes" in out and "llama.cpp LoRA" in out
    monkeypatch.setitem(sys.modules, "peft", None)  # as if the extra were not installed
    assert main(["tune", "--steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "tune" in err and "pip install" in err and "torch==2.13.0" in err


@pytest.mark.slow
def test_the_shipped_adapter_runs_merged_into_the_weights(default_gguf: Path, tmp_path: Path,
                                                          monkeypatch) -> None:
    """Merged, the adapter computes what llama.cpp computes applying it at run time, and a
    context over the merged model applies no second copy of it."""
    from models.artifacts import GGUF_MODELS, describe_gguf
    from models.llama_backend import BackendOptions, LlamaContext, LlamaModel
    from models.resolve import resolve_model
    from models.runtime_file import run_type, runtime_gguf
    from realtime.errors import ConfigError

    monkeypatch.setenv("RTAGENT_CACHE", str(tmp_path))
    adapter = _shipped().path
    run = runtime_gguf(default_gguf, adapter)
    assert run.lora_merged == adapter and run.path.parent == tmp_path
    assert describe_gguf(run.path).quantization == run_type(GGUF_MODELS["smollm2-135m"])
    assert runtime_gguf(default_gguf, adapter, lora_scale=0.5).lora_merged is None  # at run time
    mine = tmp_path / "mine.gguf"  # not a shipped adapter (e.g. one being tried): at run time
    shutil.copyfile(adapter, mine)
    assert runtime_gguf(default_gguf, mine).lora_merged is None

    resolved = resolve_model(default_gguf, adapter)
    assert resolved.run_file == run and resolved.runtime_adapter is None
    opts = BackendOptions(n_ctx_tokens=256, n_seq_max=1, n_threads=2, lora_path=adapter)
    plain = BackendOptions(n_ctx_tokens=256, n_seq_max=1, n_threads=2)
    logits = {}
    with LlamaModel(run.path, opts, merged_lora=run.lora_merged) as merged, \
            LlamaContext(merged, opts) as ctx:
        assert ctx._adapter is None
        ids = merged.tokenize("Request: turn off the kitchen lights\nAnswer: set_light(room=",
                              add_special=True)
        logits["merged"] = ctx.logits(ctx.sync_prefix(0, ids)).copy()
        with pytest.raises(ConfigError, match="merged into its weights"):
            ctx.load_lora(adapter)
    with LlamaModel(runtime_gguf(default_gguf).path, plain) as model:
        for name, lora in (("base", None), ("applied", adapter)):
            with LlamaContext(model, BackendOptions(**{**plain.__dict__, "lora_path": lora})) as c:
                logits[name] = c.logits(c.sync_prefix(0, ids)).copy()
    change_merged = logits["merged"] - logits["base"]
    change_applied = logits["applied"] - logits["base"]
    assert np.abs(change_applied).mean() > 0.3  # the adapter matters on this prompt
    assert np.corrcoef(change_merged, change_applied)[0, 1] > 0.95


def test_an_adapter_that_does_not_fit_is_refused_before_merging(default_gguf: Path,
                                                                tmp_path: Path) -> None:
    import gguf

    from models.lora_merge import MergeError, merge_lora

    def adapter(name: str, a_shape: tuple[int, int], b_shape: tuple[int, int]) -> Path:
        path = tmp_path / f"{name.replace('.', '_')}.gguf"
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_type(gguf.GGUFType.ADAPTER)
        w.add_string(gguf.Keys.Adapter.TYPE, "lora")
        w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 8.0)
        w.add_tensor(f"{name}.lora_a", np.ones(a_shape, np.float32))
        w.add_tensor(f"{name}.lora_b", np.ones(b_shape, np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path

    out = tmp_path / "out.gguf"
    with pytest.raises(MergeError, match="the base model lacks.*blk.99"):
        merge_lora(default_gguf, adapter("blk.99.attn_q.weight", (4, 576), (576, 4)), out)
    with pytest.raises(MergeError, match="do not fit"):
        merge_lora(default_gguf, adapter("blk.0.attn_q.weight", (4, 100), (576, 4)), out)
    assert not out.exists()  # refused before a byte was written


def test_a_failed_merge_applies_the_adapter_at_run_time(default_gguf: Path, tmp_path: Path,
                                                        monkeypatch, caplog) -> None:
    import models.lora_merge as lora_merge
    from models.runtime_file import runtime_gguf

    def fail(*args, **kwargs):
        raise lora_merge.MergeError("blk.0.attn_q.weight: shapes do not fit")

    monkeypatch.setenv("RTAGENT_CACHE", str(tmp_path))
    monkeypatch.setattr(lora_merge, "merge_lora", fail)
    with caplog.at_level("WARNING", logger="rtagent.models"):
        run = runtime_gguf(default_gguf, _shipped().path)
    assert run.lora_merged is None and run.path.parent == tmp_path  # the plain re-encoded copy
    assert "applied at run time instead" in caplog.text and "do not fit" in caplog.text
    assert not list(tmp_path.glob("*tools*"))  # no merged file, whole or partial
