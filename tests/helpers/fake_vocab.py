"""A small fake of :class:`models.vocab.VocabIndex` for model-free tests of the matchers,
drafts and copied values: the pieces a test lists, tokenized by greedy longest match."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_NUMERIC = set("=-0123456789.")
_NOT_PLAIN = set('"\\\n')  # a plain piece can sit inside a string value as it is


class FakeVocab:
    """The parts of VocabIndex the matchers, drafts and copy spans read."""

    def __init__(self, pieces: Sequence[str]) -> None:
        self.pieces = list(pieces)
        self.texts: list[str | None] = list(pieces)
        self.numeric_ids = np.array([i for i, t in enumerate(pieces) if set(t) <= _NUMERIC],
                                    dtype=np.int64)
        self.plain_mask = np.array([not (set(t) & _NOT_PLAIN) for t in pieces])
        self.plain_len = np.array([len(t) for t in pieces])
        self.open_ids = np.array([i for i, t in enumerate(pieces)
                                  if t.startswith('"') and '"' not in t[1:]], dtype=np.int64)
        self.assign_ids = np.array([i for i, t in enumerate(pieces) if t in ("=", '="')],
                                   dtype=np.int64)

    def lower_index(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, t in enumerate(self.pieces):
            if self.plain_mask[i]:
                out.setdefault(t.lower(), []).append(i)
        return out

    def tokenize(self, text: str) -> list[int]:
        out, i = [], 0
        while i < len(text):
            j = max((k for k, p in enumerate(self.pieces) if text.startswith(p, i)),
                    key=lambda k: len(self.pieces[k]))
            out.append(j)
            i += len(self.pieces[j])
        return out
