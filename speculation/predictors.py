"""Predictors of the next tool calls, behind one protocol.

``predictor.predict(ctx, k) -> list[Prediction]``: the ``k`` most likely next
calls with probabilities. Implementations:

- :class:`PatternPredictor`: the mined PASTE-style pattern library;
- :class:`speculation.draft.DraftPredictor`: a small learned torch model;
- :class:`DecoderHintPredictor`: a distribution over next tool names read from
  the decoder itself (any callable), arguments filled by a pattern library;
- :class:`CombinedPredictor`: a weighted mixture of the others.

Predictors register by name (:data:`PREDICTORS`, :func:`register_predictor`): a
factory builds a fresh predictor from a :class:`Training` (the training episodes,
their mined library, a draft model trained once on first use). A predictor may
also guess results (``guess_result``) for thinking ahead.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from control.tools import ToolCall
from realtime.errors import ConfigError
from speculation.derive import Context, Prediction
from speculation.patterns import Guess, PatternLibrary
from speculation.traces import Episode, Step

__all__ = [
    "PREDICTORS",
    "CombinedPredictor",
    "DecoderHintPredictor",
    "Guesser",
    "PatternPredictor",
    "Predictor",
    "Training",
    "make_predictor",
    "register_predictor",
    "top_k",
]


@runtime_checkable
class Predictor(Protocol):
    """Gives the ``k`` most likely next calls in a context."""

    def predict(self, ctx: Context, k: int) -> list[Prediction]: ...


@runtime_checkable
class Guesser(Protocol):
    """Guesses the result of a call before it returns (for thinking ahead)."""

    def guess_result(self, call: ToolCall, ctx: Context | None = None) -> Guess | None: ...


def top_k(predictions: Iterable[Prediction], k: int) -> list[Prediction]:
    """Deduplicate by call key (keeping the most likely) and keep the ``k`` best."""
    best: dict[str, Prediction] = {}
    for p in predictions:
        key = p.call.key()
        if key not in best or best[key].probability < p.probability:
            best[key] = p
    return sorted(best.values(), key=lambda p: -p.probability)[:k]


class PatternPredictor:
    """The pattern library as a predictor; learns online from finished episodes."""

    name = "pattern"

    def __init__(self, library: PatternLibrary) -> None:
        self.library = library

    def predict(self, ctx: Context, k: int) -> list[Prediction]:
        return self.library.predict(ctx, k)

    def guess_result(self, call: ToolCall, ctx: Context | None = None) -> Guess | None:
        return self.library.guess_result(call, ctx)

    def learn(self, episodes: Iterable[Episode]) -> None:
        self.library.update(episodes)


HintFn = Callable[[Context], Mapping[str, float]]


class DecoderHintPredictor:
    """Next-tool distribution from the decoder (e.g. its probabilities for each tool
    name after the last call); arguments come from a pattern library's derivations."""

    name = "decoder"

    def __init__(self, hint: HintFn, library: PatternLibrary) -> None:
        self.hint = hint
        self.library = library

    def predict(self, ctx: Context, k: int) -> list[Prediction]:
        dist = self.hint(ctx)
        out = []
        for tool, p in sorted(dist.items(), key=lambda kv: -kv[1])[: k + 2]:
            if p <= 0:
                continue
            for args, q in self.library.derive_arguments(tool, ctx):
                out.append(Prediction(ToolCall(tool, args), p * q, "decoder"))
        return top_k(out, k)


class CombinedPredictor:
    """A weighted mixture: P(call) = sum_i w_i P_i(call) / sum_i w_i.

    A cascade: when the first part's best guess reaches ``confident``, the
    others (slower: the draft model) are not asked and its answer stands.
    Learning online, it also re-weights the parts by how often each one's
    top prediction was the call made (recent episodes count most), so a part
    that does not know a new kind of task (the draft model learns nothing
    after training) stops outvoting one that does.
    """

    _DECAY = 0.995  # per scored call: about the last 200 calls count

    name = "combined"

    def __init__(self, parts: Sequence[Predictor], weights: Sequence[float] | None = None,
                 confident: float = 0.5) -> None:
        if not confident > 0.0:
            raise ConfigError(f"CombinedPredictor: confident: expected > 0 (above 1: always "
                              f"mix), got {confident}")
        self.confident = confident
        if not parts:
            raise ConfigError("CombinedPredictor: expected at least one predictor, got none")
        w = list(weights) if weights is not None else [1.0] * len(parts)
        if len(w) != len(parts) or any(x < 0 for x in w) or sum(w) <= 0:
            raise ConfigError(f"CombinedPredictor: expected {len(parts)} non-negative weights "
                              f"with a positive sum, got {w}")
        self.parts = list(parts)
        self.prior = [x / sum(w) for x in w]
        self.weights = list(self.prior)
        self._right = [0.0] * len(parts)
        self._scored = 0.0

    def predict(self, ctx: Context, k: int) -> list[Prediction]:
        first = self.parts[0].predict(ctx, k + 2)
        if len(self.parts) == 1 or (first and first[0].probability >= self.confident):
            return top_k(first, k)
        total: dict[str, float] = {}
        calls: dict[str, ToolCall] = {}
        for i, (part, w) in enumerate(zip(self.parts, self.weights, strict=True)):
            for p in first if i == 0 else part.predict(ctx, k + 2):
                key = p.call.key()
                total[key] = total.get(key, 0.0) + w * p.probability
                calls[key] = p.call
        out = [Prediction(calls[key], prob, "combined") for key, prob in total.items()]
        return top_k(out, k)

    def guess_result(self, call: ToolCall, ctx: Context | None = None) -> Guess | None:
        for part in self.parts:
            if isinstance(part, Guesser):
                g = part.guess_result(call, ctx)
                if g is not None:
                    return g
        return None

    def learn(self, episodes: Iterable[Episode]) -> None:
        eps = list(episodes)
        self._score(eps)  # before the parts learn these episodes
        for part in self.parts:
            learn = getattr(part, "learn", None)
            if callable(learn):
                learn(eps)

    def _score(self, episodes: Sequence[Episode]) -> None:
        if len(self.parts) == 1:
            return
        for ep in episodes:
            history: tuple[Step, ...] = ()
            for i, step in enumerate(ep.steps):
                ctx = Context(history, ep.observation_at(i))
                self._scored = self._scored * self._DECAY + 1.0
                for j, part in enumerate(self.parts):
                    top = part.predict(ctx, 1)
                    hit = 1.0 if top and top[0].call.key() == step.key() else 0.0
                    self._right[j] = self._right[j] * self._DECAY + hit
                history = history + (step,)
        accuracy = [(r + 1.0) / (self._scored + 2.0) for r in self._right]
        w = [p * a for p, a in zip(self.prior, accuracy, strict=True)]
        self.weights = [x / sum(w) for x in w]


@dataclass
class Training:
    """What predictor factories build from: episodes, their library, a lazy draft model."""

    episodes: Sequence[Episode]
    library: PatternLibrary
    draft_epochs: int = 150
    _draft: Any = field(default=None, repr=False)

    def draft(self) -> Predictor:
        if self._draft is None:
            from speculation.draft import DraftPredictor  # torch: only when asked for

            self._draft = DraftPredictor.train(self.episodes, epochs=self.draft_epochs)
        draft: Predictor = self._draft
        return draft


PredictorFactory = Callable[[Training], Predictor]
PREDICTORS: dict[str, PredictorFactory] = {}


def register_predictor(name: str) -> Callable[[PredictorFactory], PredictorFactory]:
    def deco(factory: PredictorFactory) -> PredictorFactory:
        PREDICTORS[name] = factory
        return factory
    return deco


def make_predictor(name: str, training: Training) -> Predictor:
    """A fresh predictor called ``name`` (see :data:`PREDICTORS`)."""
    if name not in PREDICTORS:
        raise ConfigError(f"unknown predictor {name!r}; expected one of {sorted(PREDICTORS)}")
    return PREDICTORS[name](training)


@register_predictor("pattern")
def _pattern(t: Training) -> Predictor:
    return PatternPredictor(copy.deepcopy(t.library))  # own copy: it learns online


@register_predictor("draft")
def _draft(t: Training) -> Predictor:
    return t.draft()


@register_predictor("combined")
def _combined(t: Training) -> Predictor:
    return CombinedPredictor([PatternPredictor(copy.deepcopy(t.library)), t.draft()])
