"""Word error rate: word-level edit distance over reference length, after normalising.

Normalisation lower-cases, spells ``%`` as "percent", drops punctuation and
apostrophes ("what's" -> "whats") and splits hyphens, so "Turn off the
kitchen-lights." and "turn off the kitchen lights" match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["WerCount", "normalize", "wer", "wer_counts"]

_DROP = re.compile(r"[^\w\s]")


def normalize(text: str) -> list[str]:
    t = text.lower().replace("%", " percent").replace("-", " ").replace("'", "")
    t = t.replace("’", "")
    return _DROP.sub(" ", t).split()


@dataclass(frozen=True)
class WerCount:
    errors: int  # substitutions + deletions + insertions
    words: int  # reference words

    @property
    def rate(self) -> float:
        return self.errors / self.words if self.words else float(self.errors > 0)


def _distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer_counts(reference: str, hypothesis: str) -> WerCount:
    ref, hyp = normalize(reference), normalize(hypothesis)
    return WerCount(_distance(ref, hyp), len(ref))


def wer(pairs: Iterable[tuple[str, str]]) -> float:
    """Corpus WER over (reference, hypothesis) pairs: total errors / total reference words."""
    counts = [wer_counts(r, h) for r, h in pairs]
    words = sum(c.words for c in counts)
    errors = sum(c.errors for c in counts)
    return errors / words if words else 0.0
