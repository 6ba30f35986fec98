"""Procedural tool-call workloads: random tool sets, many episode families, split by family.

A *family* is a shape of task: an argument taken from the i-th item of a list
result, from a nested field of an earlier result, from the request, a
constant; a branch between two next tools (near 50/50 or skewed); an optional
step; a loop over a list result; a chain of reads then a write; retries after
failures; independent reads in any order. A *kind* is a family made concrete
on a tool set (:mod:`speculation.toolsets`): which tools play each role, which
index, which constants, which branch probability. An episode draws a kind and
runs it with fresh values (ids, scopes, list lengths, failures, branches).

The split is by family: :data:`TRAIN_FAMILIES` make the training episodes,
:data:`HELD_OUT_FAMILIES` never appear in them. Everything is deterministic
for a seed, and every call satisfies its tool's spec. :func:`write_files`
writes a tool set and its episodes in the files ``rtagent spec replay`` reads.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from speculation import family_shapes as shapes
from speculation.family_shapes import Builder, Run
from speculation.toolsets import ToolSet, make_toolset, word
from speculation.traces import Episode, save_jsonl

__all__ = ["FAMILIES", "HELD_OUT_FAMILIES", "TRAIN_FAMILIES", "Family", "FamilySplit", "Kind",
           "family_episodes", "family_split", "make_kinds", "write_files"]

TASKS = ["audit", "review", "sync", "triage", "tidy", "reconcile", "refresh", "escalate"]


@dataclass(frozen=True)
class Kind:
    """One family made concrete on a tool set."""

    family: str
    intent: str
    run: Run


@dataclass(frozen=True)
class Family:
    name: str
    held_out: bool
    doc: str
    make: Callable[[random.Random, ToolSet], Run]


FAMILIES: dict[str, Family] = {f.name: f for f in [
    Family("list_index", False, "an argument from the i-th item (0, 1 or last) of a list",
           shapes.list_index),
    Family("nested_field", False, "ids from nested fields of earlier results, 2-3 deep",
           shapes.nested_field),
    Family("request_fields", False, "arguments from the request's fields", shapes.request_fields),
    Family("constants", False, "constant arguments", shapes.constants),
    Family("branch_skewed", False, "a branch between two reads, 70/30 or 80/20",
           shapes.branch([0.7, 0.8])),
    Family("read_write_chain", False, "reads, a write from them, a read back", shapes.read_write_chain),
    Family("retry", False, "a check that fails and is retried", shapes.retry),
    Family("loop_items", True, "one call per item of a list result", shapes.loop_items),
    Family("loop_check", True, "per item a check, and a write where it is stale", shapes.loop_check),
    Family("optional_step", True, "a read that happens 30-50% of the time", shapes.optional_step),
    Family("branch_even", True, "a branch between two reads, 50/50", shapes.branch([0.5])),
    Family("interleaved_reads", True, "three independent reads in any order, then a write",
           shapes.interleaved_reads),
    Family("paged", True, "a list read page by page while it has more", shapes.paged),
    Family("earlier_result", True, "an argument from an earlier call of the same tool",
           shapes.earlier_result),
    Family("pick_by_name", True, "the id of the list item whose name the request gives",
           shapes.pick_by_name),
    Family("branch_on_field", True, "the next read decided by a nested field of a result",
           shapes.branch_on_field),
]}
TRAIN_FAMILIES = tuple(n for n, f in FAMILIES.items() if not f.held_out)
HELD_OUT_FAMILIES = tuple(n for n, f in FAMILIES.items() if f.held_out)


def make_kinds(toolset: ToolSet, families: Sequence[str], per_family: int = 2) -> list[Kind]:
    """``per_family`` kinds of each family on ``toolset`` (the same for the same arguments)."""
    kinds = []
    for name in families:
        for j in range(per_family):
            rng = random.Random(f"kind-{toolset.seed}-{name}-{j}")
            run = FAMILIES[name].make(rng, toolset)
            kinds.append(Kind(name, f"{rng.choice(TASKS)} {word(rng)} {j}", run))
    return kinds


def family_episodes(toolset: ToolSet, kinds: Sequence[Kind], n: int, tag: str) -> list[Episode]:
    """``n`` episodes, each of a kind drawn from ``kinds``; deterministic for the tag."""
    rng = random.Random(f"episodes-{toolset.seed}-{tag}")
    out = []
    for i in range(n):
        kind = rng.choice(kinds)
        b = Builder(rng, toolset)
        obs = kind.run(rng, b)
        out.append(Episode(f"{tag}-{i:04d}", tuple(b.steps), {"intent": kind.intent, **obs}))
    return out


@dataclass(frozen=True)
class FamilySplit:
    """A tool set, training episodes of the training families, test episodes per family."""

    toolset: ToolSet
    train: list[Episode]
    tests: dict[str, list[Episode]]


def family_split(seed: int = 0, *, train_episodes: int = 300, test_episodes: int = 150,
                 per_family: int = 2) -> FamilySplit:
    """Train on :data:`TRAIN_FAMILIES`; a test set for every family (held-out ones unseen)."""
    ts = make_toolset(seed)
    train = family_episodes(ts, make_kinds(ts, TRAIN_FAMILIES, per_family), train_episodes,
                            "train")
    tests = {f: family_episodes(ts, make_kinds(ts, [f], per_family), test_episodes, f"test-{f}")
             for f in FAMILIES}
    return FamilySplit(ts, train, tests)


def write_files(split: FamilySplit, out_dir: str | Path) -> list[Path]:
    """``tools.json``, ``train.jsonl`` and ``test-FAMILY.jsonl`` per family, in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    split.toolset.save_specs(out / "tools.json")
    paths = [out / "tools.json", out / "train.jsonl"]
    save_jsonl(split.train, paths[1])
    for name, eps in split.tests.items():
        paths.append(out / f"test-{name}.jsonl")
        save_jsonl(eps, paths[-1])
    return paths
