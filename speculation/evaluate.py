"""Compare predictors on recorded episodes against the perfect-predictor bounds.

:func:`evaluate` mines patterns and trains the draft model on the training
episodes, then replays the test episodes: the baseline (no speculation), the
oracle bounds (pre-execution alone, and with thinking ahead), and each
predictor in both modes. Every row gives task time (mean, p50, p95, p99), the
reduction against the baseline, the fraction of the matching bound it reaches,
accuracy, hits, waste, speculative writes and divergence from the baseline.
Think-ahead rows of every predictor use the same result guesser (the mined
result model, learning online from the same episodes where the predictors do),
so they differ only in which calls they predict.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from control.tools import ToolSpec
from realtime.errors import ConfigError
from speculation.executor import SpeculationOptions
from speculation.patterns import PatternLibrary
from speculation.predictors import (
    PREDICTORS,
    Guesser,
    PatternPredictor,
    Predictor,
    Training,
    make_predictor,
)
from speculation.replay import OraclePredictor, RunResult, replay_run, task_stats
from speculation.traces import Episode

__all__ = ["PREDICTOR_NAMES", "check_targets", "evaluate", "train_predictors"]

PREDICTOR_NAMES = ("pattern", "draft", "combined")
_PCTS = ("mean_s", "p50_s", "p95_s", "p99_s")


def _reduction(stats: Mapping[str, float], base: Mapping[str, float]) -> dict[str, float]:
    return {k.removesuffix("_s"): (1.0 - stats[k] / base[k]) if base[k] else 0.0 for k in _PCTS}


def _row(name: str, mode: str, run: RunResult, base: RunResult, base_stats: Mapping[str, float],
         wall_s: float) -> dict[str, Any]:
    stats = task_stats(run.task_s)
    m = run.metrics
    saved_s = sum(base.task_s) - sum(run.task_s)
    divergent = sum(a != b for a, b in zip(run.committed, base.committed, strict=True))
    return {
        "predictor": name, "mode": mode, **stats,
        "reduction": _reduction(stats, base_stats),
        "task_s_saved": saved_s,
        "top1": m.top1_rate, "topk": m.topk_rate, "hit_rate": m.hit_rate,
        "hits": m.hits, "joins": m.joins, "launched": m.launched, "dry_runs": m.dry_runs,
        "latency_saved_s": m.latency_saved_s, "wasted_s": m.wasted_s,
        "wasted_cpu_s": m.wasted_cpu_s, "overhead_cpu_s": m.overhead_cpu_s,
        "overhead_core_s_per_s_saved": m.overhead_cpu_s / saved_s if saved_s > 0 else 0.0,
        "writes_attempted": m.writes_attempted, "writes_blocked": m.writes_blocked,
        "spec_writes_executed": m.writes_executed + len(run.violations),
        "divergent_episodes": divergent, "unrecorded_served": run.unrecorded_served,
        "predictor_errors": m.predictor_errors,
        "replay_wall_s": wall_s,
    }


def evaluate(specs: Sequence[ToolSpec], train: Sequence[Episode], test: Sequence[Episode], *,
             predictors: Sequence[str] = PREDICTOR_NAMES, options: SpeculationOptions | None = None,
             online: bool = True, draft_epochs: int = 150, label: str = "",
             progress: Callable[[str], None] | None = None,
             training: Training | None = None) -> dict[str, Any]:
    """The replay report (a JSON-able dict); see the module doc. ``training`` (mined and
    trained on ``train``) is reused when given, e.g. for several test sets."""
    if not test:
        raise ConfigError("evaluate: expected at least one test episode, got none")
    say = progress or (lambda _m: None)
    opts = options or SpeculationOptions()
    unknown = [n for n in predictors if n not in PREDICTORS]
    if unknown:
        raise ConfigError(f"unknown predictor(s) {unknown}; expected some of {sorted(PREDICTORS)}")
    if training is None:
        training = train_predictors(train, predictors, draft_epochs, say)
    library = training.library
    guesser = PatternPredictor(library)
    base = replay_run("baseline", specs, test, predictor=None, history=train)
    base_stats = task_stats(base.task_s)
    rows = []
    from dataclasses import replace

    for mode, think in (("pre-exec", False), ("think-ahead", True)):
        t = time.perf_counter()
        run = replay_run("oracle", specs, test, predictor=OraclePredictor(), think_ahead=think,
                         options=replace(opts, top_k=1), history=train)
        rows.append(_row("oracle (bound)", mode, run, base, base_stats, time.perf_counter() - t))
        for name in predictors:
            t = time.perf_counter()
            pred = make_predictor(name, training)
            guess, hook = _online(pred, library) if online else (guesser, None)
            run = replay_run(name, specs, test, predictor=pred, think_ahead=think, options=opts,
                             history=train, guesser=guess, online=hook)
            rows.append(_row(name, mode, run, base, base_stats, time.perf_counter() - t))
            say(f"{name} {mode}: {-rows[-1]['reduction']['mean']:+.1%} mean task time")
    for r in rows:
        bound = next(b for b in rows if b["predictor"] == "oracle (bound)" and b["mode"] == r["mode"])
        bm = bound["reduction"]["mean"]
        r["fraction_of_bound"] = r["reduction"]["mean"] / bm if bm > 0 else 0.0
    report = {
        "workload": label, "tools": len(specs), "train_episodes": len(train),
        "test_episodes": len(test), "test_calls": sum(len(e.steps) for e in test),
        "options": {k: v for k, v in vars(opts).items() if isinstance(v, int | float | bool)},
        "online": online, "baseline": base_stats, "rows": rows,
    }
    report["targets"] = check_targets(report)
    return report


def _online(pred: Predictor, library: PatternLibrary
            ) -> tuple[Guesser, Callable[[Episode], None]]:
    """The result guesser for a run learning online, and the hook that teaches both: the
    predictor itself where it guesses results (as the executor uses it live), else a copy
    of the mined result model, so every predictor's guesses learn the same episodes."""
    learn = getattr(pred, "learn", None)
    learners = [learn] if callable(learn) else []
    if learners and isinstance(pred, Guesser):
        guesser: Guesser = pred
    else:
        own = PatternPredictor(copy.deepcopy(library))
        guesser = own
        learners.append(own.learn)

    def hook(ep: Episode) -> None:
        for f in learners:
            f([ep])
    return guesser, hook


def train_predictors(train: Sequence[Episode], predictors: Sequence[str] = PREDICTOR_NAMES,
                     draft_epochs: int = 150, progress: Callable[[str], None] | None = None
                     ) -> Training:
    """Mine the pattern library on ``train`` (and train the draft model if a predictor uses it)."""
    t0 = time.perf_counter()
    library = PatternLibrary()
    library.update(train)
    training = Training(train, library, draft_epochs)
    if any(n in ("draft", "combined") for n in predictors):
        training.draft()
    if progress is not None:
        progress(f"mined {len(library.next_tool)} contexts and trained in "
                 f"{time.perf_counter() - t0:.1f} s")
    return training


def check_targets(report: Mapping[str, Any], predictor: str = "combined") -> dict[str, Any]:
    """The issue's targets for ``predictor`` in think-ahead mode (best predictor if absent)."""
    rows = [r for r in report["rows"] if r["mode"] == "think-ahead"]
    bound = next(r for r in rows if r["predictor"] == "oracle (bound)")
    cands = [r for r in rows if r["predictor"] != "oracle (bound)"]
    if not cands:
        return {}
    row = next((r for r in cands if r["predictor"] == predictor),
               max(cands, key=lambda r: r["reduction"]["mean"]))
    red, bred = row["reduction"], bound["reduction"]
    checks: dict[str, Any] = {
        "predictor": row["predictor"],
        "fraction_of_bound>=0.8": row["fraction_of_bound"] >= 0.8,
        "task_time<=-50%": red["mean"] >= 0.5 if bred["mean"] >= 0.5 else "bound < 50%",
        "p99<=-60%": red["p99"] >= 0.6 if bred["p99"] >= 0.6 else "bound < 60%",
        "top1>=40%": row["top1"] >= 0.4,
        "zero_divergence": all(r["divergent_episodes"] == 0 and r["unrecorded_served"] == 0
                               for r in report["rows"]),
        "zero_speculative_writes": all(r["spec_writes_executed"] == 0 for r in report["rows"]),
        "overhead<=0.02": row["overhead_core_s_per_s_saved"] <= 0.02,
    }
    return checks


def summarize(reports: Sequence[Mapping[str, Any]], predictor: str = "combined",
              mode: str = "think-ahead") -> dict[str, float]:
    """One predictor's figures over several reports: the mean share of the bound, top-1
    weighted by calls, and the overhead (core-s of predicting per s saved) over all."""
    rows = [next(r for r in rep["rows"] if r["predictor"] == predictor and r["mode"] == mode)
            for rep in reports]
    calls = [rep["test_calls"] for rep in reports]
    saved = sum(r["task_s_saved"] for r in rows)
    return {
        "fraction_of_bound": sum(r["fraction_of_bound"] for r in rows) / max(1, len(rows)),
        "top1": sum(r["top1"] * n for r, n in zip(rows, calls, strict=True)) / max(1, sum(calls)),
        "overhead_core_s_per_s_saved": sum(r["overhead_cpu_s"] for r in rows) / saved
        if saved > 0 else 0.0,
        "divergent_episodes": sum(r["divergent_episodes"] for rep in reports
                                  for r in rep["rows"]),
        "spec_writes_executed": sum(r["spec_writes_executed"] for rep in reports
                                    for r in rep["rows"]),
    }
