"""PASTE-style pattern mining over traces.

A pattern is (context -> predicted tool, one derivation per argument, empirical
success probability, support). Contexts are the recent tool names, features of
the last result (nested fields too) and of the observation
(:mod:`speculation.context_keys`); the library counts, for each context, which tool
came next and which derivations (:func:`speculation.derive.candidates`: every
source in the context, any depth, list positions fixed, from the end, by loop
counter or by matching field) explained each of its arguments. Prediction picks
the most decisive context with enough support (the Wilson lower bound of its
top tool's share, so a context seen twice does not outvote one seen a hundred
times), keeps the tools whose arguments can be derived now (a loop whose list
is used up drops out, and the rest share its probability) and fills arguments
with the derivations that reproduced them most often. Counting makes the
library cheap to update online as new episodes arrive; it is saved as JSON.

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
from speculation.context_keys import context_keys, feature_keys, lower_bound
from speculation.derive import (
    Context,
    Derivation,
    LeafCache,
    Prediction,
    candidates,
    combine_args,
    text_of,
)
from speculation.traces import Episode, TraceError

__all__ = ["Guess", "Pattern", "PatternLibrary"]

_ANY = '["*"]'
_MAX_PER_SLOT = 64
_NESTED_Z = 1.64  # one-sided 95%: how sure a nested-field context must be to be used
_TIE = 0.9  # derivations within this share of the best count are as good as it
FORMAT = "rtagent-patterns/2"
_READABLE = ("rtagent-patterns/1", FORMAT)  # /1 libraries name only the older derivations


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
        self.lookback = lookback  # kept in files; derivations now search the whole history
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
            cache = LeafCache()
            for i, step in enumerate(ep.steps):
                ctx = Context(history, ep.observation_at(i))
                self._count(ctx, step.name, step.arguments, cache)
                if step.ok:
                    self._count_result(ctx, step, cache)
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

    def _count(self, ctx: Context, tool: str, arguments: Mapping[str, Any],
               cache: LeafCache) -> None:
        cands: dict[str, list[str]] = {}
        for a, v in arguments.items():
            keys = []
            for d in candidates(v, ctx, counter=tool, cache=cache):
                k = d.key()
                self.deriv_table.setdefault(k, d)
                keys.append(k)
            cands[a] = list(dict.fromkeys(keys))
        self._ranked.clear()
        for key in feature_keys(ctx):
            self.next_tool.setdefault(key, Counter())[tool] += 1
        for key in [*context_keys(ctx), _ANY]:
            self.next_tool.setdefault(key, Counter())[tool] += 1
            ct = f"{key}\t{tool}"
            seen = self.arg_seen.setdefault(ct, Counter())
            seen["#"] += 1
            for arg, ds in cands.items():
                seen[arg] += 1
                c = self.derivs.setdefault(f"{ct}\t{arg}", Counter())
                c.update(ds)

    def _count_result(self, ctx: Context, step: Any, cache: LeafCache) -> None:
        if not isinstance(step.result, Mapping):
            return
        call = ToolCall(step.name, dict(step.arguments))
        ctx2 = ctx.then(call)
        self.result_shapes.setdefault(step.name, Counter())[
            json.dumps(sorted(step.result))] += 1
        for k, v in step.result.items():
            c = self.result_fields.setdefault(f"{step.name}\t{k}", Counter())
            for d in candidates(v, ctx2, cache=cache):
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
    def _best_context(self, keys: Iterable[str], z: float = 0.0
                      ) -> tuple[str, Counter[str], float] | None:
        """The context whose top tool's share is highest (its Wilson lower bound with
        ``z`` > 0), with that score; ties go to the earlier, more specific key."""
        best: tuple[str, Counter[str], float] | None = None
        for key in keys:
            c = self.next_tool.get(key)
            if not c:
                continue
            n = sum(c.values())
            if n < self.min_support:
                continue
            score = lower_bound(max(c.values()), n, z) if z else max(c.values()) / n
            if best is None or score > best[2] + 1e-9:
                best = (key, c, score)
        return best

    def _choose_context(self, ctx: Context) -> tuple[str | None, Counter[str]] | None:
        """(the key whose argument derivations to use, the next-tool counts) in ``ctx``.
        A nested-field context is taken only when its lower bound beats the best other
        context: many nested fields vary at random and a few look decisive by chance."""
        best = self._best_context(context_keys(ctx))
        nested = self._best_context(feature_keys(ctx), _NESTED_Z)
        if nested is not None and (best is None or nested[2] > best[2] + 1e-9):
            return (best[0] if best else None), nested[1]
        return (best[0], best[1]) if best else None

    def tool_distribution(self, ctx: Context) -> dict[str, float]:
        """P(next tool | best context), empty if no context has support."""
        best = self._choose_context(ctx)
        if best is None:
            return {}
        n = sum(best[1].values())
        return {t: c / n for t, c in best[1].items()}

    def _arg_slot(self, tool: str, keys: Iterable[str | None]) -> str | None:
        for key in keys:
            if key is None:
                continue
            seen = self.arg_seen.get(f"{key}\t{tool}")
            if seen and seen["#"] >= self.min_support:
                return f"{key}\t{tool}"
        return f"{_ANY}\t{tool}" if f"{_ANY}\t{tool}" in self.arg_seen else None

    def _values(self, slot: str, ctx: Context, total: int
                ) -> tuple[list[tuple[Any, float]], float]:
        """The likeliest values of one argument now, each with P(it is the right one): its
        best derivation's share of the slot's occurrences, where the values together
        may not exceed 1 (they exclude each other); derivations about as good as the
        best (which always agreed in training, say) share its probability. Also how
        much of the usual derivability is there now (1 when the best derivation applies,
        0 when none does or the best one always explained the argument)."""
        ranked_derivs = self._ranked_derivs(slot)
        values: dict[str, tuple[Any, int]] = {}
        for k, n in ranked_derivs:
            ok, v = self.deriv_table[k].apply(ctx)
            if ok:
                values.setdefault(text_of(v), (v, n))
                if len(values) > self.max_variants:
                    break
        ranked = list(values.values())[:self.max_variants]
        if not ranked:
            return [], 0.0
        top = ranked[0][1]
        tied = [v for v, n in ranked if n >= _TIE * top]
        out = [(v, top / total / len(tied)) for v in tied]
        left = 1.0 - top / total
        for v, n in ranked[len(tied):]:
            p = min(n / total, left)
            if p > 0:
                out.append((v, p))
                left -= p
        best = ranked_derivs[0][1]
        if top >= best:
            return out, 1.0
        # The best derivation does not apply now: the tool was called without it at most
        # as often as it failed to explain the argument.
        return out, min(top / best, 1.0 - best / total)

    def _arguments(self, tool: str, ctx: Context, context_key: str | None
                   ) -> tuple[list[tuple[dict[str, Any], float]], float]:
        last = ctx.history[-1].name if ctx.history else "^"
        ct = self._arg_slot(tool, [context_key, json.dumps(["L1", last], separators=(",", ":"))])
        if ct is None:
            return [], 0.0
        seen = self.arg_seen[ct]
        total = seen["#"]
        names = [a for a, n in seen.items() if a != "#" and n * 2 > total]
        choices: list[list[tuple[Any, float]]] = []
        derivable = 1.0
        for arg in names:
            opts, r = self._values(f"{ct}\t{arg}", ctx, total)
            if not opts:
                return [], 0.0
            choices.append(opts)
            derivable *= r
        return combine_args(choices, names), derivable

    def derive_arguments(self, tool: str, ctx: Context,
                         context_key: str | None = None) -> list[tuple[dict[str, Any], float]]:
        """Likely argument sets for ``tool`` now, each with P(all arguments right): from the
        derivations counted under ``context_key`` (else the last tool's, else the tool's)."""
        return self._arguments(tool, ctx, context_key)[0]

    def predict(self, ctx: Context, k: int) -> list[Prediction]:
        """The ``k`` most likely next calls in ``ctx``. A tool whose usual derivations do not
        apply now (the loop's list is used up, the source is missing) loses that share of
        its probability, and the others gain it."""
        best = self._choose_context(ctx)
        if best is None:
            return []
        arg_key, counter = best
        mass = float(sum(counter.values()))
        found = []
        for tool, c in counter.most_common(k + 4):
            argsets, derivable = self._arguments(tool, ctx, arg_key)
            mass -= c * (1.0 - derivable)
            if argsets and derivable > 0:
                found.append((tool, c, argsets))
        if mass <= 0:
            return []
        out: dict[str, Prediction] = {}
        for tool, c, argsets in found:
            for values, p in argsets:
                call = ToolCall(tool, values)
                prob = min(1.0, c / mass * p)
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
        if d.get("format") not in _READABLE:
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
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TraceError(f"{p}: not JSON ({exc})") from exc
        if not isinstance(data, Mapping):
            raise TraceError(f"{p}: expected a pattern library (a JSON object)")
        try:
            return cls.from_json(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TraceError(f"{p}: a damaged pattern library ({type(exc).__name__}: {exc}); "
                             "mine it again with `rtagent spec mine`") from exc
