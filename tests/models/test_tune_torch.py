"""Fine-tuning parts that need the optional ``tune`` extra (torch + transformers + peft):
the exported adapter computes in llama.cpp what it computes in torch (q/k permutation
included), and a few training steps run and lower nothing to NaN. Skipped cleanly
without the extra (CI's set-up does not install it)."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("peft")
pytest.importorskip("transformers")

pytestmark = [pytest.mark.slow,
              # transformers/peft internals warn about their own deprecations
              pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def base_model(default_gguf: Path):
    from models.tune.train import load_base

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_base(default_gguf)


def test_torch_and_llama_cpp_agree_on_a_random_adapter(base_model, default_gguf: Path,
                                                       tmp_path: Path) -> None:
    import torch

    from models.llama_backend import BackendOptions, LlamaContext, LlamaModel
    from models.runtime_file import runtime_gguf
    from models.tune.export import export_gguf
    from models.tune.train import TrainOptions, add_lora

    opts = TrainOptions(rank=4, alpha=8.0, target_modules=("q_proj", "k_proj", "v_proj", "o_proj",
                                                           "down_proj"))
    peft_model = add_lora(base_model, opts)
    torch.manual_seed(1)
    with torch.no_grad():  # peft starts with B = 0: give B weights so the adapter matters
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    out = export_gguf(peft_model, default_gguf, tmp_path / "random.gguf", alpha=opts.alpha,
                      dtype="f32")
    llama_opts = BackendOptions(n_ctx_tokens=256, n_seq_max=1, n_threads=2)
    with LlamaModel(runtime_gguf(default_gguf).path, llama_opts) as model:  # as the decoders run it
        ids = model.tokenize("Pick up the red cube and put it in the bin. Then go home and",
                             add_special=True)
        llama = {}
        for name, lora in (("base", None), ("lora", out)):
            with LlamaContext(model, replace(llama_opts, lora_path=lora)) as ctx:
                llama[name] = ctx.logits(ctx.sync_prefix(0, ids))
    peft_model.eval()
    with torch.no_grad():
        tuned = peft_model(input_ids=torch.tensor([ids])).logits[0, -1].float().numpy()
        with peft_model.disable_adapter():
            plain = peft_model(input_ids=torch.tensor([ids])).logits[0, -1].float().numpy()
    peft_model.unload()  # the module's base model without LoRA layers, for the next test
    # What the adapter changes must be the same change in both engines (a wrong q/k
    # permutation leaves a correlation near 0; quantization noise alone keeps it > 0.85).
    torch_delta, llama_delta = tuned - plain, llama["lora"] - llama["base"]
    assert np.abs(torch_delta).mean() > 0.3  # the adapter matters
    assert np.corrcoef(torch_delta, llama_delta)[0, 1] > 0.85



def test_a_few_training_steps(base_model, default_gguf: Path) -> None:
    import math

    from models.tune.data import DataOptions, generate, load_toolsets
    from models.tune.encode import PromptEncoder
    from models.tune.train import TrainOptions, train

    root = Path(__file__).resolve().parents[2]
    toolsets = load_toolsets([root / "audio/voice_tools.json"])
    examples, _ = generate(toolsets, DataOptions(n_train=8, n_heldout=0, seed=2))
    with PromptEncoder(default_gguf) as enc:
        data = [enc.encode(e) for e in examples]
    assert all(d.answer[-1] == enc.end_token for d in data)
    steps: list[tuple[int, float]] = []
    peft_model, log = train(base_model, data, TrainOptions(steps=2, batch_size=4, rank=2),
                            on_step=lambda n, loss, frac: steps.append((n, loss)))
    assert [n for n, _ in steps] == [1, 2] and log.steps_done == 2
    assert all(math.isfinite(loss) and loss > 0 for _, loss in steps)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
