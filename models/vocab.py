"""The model's vocabulary as the value constraints read it: each token's text, and the
token sets (numeric, plain-string, openings) computed once per model."""

from __future__ import annotations

import re

import numpy as np

from models.llama_backend import LlamaModel

__all__ = ["BAD_IN_STRING", "NUM_CHARS", "VocabIndex"]

NUM_CHARS = frozenset("=-0123456789.")
BAD_IN_STRING = re.compile(r'["\\\x00-\x1f\x7f\x85\u2028\u2029]')


class VocabIndex:
    """Token texts and the masks the matchers need, computed once per model."""

    def __init__(self, model: LlamaModel) -> None:
        self.model = model
        texts: list[str | None] = []
        for piece in model.pieces():
            try:
                texts.append(piece.decode("utf-8") if piece else None)
            except UnicodeDecodeError:
                texts.append(None)  # a partial UTF-8 byte: never part of a constrained value
        self.texts = texts
        n = len(texts)
        self.numeric_ids = np.array(
            [i for i, t in enumerate(texts) if t and set(t) <= NUM_CHARS], dtype=np.int64)
        plain = np.zeros(n, dtype=bool)
        length = np.zeros(n, dtype=np.int64)
        for i, t in enumerate(texts):
            if t and not BAD_IN_STRING.search(t):
                plain[i] = True
                length[i] = len(t)
        self.plain_mask = plain
        self.plain_len = length
        self.open_ids = np.array([i for i, t in enumerate(texts) if t and t[0] == '"'
                                  and not BAD_IN_STRING.search(t[1:])], dtype=np.int64)
        self.assign_ids = np.array([i for i, t in enumerate(texts) if t in ("=", '="')],
                                   dtype=np.int64)
        self._tok: dict[str, list[int]] = {}
        self._numeric: dict[str, np.ndarray] = {"=": self.numeric_ids}
        self._opening: dict[tuple[str, str], np.ndarray] = {}
        self._lower: dict[str, list[int]] | None = None

    def lower_index(self) -> dict[str, list[int]]:
        """Plain string pieces by their lower-case text (built on first use)."""
        if self._lower is None:
            index: dict[str, list[int]] = {}
            for i, t in enumerate(self.texts):
                if t and self.plain_mask[i]:
                    index.setdefault(t.lower(), []).append(i)
            self._lower = index
        return self._lower

    def numeric_for(self, prefix: str) -> np.ndarray:
        """Tokens a number after ``prefix`` may be made of (a superset: matchers prune)."""
        got = self._numeric.get(prefix)
        if got is None:
            chars = NUM_CHARS | set(prefix)
            got = self._numeric[prefix] = np.array(
                [i for i, t in enumerate(self.texts) if t and set(t) <= chars], dtype=np.int64)
        return got

    def opening(self, open_text: str, text: str) -> np.ndarray:
        """Tokens after ``text`` (a start of ``open_text``, e.g. ``=["``) that stay inside
        ``open_text`` or go on past it into a string's plain characters."""
        key = (open_text, text)
        got = self._opening.get(key)
        if got is None:
            keep = []
            for i, t in enumerate(self.texts):
                if not t:
                    continue
                grown = text + t
                if open_text.startswith(grown) or (
                        grown.startswith(open_text)
                        and not BAD_IN_STRING.search(grown[len(open_text):])):
                    keep.append(i)
            got = self._opening[key] = np.array(keep, dtype=np.int64)
        return got

    def tokenize(self, text: str) -> list[int]:
        """Tokens of ``text`` standing alone (no BOS), cached."""
        toks = self._tok.get(text)
        if toks is None:
            toks = self._tok[text] = self.model.tokenize(text, add_special=False,
                                                         parse_special=False)
        return toks
