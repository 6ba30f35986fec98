"""Word error rate: word-level edit distance over reference length, after normalising.

Normalisation lower-cases, spells ``%`` as "percent", drops punctuation and
apostrophes ("what's" -> "whats"), splits hyphens and writes spelled numbers
below 100 as digits, so "Turn off the
kitchen-lights." and "turn off the kitchen lights" match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["WerCount", "normalize", "wer", "wer_counts"]

_DROP = re.compile(r"[^\w\s]")


_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen"]
_TENS = {w: 10 * (i + 2) for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty",
                                                 "seventy", "eighty", "ninety"])}
_NUMBERS = {w: i for i, w in enumerate(_UNITS)} | _TENS


def _digits(words: list[str]) -> list[str]:
    """Spelled numbers below 100 as digits ("twenty one" -> "21"), as Whisper writes them."""
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _TENS and i + 1 < len(words) and 0 < _NUMBERS.get(words[i + 1], 10) < 10:
            out.append(str(_TENS[w] + _NUMBERS[words[i + 1]]))
            i += 2
            continue
        out.append(str(_NUMBERS[w]) if w in _NUMBERS else w)
        i += 1
    return out


def normalize(text: str) -> list[str]:
    t = text.lower().replace("%", " percent").replace("-", " ").replace("'", "")
    t = t.replace("’", "")
    return _digits(_DROP.sub(" ", t).split())


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
