"""PASTE-style pattern mining over traces.

A pattern is (context -> predicted tool, one derivation per argument, empirical
success probability, support). Contexts are the recent tool names, features of
the last result and of the observation (:func:`speculation.derive.context_keys`);
the library counts, for each context, which tool came next and which
derivations explained each of its arguments. Prediction picks the most
decisive context with enough support (backing off from specific to general),
and fills arguments with the best derivations that apply now. Counting makes
the library cheap to update online as new episodes arrive; it is saved as JSON.

The library also guesses results ("think ahead"): how often a tool (with
these arguments) returned the same value.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control.tools import ToolCall, canonical_json
from realtime.errors import ConfigError
from speculation.derive import (
    Context,
    Derivation,
    Prediction,
    candidates,
    combine_args,
    context_keys,
)
from speculation.traces import Episode, TraceError

__all__ = ["Guess", "Pattern", "PatternLibrary"]

_ANY = '["*"]'
_MAX_PER_SLOT = 64
FORMAT = "rtagent-patterns/1"


@dataclass(frozen=True)
class Guess:
    """A guessed result and how often that guess was right in the traces."""

    value: Any
    probability: float


@dataclass(frozen=True)
class Pattern:
    """One mined pattern, for reports and inspection."""

    context: str
    tool: str
    arguments: Mapping[str, str]
    probability: float
    support: int


class PatternLibrary:
    """Counts of next tools and argument derivations per context; see the module doc."""

    def __init__(self, *, min_support: int = 2, lookback: int = 8,
                 max_variants: int = 2, guess_min_probability: float = 0.6) -> None:
        if min_support < 1:
            raise ConfigError(f"min_support: expected >= 1, got {min_support}")
        self.min_support = min_support
        self.lookback = lookback
        self.max_variants = max_variants
        self.guess_min_probability = guess_min_probability
        self.next_tool: dict[str, Counter[str]] = {}
        self.arg_seen: dict[str, Counter[str]] = {}      # ctx\ttool -> arg -> times present
        self.derivs: dict[str, Counter[str]] = {}        # ctx\ttool\targ -> deriv key -> n
        self.deriv_table: dict[str, Derivation] = {}
        self.results: dict[str, Counter[str]] = {}       # tool or tool:args -> result -> n
        self.result_shapes: dict[str, Counter[str]] = {}  # tool -> sorted result keys -> n
        self.result_fields: dict[str, Counter[str]] = {}  # tool\tfield -> deriv key -> n
        self.episodes = 0
        self._ranked: dict[str, list[tuple[str, int]]] = {}

    def _ranked_derivs(self, slot: str) -> list[tuple[str, int]]:
        r = self._ranked.get(slot)
        if r is None:
            counts = self.derivs.get(slot, Counter())
            r = sorted(counts.items(),
                       key=lambda kv: (-kv[1], self.deriv_table[kv[0]].rank(), kv[0]))[:16]
            self._ranked[slot] = r
        return r

    # ---- learning ----
    def update(self, episodes: Iterable[Episode], *, context: Sequence[Any] = ()) -> int:
        """Add episodes' steps to the counts (online); returns how many steps were added.
        ``context``: steps counted before, that precede each episode's (a session's
        next turn is counted after its earlier calls, without counting them twice)."""
        n = 0
        for ep in episodes:
            self.episodes += 1
            history: tuple[Any, ...] = tuple(context)
            for i, step in enumerate(ep.steps):
                ctx = Context(history, ep.observation_at(i))
                self._count(ctx, step.name, step.arguments)
                if step.ok:
                    self._count_result(ctx, step)
                    res = canonical_json(step.result)
                    self.results.setdefault(step.name, Counter())[res] += 1
                    self.results.setdefault(step.key(), Counter())[res] += 1
                else:
                    self.results.setdefault(step.name, Counter())["!error"] += 1
                    self.results.setdefault(step.key(), Counter())["!error"] += 1
                history = history + (step,)
                n += 1
        self._prune()
        return n

    def _prune(self) -> None:
        # Bounded counting: keep the most frequent derivations per slot (consistent ones
        # recur, coincidences do not), so prediction stays cheap as traces accumulate.
        for table in (self.derivs, self.result_fields):
            for slot, c in table.items():
                if len(c) > _MAX_PER_SLOT:
                    table[slot] = Counter(dict(c.most_common(_MAX_PER_SLOT // 2)))

    def _count(self, ctx: Context, tool: str, arguments: Mapping[str, Any]) -> None:
        cands: dict[str, list[str]] = {}
        for a, v in arguments.items():
            cands[a] = []
            for d in candidates(v, ctx, lookback=self.lookback):
                k = d.key()
                self.deriv_table.setdefault(k, d)
                cands[a].append(k)
        self._ranked.clear()
        for key in [*context_keys(ctx), _ANY]:
            self.next_tool.setdefault(key, Counter())[tool] += 1
            ct = f"{key}\t{tool}"
            seen = self.arg_seen.setdefault(ct, Counter())
            seen["#"] += 1
            for arg, ds in cands.items():
                seen[arg] += 1
                c = self.derivs.setdefault(f"{ct}\t{arg}", Counter())
                c.update(ds)

    def _count_result(self, ctx: Context, step: Any) -> None:
        if not isinstance(step.result, Mapping):
            return
        call = ToolCall(step.name, dict(step.arguments))
        ctx2 = ctx.then(call)
        self.result_shapes.setdefault(step.name, Counter())[
            json.dumps(sorted(step.result))] += 1
        for k, v in step.result.items():
            c = self.result_fields.setdefault(f"{step.name}\t{k}", Counter())
            for d in candidates(v, ctx2, lookback=self.lookback):
                dk = d.key()
                self.deriv_table.setdefault(dk, d)
                c[dk] += 1

    def _derived_guess(self, call: ToolCall, ctx: Context) -> Guess | None:
        shapes = self.result_shapes.get(call.name)
        if not shapes:
            return None
        total = sum(shapes.values())
        shape, n = shapes.most_common(1)[0]
        if total < self.min_support:
            return None
        p = n / total
        ctx2 = ctx.then(call)
        value: dict[str, Any] = {}
        for k in json.loads(shape):
            slot = f"{call.name}\t{k}"
            counts = self.result_fields.get(slot, Counter())
            ranked = self._ranked.get("r\t" + slot)
            if ranked is None:
                ranked = sorted(counts.items(), key=lambda kv: (
                    -kv[1], self.deriv_table[kv[0]].rank(), kv[0]))[:8]
                self._ranked["r\t" + slot] = ranked
            for dk, m in ranked:
                ok, v = self.deriv_table[dk].apply(ctx2)
                if ok:
                    value[k] = v
                    p *= m / total
                    break
            else:
                return None
        return Guess(value, p)

    # ---- prediction ----
    def _best_context(self, ctx: Context) -> tuple[str, Counter[str]] | None:
        best: tuple[str, Counter[str]] | None = None
        best_p = -1.0
        for key in context_keys(ctx):
            c = self.next_tool.get(key)
            if not c:
                continue
            n = sum(c.values())
            if n < self.min_support:
                continue
            p = max(c.values()) / n
            if p > best_p + 1e-9:
                best, best_p = (key, c), p
        return best

    def tool_distribution(self, ctx: Context) -> dict[str, float]:
        """P(next tool | best context), empty if no context has support."""
        best = self._best_context(ctx)
        if best is None:
            return {}
        n = sum(best[1].values())
        return {t: c / n for t, c in best[1].items()}

    def derive_arguments(self, tool: str, ctx: Context,
                         context_key: str | None = None) -> list[tuple[dict[str, Any], float]]:
        """Likely argument sets for ``tool`` now, each with P(all arguments right)."""
        ct = f"{context_key}\t{tool}" if context_key else ""
        seen = self.arg_seen.get(ct)
        if not seen or seen["#"] < self.min_support:
            ct, seen = f"{_ANY}\t{tool}", self.arg_seen.get(f"{_ANY}\t{tool}")
        if not seen:
            return []
        total = seen["#"]
        names = [a for a, n in seen.items() if a != "#" and n * 2 > total]
        choices: list[list[tuple[Any, float]]] = []
        for arg in names:
            ranked = self._ranked_derivs(f"{ct}\t{arg}")
            opts: list[tuple[Any, float]] = []
            values: set[str] = set()
            for k, n in ranked:
                ok, v = self.deriv_table[k].apply(ctx)
                if not ok or canonical_json(v) in values:
                    continue
                values.add(canonical_json(v))
                opts.append((v, n / total))
                if len(opts) >= self.max_variants:
                    break
            if not opts:
                return []
            choices.append(opts)
        return combine_args(choices, names)

    def predict(self, ctx: Context, k: int) -> list[Prediction]:
        """The ``k`` most likely next calls in ``ctx``."""
        best = self._best_context(ctx)
        if best is None:
            return []
        key, counter = best
        n = sum(counter.values())
        out: dict[str, Prediction] = {}
        for tool, c in counter.most_common(k + 2):
            for args, p in self.derive_arguments(tool, ctx, key):
                call = ToolCall(tool, args)
                prob = c / n * p
                if call.key() not in out or out[call.key()].probability < prob:
                    out[call.key()] = Prediction(call, prob, "pattern")
        return sorted(out.values(), key=lambda pr: -pr.probability)[:k]

    def guess_result(self, call: ToolCall, ctx: Context | None = None) -> Guess | None:
        """The most likely result of ``call``: the most frequent one for these arguments
        (or this tool), or one assembled field by field from mined derivations."""
        best = self._derived_guess(call, ctx) if ctx is not None else None
        for key in (call.key(), call.name):
            c = self.results.get(key)
            if not c:
                continue
            n = sum(c.values())
            value, m = c.most_common(1)[0]
            if n >= self.min_support and value != "!error":
                p = m / n
                if best is None or p > best.probability:
                    best = Guess(json.loads(value), p)
                break
        return best if best is not None and best.probability >= self.guess_min_probability \
            else None

    # ---- inspection and files ----
    def patterns(self, *, min_probability: float = 0.0) -> list[Pattern]:
        """The best pattern per (context, tool), most supported first."""
        out = []
        for ct, seen in self.arg_seen.items():
            key, tool = ct.split("\t")
            n_ctx = sum(self.next_tool[key].values())
            if key == _ANY or n_ctx < self.min_support:
                continue
            total = seen["#"]
            args: dict[str, str] = {}
            p = total / n_ctx
            for arg, m in seen.items():
                if arg == "#" or m * 2 <= total:
                    continue
                counts = self.derivs[f"{ct}\t{arg}"]
                dk, dn = min(counts.items(),
                             key=lambda kv: (-kv[1], self.deriv_table[kv[0]].rank(), kv[0]))
                args[arg] = self.deriv_table[dk].describe()
                p *= dn / total
            if p >= min_probability:
                out.append(Pattern(key, tool, args, p, total))
        return sorted(out, key=lambda pt: (-pt.support, -pt.probability))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "min_support": self.min_support, "lookback": self.lookback,
            "episodes": self.episodes,
            "next_tool": {k: dict(v) for k, v in self.next_tool.items()},
            "arg_seen": {k: dict(v) for k, v in self.arg_seen.items()},
            "derivs": {k: dict(v) for k, v in self.derivs.items()},
            "deriv_table": {k: d.to_json() for k, d in self.deriv_table.items()},
            "results": {k: dict(v) for k, v in self.results.items()},
            "result_shapes": {k: dict(v) for k, v in self.result_shapes.items()},
            "result_fields": {k: dict(v) for k, v in self.result_fields.items()},
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PatternLibrary:
        if d.get("format") != FORMAT:
            raise TraceError(f"expected a pattern library in format {FORMAT!r}, "
                             f"got {d.get('format')!r}; mine one with `rtagent spec mine`")
        lib = cls(min_support=int(d["min_support"]), lookback=int(d["lookback"]))
        lib.episodes = int(d.get("episodes", 0))
        lib.next_tool = {k: Counter(v) for k, v in d["next_tool"].items()}
        lib.arg_seen = {k: Counter(v) for k, v in d["arg_seen"].items()}
        lib.derivs = {k: Counter(v) for k, v in d["derivs"].items()}
        lib.deriv_table = {k: Derivation.from_json(v) for k, v in d["deriv_table"].items()}
        lib.results = {k: Counter(v) for k, v in d["results"].items()}
        lib.result_shapes = {k: Counter(v) for k, v in d.get("result_shapes", {}).items()}
        lib.result_fields = {k: Counter(v) for k, v in d.get("result_fields", {}).items()}
        return lib

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), separators=(",", ":")),
                              encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> PatternLibrary:
        p = Path(path)
        if not p.is_file():
            raise TraceError(f"pattern library not found: {p}; mine one with "
                             "`rtagent spec mine TRACES.jsonl -o PATTERNS.json`")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TraceError(f"{p}: not JSON ({exc.msg})") from exc
        return cls.from_json(data)
