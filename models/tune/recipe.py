"""One fine-tuning run from a recipe: data -> LoRA training -> llama.cpp GGUF -> checks.

::

    from models.tune.recipe import TuneRecipe, run_recipe
    recipe = TuneRecipe(tools=("sim_envs/robot_tools.json", "audio/voice_tools.json"))
    report = run_recipe(recipe, "models/adapters/smollm2-135m-tools.gguf")

A recipe holds everything the result depends on (tool files, base model, data
generator options and seed, LoRA and training options), so the JSON written
beside the adapter (``NAME.json``) reproduces it: ``rtagent tune --recipe
NAME.json``. The same JSON records what happened (steps, minutes, loss, the
adapter's size and sha256, the base model's identity, held-out exact match of
the base and of base + adapter, and whether torch and llama.cpp gave the same
greedy answers).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import msgspec

from models.tune.data import DataOptions
from models.tune.train import TrainOptions, TuneError

__all__ = ["DEFAULT_TOOLS", "REPO_ROOT", "Hooks", "TuneRecipe", "describe", "load_recipe", "run_recipe"]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TOOLS = ("sim_envs/robot_tools.json", "audio/voice_tools.json")


@dataclass(frozen=True)
class TuneRecipe:
    """What to train.

    - ``tools``: tool spec files (relative paths are tried from the current
      directory, then from the repository root).
    - ``model``: an embedded model name (``smollm2-135m``), a GGUF path, or None
      (the default model).
    - ``data`` / ``train``: the generator's and the trainer's options.
    - ``dtype``: adapter tensor type in the GGUF (``f16`` or ``f32``).
    - ``check_cases``: held-out prompts on which torch and llama.cpp greedy answers are compared.
    - ``eval_cases``: held-out cases scored with the decoder, base vs base + adapter.
    """

    tools: tuple[str, ...] = DEFAULT_TOOLS
    model: str | None = None
    data: DataOptions = field(default_factory=DataOptions)
    train: TrainOptions = field(default_factory=TrainOptions)
    dtype: str = "f16"
    check_cases: int = 4
    eval_cases: int = 60

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self.data, f.name) for f in fields(DataOptions)
                if f.name not in ("exclude_requests", "exclude_values")}
        return {"tools": list(self.tools), "model": self.model, "data": data,
                "train": self.train.to_json(), "dtype": self.dtype,
                "check_cases": self.check_cases, "eval_cases": self.eval_cases}

    @classmethod
    def from_json(cls, d: Any, where: str = "recipe") -> TuneRecipe:
        """The recipe in ``d`` (parsed JSON), checked field by field with ``msgspec``;
        a :class:`TuneError` starting with ``where`` says which field and what was expected."""
        _known_keys(d, cls, where)
        if isinstance(d, dict):
            _known_keys(d.get("data", {}), DataOptions, f"{where}: data")
            _known_keys(d.get("train", {}), TrainOptions, f"{where}: train")
        try:
            recipe = msgspec.convert(d, cls)
        except msgspec.ValidationError as exc:
            raise TuneError(f"{where}: {exc}") from None
        if recipe.dtype not in ("f16", "f32"):
            raise TuneError(f"{where}: dtype: expected \"f16\" or \"f32\", got {recipe.dtype!r}")
        if recipe.check_cases < 0 or recipe.eval_cases < 0:
            raise TuneError(f"{where}: check_cases and eval_cases: expected >= 0, got "
                            f"{recipe.check_cases} and {recipe.eval_cases}")
        return recipe


def _known_keys(d: Any, kind: type, where: str) -> None:
    if not isinstance(d, dict):
        got = {list: "an array", str: "a string", bool: "a boolean", int: "a number",
               float: "a number", type(None): "null"}.get(type(d), type(d).__name__)
        raise TuneError(f"{where}: expected a JSON object of {kind.__name__} fields, got {got}")
    known = {f.name for f in fields(kind)}
    unknown = sorted(str(k) for k in d if k not in known)
    if unknown:
        raise TuneError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")


@dataclass
class Hooks:
    """Progress callbacks (all optional): a stage starts; a step ends; a case is scored."""

    stage: Callable[[str], None] = lambda name: None
    step: Callable[[int, float, float], None] = lambda step, loss, progress: None
    case: Callable[[str, int, int], None] = lambda label, done, total: None


def _tool_path(p: str) -> Path:
    path = Path(p)
    if path.is_file() or path.is_absolute():
        return path
    return REPO_ROOT / path if (REPO_ROOT / path).is_file() else path


def _resolve_model(model: str | None) -> Path:
    from models.resolve import resolve_gguf

    return resolve_gguf(model)  # a name, a path, $RTAGENT_GGUF or the default


def run_recipe(recipe: TuneRecipe, out: str | Path, hooks: Hooks | None = None,
               record: str | Path | None = None) -> dict[str, Any]:
    """Run ``recipe``; write the adapter at ``out`` and the recipe + report at ``record``
    (default: ``out`` with ``.json``). Returns the report."""
    import torch

    from models.adapters import base_identity
    from models.artifacts import sha256_file
    from models.tune.data import generate, load_toolsets
    from models.tune.encode import PromptEncoder
    from models.tune.export import export_gguf
    from models.tune.train import load_base, train
    from models.tune.verify import check_loads, greedy_llama, greedy_torch, heldout_cases, score_decoder

    h = hooks or Hooks()
    out = Path(out)
    record_path = Path(record) if record else out.with_suffix(".json")
    t_start = time.monotonic()
    h.stage("data")
    toolsets = load_toolsets([_tool_path(p) for p in recipe.tools])
    train_ex, held = generate(toolsets, recipe.data)
    base = _resolve_model(recipe.model)
    with PromptEncoder(base) as enc:
        encoded = [enc.encode(e) for e in train_ex]
        check = [enc.encode(e) for e in held[:recipe.check_cases]]
        prompt_sha = enc.prompt_sha256(train_ex)
        is_eog = {t for t in range(enc.model.n_vocab) if enc.model.is_eog(t)}
    h.stage("load")
    torch.manual_seed(recipe.train.seed)
    model = load_base(base)
    h.stage("train")
    peft_model, log = train(model, encoded, recipe.train, on_step=h.step)
    h.stage("export")
    identity = base_identity(base)
    export_gguf(peft_model, base, out, alpha=recipe.train.alpha, dtype=recipe.dtype,
                extra={"base_sha256": identity["sha256"], "recipe": recipe.to_json()})
    report: dict[str, Any] = {
        "adapter": out.name,
        "adapter_sha256": sha256_file(out),
        "adapter_bytes": out.stat().st_size,
        "base": identity,
        "recipe": recipe.to_json(),
        "prompt_sha256": prompt_sha,
        "data": {"train": len(train_ex), "heldout": len(held)},
        "training": {**log.to_json(), "minutes": round(log.seconds / 60, 2),
                     "losses": [round(x, 4) for x in log.losses],
                     "torch": torch.__version__, "threads": torch.get_num_threads()},
    }
    partial = record_path.with_suffix(".partial")  # the report so far, kept if a check fails
    partial.write_text(json.dumps(report, indent=1) + "\n")
    h.stage("verify")
    check_loads(base, out)
    prompts = [e.prompt for e in check]
    via_torch = greedy_torch(peft_model, prompts, lambda t: t in is_eog)
    via_llama = greedy_llama(base, out, prompts)
    same = sum(a == b for a, b in zip(via_torch, via_llama, strict=True))
    del peft_model, model
    h.stage("evaluate")
    cases = heldout_cases(held[:recipe.eval_cases])
    scores = {}
    for label, adapter in (("base", None), ("adapter", out)):
        def on_case(done: int, _label: str = label) -> None:
            h.case(_label, done, len(cases))
        score, _ = score_decoder(base, adapter, cases, on_case=on_case)
        scores[label] = {"cases": score.cases, "exact": score.exact, "tool": score.tools,
                         "errors": score.errors}
    report.update({
        "torch_llama_agree": {"same": same, "of": len(prompts)},
        "heldout": scores,
        "total_minutes": round((time.monotonic() - t_start) / 60, 2),
    })
    record_path.write_text(json.dumps(report, indent=1) + "\n")
    partial.unlink(missing_ok=True)
    return report


def load_recipe(path: str | Path) -> TuneRecipe:
    """The recipe of a written report (``NAME.json``), or of a bare recipe JSON."""
    try:
        d = msgspec.json.decode(Path(path).read_bytes())
    except (OSError, msgspec.DecodeError, RecursionError) as exc:
        raise TuneError(f"cannot read the recipe {path}: {exc}; expected a JSON object "
                        "(a recipe, or the report `rtagent tune` wrote beside an adapter)") from None
    if isinstance(d, dict) and "recipe" in d:  # a report: its recipe
        return TuneRecipe.from_json(d["recipe"], f"{path}: recipe")
    return TuneRecipe.from_json(d, str(path))


def describe(report: dict[str, Any], labels: Sequence[str] = ("base", "adapter")) -> str:
    """A few lines summing up a report."""
    t, held = report["training"], report["heldout"]
    lines = [f"trained {t['steps']} steps in {t['minutes']:.1f} min ({t['s_per_step']:.2f} s/step, "
             f"stopped by {t['stopped_by']}); loss {t['loss_first']} -> {t['loss_last20']}",
             f"adapter {report['adapter']}: {report['adapter_bytes'] / 1e6:.2f} MB, "
             f"sha256 {report['adapter_sha256'][:16]}...",
             f"torch and llama.cpp greedy answers identical on {report['torch_llama_agree']['same']}"
             f"/{report['torch_llama_agree']['of']} held-out prompts"]
    for label in labels:
        s = held[label]
        lines.append(f"held-out {label:8}: exact {s['exact']}/{s['cases']}, right tool "
                     f"{s['tool']}/{s['cases']}, errors {s['errors']}")
    return "\n".join(lines)

