"""LoRA fine-tuning on the CPU: transformers loads the base GGUF, peft adds the adapter.

::

    from models.tune.train import TrainOptions, load_base, train
    model = load_base(gguf_path)                       # dequantized to float32
    peft_model, log = train(model, encoded_examples, TrainOptions(steps=300, minutes=20))

What keeps it affordable on two cores:

- **Shared prefix.** Every prompt of a tool set starts with the same system
  prompt, tool list and few-shot turns (hundreds of tokens). Each step runs
  that prefix once (batch 1) and repeats its KV cache over the batch; only the
  request and answer tokens run per example. By default the prefix runs
  without gradient (``prefix_grad=False``): its forward pass uses the current
  adapter, so the answer tokens see exactly what the decoder will compute, only
  the adapter's gradient through the prefix is left out.
- **Loss only on the call tokens, logits only where a target is.** The output
  layer (49k-262k rows) is applied to the answer positions only.
- **A time budget.** The learning-rate schedule runs on progress =
  max(step / steps, elapsed / budget), so a run cut by ``minutes`` still cools down.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models.tune.encode import Encoded
from realtime.errors import ConfigError, RtAgentError

__all__ = ["ATTENTION_TARGETS", "LLAMA_TARGETS", "TrainLog", "TrainOptions", "TuneError", "cache_kw",
           "load_base", "out_cache", "train"]

LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ATTENTION_TARGETS = LLAMA_TARGETS[:4]
"""The default: unmerged in llama.cpp, every adapted matrix costs two more small products per
token; attention only kept the per-token cost within ~10% (all seven: ~+15%, measured here)."""


class TuneError(RtAgentError):
    """Fine-tuning cannot run (missing extra, unsupported model, bad options)."""


@dataclass(frozen=True)
class TrainOptions:
    """How to train the adapter.

    - ``rank`` / ``alpha``: LoRA rank and scaling (scale = alpha / rank).
    - ``target_modules``: projections that get an adapter.
    - ``steps``: most optimizer steps; ``minutes``: wall-clock budget (None: none).
    - ``batch_size``: examples per step (all from one tool set, sharing a prefix).
    - ``learning_rate`` / ``warmup_steps`` / ``weight_decay``: AdamW with warm-up and cosine decay.
    - ``seed``: torch and sampling seed. ``threads``: torch CPU threads (None: torch's
      default). 1 by default: on a shared, oversubscribed CPU, OpenMP's spinning
      barriers made 2 threads 5-10x slower than 1 (measured here twice; on a quiet
      machine 2 threads were ~1.5x faster).
    - ``prefix_refresh_steps``: how often the tool set's shared prefix KV cache is
      recomputed with the current adapter.
    - ``bf16``: run matrix products in bfloat16 (autocast; the adapter's weights stay
      float32). Off by default: no faster here, and float32 keeps torch closest to llama.cpp.
    """

    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ATTENTION_TARGETS
    steps: int = 500
    minutes: float | None = None
    batch_size: int = 8
    learning_rate: float = 1e-3
    warmup_steps: int = 10
    weight_decay: float = 0.0
    seed: int = 0
    threads: int | None = 1
    prefix_refresh_steps: int = 8
    bf16: bool = False

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"rank: expected >= 1, got {self.rank}")
        if self.steps < 1:
            raise ConfigError(f"steps: expected >= 1, got {self.steps}")
        if self.minutes is not None and self.minutes <= 0:
            raise ConfigError(f"minutes: expected > 0 or None, got {self.minutes}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size: expected >= 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate: expected > 0, got {self.learning_rate}")
        if self.prefix_refresh_steps < 1:
            raise ConfigError(f"prefix_refresh_steps: expected >= 1, got {self.prefix_refresh_steps}")
        if not self.target_modules:
            raise ConfigError("target_modules: expected at least one module name")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d


@dataclass
class TrainLog:
    """What happened: per-step losses and timings."""

    steps_done: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    stopped_by: str = "steps"

    def s_per_step(self) -> float:
        return self.seconds / max(1, self.steps_done)

    def to_json(self) -> dict[str, Any]:
        tail = self.losses[-20:]
        return {"steps": self.steps_done, "seconds": round(self.seconds, 1),
                "s_per_step": round(self.s_per_step(), 3), "stopped_by": self.stopped_by,
                "loss_first": round(self.losses[0], 4) if self.losses else None,
                "loss_last20": round(sum(tail) / len(tail), 4) if tail else None}


def _require() -> tuple[Any, Any]:
    try:
        import peft
        import transformers
    except ImportError as exc:
        raise TuneError(f"fine-tuning needs the 'tune' extra ({exc}); install it with "
                        "`pip install -e '.[tune]'`") from exc
    return transformers, peft


def load_base(gguf_path: str | Path) -> Any:
    """The base model in torch (float32), dequantized from the GGUF by transformers."""
    import torch

    transformers, _ = _require()
    path = Path(gguf_path)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # transformers >= 5.x swaps in hub "kernels" by default, and fails where the optional
    # `kernels` package is missing: plain torch layers are what is trained here
    extra = {"use_kernels": False} if int(transformers.__version__.split(".")[0]) >= 5 else {}
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32, **extra)
    except (ValueError, OSError, KeyError) as exc:
        raise TuneError(f"transformers could not load {path} ({exc}); fine-tuning supports the "
                        "GGUF architectures transformers can read (llama, gemma3, qwen2, ...)") from exc
    model.config.use_cache = True
    return model


def add_lora(model: Any, options: TrainOptions) -> Any:
    import torch

    _, peft = _require()
    torch.manual_seed(options.seed)
    cfg = peft.LoraConfig(r=options.rank, lora_alpha=options.alpha, lora_dropout=options.dropout,
                          target_modules=list(options.target_modules), bias="none",
                          task_type="CAUSAL_LM")
    return peft.get_peft_model(model, cfg)


def common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    n = min(len(s) for s in seqs)
    first = seqs[0]
    for i in range(n):
        if any(s[i] != first[i] for s in seqs[1:]):
            return i
    return n


def cache_kw(module: Any) -> str:
    """The keyword a transformers model takes its KV cache by (``cache`` from 5.x on)."""
    import inspect

    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def out_cache(output: Any) -> Any:
    """The KV cache of a model output, under either name."""
    found = getattr(output, "cache", None) if "cache" in output else None
    return found if found is not None else output["past_key_values"]


def _prefix_cache(lm: Any, tokens: Sequence[int]) -> Any:
    import torch

    with torch.no_grad():
        return out_cache(lm.model(input_ids=torch.tensor([list(tokens)]), use_cache=True))


def batch_loss(peft_model: Any, shared: tuple[int, Any], prefix: Sequence[int],
               batch: Sequence[Encoded]) -> Any:
    """Mean cross-entropy over the answer tokens of ``batch`` (all sharing ``prefix``).

    ``shared`` is ``(n, cache)``: the KV cache of ``prefix[:n]`` (the tool set's
    fixed part), extended here without gradient to the whole ``prefix``.
    """
    import torch
    import torch.nn.functional as F

    lm = peft_model.base_model.model  # the *ForCausalLM, LoRA layers injected
    n_shared, shared_cache = shared
    p = len(prefix)
    cache = copy.deepcopy(shared_cache)
    kw = cache_kw(lm.model)
    if p > n_shared:
        with torch.no_grad():
            lm.model(input_ids=torch.tensor([list(prefix[n_shared:])]),
                     position_ids=torch.arange(n_shared, p).unsqueeze(0),
                     use_cache=True, **{kw: cache})
    cache.batch_repeat_interleave(len(batch))
    rows = [list(e.prompt[p:]) + list(e.answer[:-1]) for e in batch]
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), p + width), dtype=torch.long)
    mask[:, :p] = 1
    sel_b: list[int] = []
    sel_t: list[int] = []
    labels: list[int] = []
    for b, (e, r) in enumerate(zip(batch, rows, strict=True)):
        ids[b, :len(r)] = torch.tensor(r)
        mask[b, p:p + len(r)] = 1
        start = len(e.prompt) - p - 1  # the position whose logits predict answer[0]
        for j, tok in enumerate(e.answer):
            sel_b.append(b)
            sel_t.append(start + j)
            labels.append(tok)
    pos = torch.arange(p, p + width).unsqueeze(0).expand(len(batch), -1)
    hidden = lm.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                      use_cache=True, **{kw: cache}).last_hidden_state
    logits = lm.lm_head(hidden[torch.tensor(sel_b), torch.tensor(sel_t)])
    return F.cross_entropy(logits.float(), torch.tensor(labels))


def make_batches(data: Sequence[Encoded], batch_size: int) -> list[list[Encoded]]:
    """Batches whose examples share a group (tool set and scene), so a prompt prefix."""
    groups: dict[str, list[Encoded]] = {}
    for e in data:
        groups.setdefault(e.group or e.toolset, []).append(e)
    return [g[i:i + batch_size] for g in groups.values() for i in range(0, len(g), batch_size)]


def train(model: Any, data: Sequence[Encoded], options: TrainOptions,
          on_step: Callable[[int, float, float], None] | None = None,
          clock: Callable[[], float] = time.monotonic) -> tuple[Any, TrainLog]:
    """Add a LoRA adapter to ``model`` and train it on ``data``; returns (peft model, log).

    ``on_step(step, loss, progress)`` is called after every step (progress in 0..1).
    """
    import torch

    if not data:
        raise TuneError("no training examples")
    if options.threads:
        torch.set_num_threads(options.threads)
    rng = random.Random(options.seed)
    batches = make_batches(data, options.batch_size)
    by_set: dict[str, list[Encoded]] = {}
    for e in data:
        by_set.setdefault(e.toolset, []).append(e)
    shared_len = {k: min(common_prefix([e.prompt for e in g]), min(len(e.prompt) for e in g) - 1)
                  for k, g in by_set.items()}
    prefixes = [b[0].prompt[:min(common_prefix([e.prompt for e in b]),
                                 min(len(e.prompt) for e in b) - 1)] for b in batches]
    order: list[int] = []
    shared: dict[str, tuple[int, Any, int]] = {}  # tool set -> (n tokens, cache, step made)

    peft_model = add_lora(model, options)
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=options.learning_rate, weight_decay=options.weight_decay)
    budget_s = options.minutes * 60 if options.minutes else None
    log = TrainLog()
    t0 = clock()
    for step in range(options.steps):
        elapsed = clock() - t0
        progress = step / options.steps
        if budget_s:
            progress = max(progress, elapsed / budget_s)
            if elapsed >= budget_s:
                log.stopped_by = "time"
                break
        warm = min(1.0, (step + 1) / max(1, options.warmup_steps))
        lr = options.learning_rate * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
        for g in opt.param_groups:
            g["lr"] = lr
        if not order:
            order = list(range(len(batches)))
            rng.shuffle(order)
        k = order.pop()
        batch, prefix = batches[k], prefixes[k]
        ts = batch[0].toolset
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=options.bf16):
            if ts not in shared or step - shared[ts][2] >= options.prefix_refresh_steps:
                n = min(shared_len[ts], len(prefix))
                shared[ts] = (n, _prefix_cache(peft_model.base_model.model, prefix[:n]), step)
            loss = batch_loss(peft_model, shared[ts][:2], prefix, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        log.losses.append(float(loss.detach()))
        log.steps_done = step + 1
        if on_step is not None:
            on_step(step + 1, log.losses[-1], progress)
    log.seconds = clock() - t0
    peft_model.eval()
    return peft_model, log
