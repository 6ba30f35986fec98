"""Where a string value may come from: a span of the request (its words, as written).

A tool call's text values are, nearly always, words of the request copied as they are
("weather in Lisbon" -> ``city="Lisbon"``, "add oat milk" -> ``item="oat milk"``: every
text value of the project's eval sets is). A :class:`CopySpans` holds a string to such
spans: it starts where a word of the request starts and ends where one ends, compared
without case (the model may capitalise a name). A span of the request gives one value
per call (:meth:`CopySpans.take`): two arguments can't both copy the same words.
"""

from __future__ import annotations

import re

import numpy as np

from models.vocab import VocabIndex

__all__ = ["CopySpans"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_MAX_TOKEN_CHARS = 24


class CopySpans:
    """The request's spans a string may copy, and the tokens that continue one."""

    def __init__(self, request: str, vocab: VocabIndex) -> None:
        self.text = request
        self.low = request.lower()
        self.vocab = vocab
        words = list(_WORD.finditer(request))
        self.starts = [m.start() for m in words]
        self.ends = frozenset(m.end() for m in words)
        self.used: set[int] = set()

    def _at(self, body: str) -> list[int]:
        """Unused word starts where the request goes on as ``body`` does."""
        low = body.lower()
        return [p for p in self.starts if p not in self.used and self.low.startswith(low, p)]

    def viable(self, body: str) -> bool:
        return bool(self._at(body))

    def complete(self, body: str) -> bool:
        return bool(body) and any(p + len(body) in self.ends for p in self._at(body))

    def allowed(self, body: str, room: int) -> np.ndarray:
        """Tokens (plain string pieces, at most ``room`` characters) that keep ``body``
        a start of a span."""
        lower = self.vocab.lower_index()
        ids: set[int] = set()
        for p in self._at(body):
            rest = self.low[p + len(body): p + len(body) + min(room, _MAX_TOKEN_CHARS)]
            for k in range(1, len(rest) + 1):
                ids.update(lower.get(rest[:k], ()))
        return np.array(sorted(ids), dtype=np.int64)

    def forced(self, body: str) -> str | None:
        """The rest of the word ``body`` is in, where every span it can be agrees on it."""
        rests = set()
        for p in self._at(body):
            end = p + len(body)
            if end in self.ends or end >= len(self.text):
                return None  # the value may end here
            word_end = min((e for e in self.ends if e > end), default=len(self.text))
            rests.add(self.text[end:word_end])
        return rests.pop() if len(rests) == 1 else None

    def take(self, body: str) -> None:
        """``body`` was given: its span gives no other value in this call."""
        for p in self._at(body):
            if p + len(body) in self.ends:
                self.used.add(p)
                return
