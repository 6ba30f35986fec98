"""Check a trained adapter: it loads in llama.cpp, agrees with torch, and scores better.

::

    from models.tune.verify import check_loads, greedy_llama, heldout_cases, score_decoder
    check_loads(base_gguf, adapter_gguf)                     # BackendError if llama.cpp refuses it
    greedy_llama(base_gguf, adapter_gguf, prompts)           # greedy answers, token ids
    cases = heldout_cases(heldout_examples)                  # eval cases (scene -> run-time enums)
    score_decoder(base_gguf, adapter_gguf, cases)            # Score (exact match, right tool)

Only llama.cpp is needed here; :func:`greedy_torch` (the same greedy answers
from the peft model) needs the ``tune`` extra.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control.tools import ToolSpec
from models.evalsets.score import Case, Score
from models.prompts import scene_objects
from models.tune.data import Example

__all__ = ["ScoredCase", "check_loads", "greedy_llama", "greedy_torch", "heldout_cases",
           "score_decoder"]


@dataclass(frozen=True)
class ScoredCase:
    """An eval case with the tools it is decoded against."""

    case: Case
    tools: tuple[ToolSpec, ...]


def heldout_cases(examples: Sequence[Example]) -> list[ScoredCase]:
    """Generated examples as eval cases; a scene restricts ``object``/``target`` as the demos do."""
    out = []
    for i, ex in enumerate(examples):
        enums: dict[str, list[str]] = {}
        if ex.scene:
            seen = [o for o in scene_objects(ex.scene) if o != "bin"]
            names = {a for t in ex.toolset.tools for a in t.properties}
            if "object" in names:
                enums["object"] = seen
            if "target" in names:
                enums["target"] = [*seen, "bin"]
        case = Case(id=f"heldout-{i + 1:03d}", messages=tuple(ex.messages()),
                    expected=tuple(c.to_json() for c in ex.calls), enums=enums,
                    order=_said_order(ex))
        out.append(ScoredCase(case, ex.toolset.tools))
    return out


_SEQUENCE_WORDS = ("then", "after", "first", "next", "before", "once")


def _said_order(ex: Example) -> tuple[tuple[int, int], ...]:
    """The order a held-out compound must keep: each call after the one before it where
    the request says so ("then", "after", "first ..."); none for "and" and lists."""
    family = ex.template.split("+", 1)[0]
    kind, _, pattern = family.partition(":")
    if kind not in ("join", "after") or not any(w in pattern for w in _SEQUENCE_WORDS):
        return ()
    return tuple((i, i + 1) for i in range(len(ex.calls) - 1))


def _load(base_gguf: str | Path, adapter_gguf: str | Path | None, n_ctx_tokens: int) -> Any:
    """The base (+ adapter) as the decoders run it (the run-time file), and its options."""
    from models.llama_backend import BackendOptions, LlamaModel
    from models.resolve import resolve_model

    resolved = resolve_model(base_gguf, adapter_gguf)
    opts = BackendOptions(n_ctx_tokens=n_ctx_tokens, n_seq_max=1, lora_path=resolved.adapter)
    return LlamaModel(resolved.run_file.path, opts, merged_lora=resolved.run_file.lora_merged)


def check_loads(base_gguf: str | Path, adapter_gguf: str | Path) -> None:
    """Load the adapter on the base in llama.cpp and evaluate one token (raises BackendError)."""
    from models.llama_backend import LlamaContext

    with _load(base_gguf, adapter_gguf, 256) as model, LlamaContext(model) as ctx:
        ctx.logits(ctx.sync_prefix(0, model.tokenize("hello", add_special=True)))


def greedy_llama(base_gguf: str | Path, adapter_gguf: str | Path | None,
                 prompts: Sequence[Sequence[int]], max_new_tokens: int = 40) -> list[list[int]]:
    """Unconstrained greedy answers in llama.cpp (up to the first end-of-generation token)."""
    from models.llama_backend import LlamaContext

    out = []
    with _load(base_gguf, adapter_gguf, 2048) as model, LlamaContext(model) as ctx:
        for prompt in prompts:
            ctx.clear()
            logits = ctx.logits(ctx.sync_prefix(0, list(prompt)))
            answer: list[int] = []
            for _ in range(max_new_tokens):
                tok = int(logits.argmax())
                answer.append(tok)
                if model.is_eog(tok):
                    break
                row = ctx.append(0, [tok])
                assert row is not None
                logits = ctx.logits(row)
            out.append(answer)
    return out


def greedy_torch(peft_model: Any, prompts: Sequence[Sequence[int]], is_eog: Callable[[int], bool],
                 max_new_tokens: int = 40) -> list[list[int]]:
    """The same greedy answers from the torch model (float32, adapter unmerged)."""
    import torch

    from models.tune.train import cache_kw, out_cache

    lm = peft_model.base_model.model if hasattr(peft_model, "base_model") else peft_model
    kw = cache_kw(lm)
    out = []
    with torch.no_grad():
        for prompt in prompts:
            ids = torch.tensor([list(prompt)])
            res = lm(input_ids=ids, use_cache=True, logits_to_keep=1)
            cache, logits = out_cache(res), res.logits[0, -1]
            answer: list[int] = []
            for _ in range(max_new_tokens):
                tok = int(logits.argmax())
                answer.append(tok)
                if is_eog(tok):
                    break
                res = lm(input_ids=torch.tensor([[tok]]), use_cache=True, **{kw: cache})
                cache, logits = out_cache(res), res.logits[0, -1]
            out.append(answer)
    return out


def score_decoder(base_gguf: str | Path, adapter_gguf: str | Path | None,
                  cases: Sequence[ScoredCase], n_threads: int | None = None,
                  on_case: Callable[[int], None] | None = None) -> tuple[Score, list[Mapping[str, Any]]]:
    """Exact match of the SimpleTool decoder (sequential schedule) on ``cases``.

    Returns the score and, per case, ``{"id", "expected", "got"}`` (``got`` None on a decode error).
    """
    from models.decoder import DecodeContext, DecodeError
    from models.factory import make_decoder
    from models.resolve import resolve_model

    score = Score()
    rows: list[Mapping[str, Any]] = []
    with make_decoder("simpletool", resolve_model(base_gguf, adapter_gguf), schedule="sequential",
                      n_threads=n_threads) as dec:
        for i, sc in enumerate(cases):
            expected = list(sc.case.expected or [])
            try:
                res = dec.decode(DecodeContext(sc.case.messages, enums=sc.case.enums), sc.tools)
                got: list[Mapping[str, Any]] | None = [c.to_json() for c in res.calls]
            except DecodeError:
                got = None
            score.add(expected, got, sc.case.order)
            rows.append({"id": sc.case.id, "expected": expected, "got": got})
            if on_case is not None:
                on_case(i + 1)
    return score, rows
