"""Fine-tune a LoRA adapter for your tools on the CPU, as a llama.cpp adapter GGUF.

  rtagent tune [--tools T.json ...] [--model PATH | --model-name NAME] [--steps N]
               [--minutes M] [--seed S] [--out ADAPTER.gguf] [--recipe R.json]

What it does, in order:

1. generates training requests from the tool specs (many phrasings per tool,
   numbers in digits and words, negative values, units, two-call requests,
   "no tool" cases), plus held-out requests built only from phrasings and
   values training never sees; the Decoder eval sets are never used;
2. loads the base GGUF into torch (transformers) and trains a LoRA adapter
   with peft, loss on the call tokens only, with fixed seeds, a progress bar
   and a time budget (``--minutes``: the schedule cools down as time runs out);
3. writes the adapter as a llama.cpp LoRA GGUF and a JSON recipe beside it
   (options, seeds, steps, time, loss, sha256 of adapter and base model);
4. checks that llama.cpp loads it and that torch and llama.cpp give the same
   greedy answers on a few held-out prompts, then prints held-out exact match
   of the SimpleTool decoder with the base model and with the adapter.

Use the adapter with ``rtagent calls --lora ADAPTER.gguf``. The shipped adapter
(``models/adapters/``) is reproduced by ``rtagent tune --recipe
models/adapters/smollm2-135m-tools.json --out /tmp/a.gguf`` (same data, seeds and
options: 360 steps, ~17 min on 2 threads here) in a checkout of the commit that
shipped it, 108f726; later changes to the data generator or the tools change the
data. A ``--minutes`` budget also paces the learning-rate schedule, so a machine
of another speed would stop at another step: the shipped recipe fixes the steps.

Needs the ``tune`` extra: ``pip install 'transformers>=4.46' 'peft>=0.13'
sentencepiece accelerate 'torch==2.13.0'`` (keep torch pinned: an unpinned
one pulls a multi-GB CUDA build).
"""

from __future__ import annotations

import argparse
from pathlib import Path

INSTALL = ("pip install 'transformers>=4.46' 'peft>=0.13' sentencepiece accelerate 'torch==2.13.0'")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tools", nargs="+", metavar="T.json",
                        help="tool spec files, one tool set each (default: the robot and voice tools)")
    parser.add_argument("--model", help="base GGUF path (default: the embedded default model)")
    parser.add_argument("--model-name", help="embedded base model: smollm2-135m or gemma3-270m")
    parser.add_argument("--recipe", type=Path, help="start from this recipe (a NAME.json written "
                        "beside an adapter); other options given here override it")
    parser.add_argument("--steps", type=int, help="most optimizer steps (default 500)")
    parser.add_argument("--minutes", type=float,
                        help="training time budget in minutes (default: none; 0 drops a recipe's)")
    parser.add_argument("--seed", type=int, help="seed of the data generator and of training (default 0)")
    parser.add_argument("--n-train", type=int, help="training examples (default 2400)")
    parser.add_argument("--rank", type=int, help="LoRA rank (default 16; alpha = 2 x rank)")
    parser.add_argument("--targets", help="adapted projections, comma-separated "
                        "(default q_proj,k_proj,v_proj,o_proj; also gate_proj,up_proj,down_proj)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default 1: spinning OpenMP "
                        "barriers make more threads slower on a busy machine)")
    parser.add_argument("--eval-cases", type=int, help="held-out cases scored, base vs adapter (default 60)")
    parser.add_argument("--out", type=Path, default=Path("tools-lora.gguf"),
                        help="adapter GGUF to write (default ./tools-lora.gguf); the recipe goes "
                        "beside it as .json")


def _recipe(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from models.tune.recipe import TuneRecipe, load_recipe

    recipe = load_recipe(args.recipe) if args.recipe else TuneRecipe()
    data, train = recipe.data, recipe.train
    if args.seed is not None:
        data, train = replace(data, seed=args.seed), replace(train, seed=args.seed)
    if args.n_train is not None:
        data = replace(data, n_train=args.n_train)
    if args.steps is not None:
        train = replace(train, steps=args.steps)
    if args.minutes is not None:
        train = replace(train, minutes=args.minutes or None)  # 0: no time budget
    if args.rank is not None:
        train = replace(train, rank=args.rank, alpha=2.0 * args.rank)
    if args.threads is not None:
        train = replace(train, threads=args.threads)
    if args.targets:
        train = replace(train, target_modules=tuple(t.strip() for t in args.targets.split(",") if t))
    model = args.model or args.model_name or recipe.model
    tools = tuple(args.tools) if args.tools else recipe.tools
    eval_cases = args.eval_cases if args.eval_cases is not None else recipe.eval_cases
    return replace(recipe, tools=tools, model=model, data=data, train=train, eval_cases=eval_cases)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from models.tune.recipe import Hooks, describe, run_recipe
    from models.tune.train import TuneError

    try:
        import peft  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise TuneError(f"`rtagent tune` needs the 'tune' extra ({exc}); install it with "
                        f"`{INSTALL}` (or `pip install -e '.[tune]'`)") from None
    recipe = _recipe(args)
    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=console)
    tasks: dict[str, int] = {}
    total_steps = recipe.train.steps

    def stage(name: str) -> None:
        console.log(f"tune: {name}")

    def step(n: int, loss: float, frac: float) -> None:
        if not console.is_terminal and (n == 1 or n % 25 == 0):  # a log file: a line now and then
            console.log(f"tune: step {n}/{total_steps} loss {loss:.3f} ({frac:.0%} of the budget)")
        if "train" not in tasks:
            tasks["train"] = progress.add_task("train", total=1000, info="")
        progress.update(tasks["train"], completed=int(1000 * max(frac, n / total_steps)),
                        info=f"step {n}/{total_steps} loss {loss:.3f}")

    def case(label: str, done: int, total: int) -> None:
        if label not in tasks:
            tasks[label] = progress.add_task(f"held-out {label}", total=total, info="")
        progress.update(tasks[label], completed=done, info=f"{done}/{total}")

    console.log(f"tune: tools {', '.join(recipe.tools)}; {recipe.data.n_train} examples, "
                f"{recipe.train.steps} steps, budget {recipe.train.minutes or 'none'} min, "
                f"seed {recipe.data.seed}; writing {args.out}")
    with progress:
        report = run_recipe(recipe, args.out, Hooks(stage, step, case))
    print(describe(report))
    print(f"recipe and report: {args.out.with_suffix('.json')}")
    agree = report["torch_llama_agree"]
    if agree["same"] < agree["of"]:
        print("warning: torch and llama.cpp disagree on some greedy answers; the export may be wrong")
    return 0
