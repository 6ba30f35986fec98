"""Per-type value constraints for the SimpleTool-style decoder.

A value is decoded as text that starts at the ``=`` after the argument name
(``=`` belongs to the value because tokenizers merge it with what follows:
``=-`` and ``="`` are single tokens in both bundled vocabularies). Each
:class:`Matcher` says which tokens may come next (``allowed``), whether the
text is a complete value, what text is forced once only one completion is
left (jump-forward), and the tokens every value starts with (``lead``: forced,
as the canonical tokenization has them, ``=`` ``true``). The structure that
follows a value (``, y`` or ``)``) is handled by the decoder; a string's closing
quote is part of it (``close``).

- enums, object ids and booleans: the rendered options (a token-set trie);
- numbers: ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?`` with at most ``max_frac_digits``
  decimals, pruned so that every accepted prefix can still end inside
  ``[minimum, maximum]``;
- strings: any tokens without ``"``, ``\\``, newlines or control characters,
  at most ``maxLength`` characters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.callformat import ArgKind, ArgSpec, render_value
from models.llama_backend import LlamaModel

__all__ = ["EnumMatcher", "Matcher", "NumberMatcher", "StringMatcher", "VocabIndex", "matcher_for"]

_NUM_CHARS = frozenset("=-0123456789.")
_BAD_IN_STRING = re.compile(r'["\\\x00-\x1f\x7f\x85\u2028\u2029]')


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
            [i for i, t in enumerate(texts) if t and set(t) <= _NUM_CHARS], dtype=np.int64)
        plain = np.zeros(n, dtype=bool)
        length = np.zeros(n, dtype=np.int64)
        for i, t in enumerate(texts):
            if t and not _BAD_IN_STRING.search(t):
                plain[i] = True
                length[i] = len(t)
        self.plain_mask = plain
        self.plain_len = length
        self.open_ids = np.array([i for i, t in enumerate(texts) if t and t[0] == '"'
                                  and not _BAD_IN_STRING.search(t[1:])], dtype=np.int64)
        self.assign_ids = np.array([i for i, t in enumerate(texts) if t in ("=", '="')],
                                   dtype=np.int64)
        self._tok: dict[str, list[int]] = {}

    def tokenize(self, text: str) -> list[int]:
        """Tokens of ``text`` standing alone (no BOS), cached."""
        toks = self._tok.get(text)
        if toks is None:
            toks = self._tok[text] = self.model.tokenize(text, add_special=False,
                                                         parse_special=False)
        return toks


class Matcher:
    """What a value may look like, as text that starts at ``=``."""

    close = ""  # text that ends the value before the structure that follows
    vocab: VocabIndex

    def allowed(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def complete(self, text: str) -> bool:
        raise NotImplementedError

    def viable(self, text: str) -> bool:
        """Whether ``text`` can still grow into a valid value (char level)."""
        raise NotImplementedError

    def body(self, text: str) -> str:
        """The value's own characters (after ``=`` and an opening quote)."""
        return text[1:]

    def forced(self, text: str) -> str | None:
        """The rest of the value when only one completion is left."""
        return None

    def lead(self) -> list[int]:
        """Tokens every value starts with, forced before the first decision (``=`` of
        ``=true`` / ``=false``, ``="`` of a string); none where values differ in their
        first token (``=1`` / ``=-1`` start ``=`` / ``=-``)."""
        return []

    def value(self, text: str) -> Any:
        raise NotImplementedError

    max_tokens = 32


class EnumMatcher(Matcher):
    """One of a fixed set of rendered options (enum members, ids, true/false)."""

    def __init__(self, values: Sequence[Any], arg: ArgSpec | None, vocab: VocabIndex) -> None:
        self.options = {"=" + render_value(v, arg): v for v in values}
        self.vocab = vocab
        toks = [vocab.tokenize(opt) for opt in self.options]
        ids: set[int] = set()
        for opt, t in zip(self.options, toks, strict=True):
            ids.update(t)
            ids.update(vocab.tokenize(opt[1:]))
        self.ids = np.array(sorted(ids), dtype=np.int64)
        self.max_tokens = max(len(t) for t in toks) + 4
        firsts = {t[0] for t in toks}
        # a first token all options share and none is whole (``=`` of ``=true`` / ``=false``)
        self._lead = [firsts.pop()] if len(firsts) == 1 and min(map(len, toks)) > 1 else []

    def lead(self) -> list[int]:
        return self._lead

    def allowed(self, text: str) -> np.ndarray:
        texts = self.vocab.texts
        keep = [i for i in self.ids
                if texts[i] and any(o.startswith(text + texts[i]) for o in self.options)]
        return np.array(keep, dtype=np.int64)

    def complete(self, text: str) -> bool:
        return text in self.options

    def viable(self, text: str) -> bool:
        return any(o.startswith(text) for o in self.options)

    def forced(self, text: str) -> str | None:
        left = [o for o in self.options if o.startswith(text)]
        if len(left) == 1 and left[0] != text:
            return left[0][len(text):]
        return None

    def value(self, text: str) -> Any:
        return self.options[text]


@dataclass(frozen=True)
class _Range:
    lo: float
    hi: float


class NumberMatcher(Matcher):
    """Plain decimals inside ``[minimum, maximum]``; integers have no ``.``."""

    def __init__(self, arg: ArgSpec, vocab: VocabIndex, max_frac_digits: int = 4) -> None:
        self.vocab = vocab
        self.integer = arg.kind is ArgKind.INTEGER
        self.range = _Range(-math.inf if arg.minimum is None else arg.minimum,
                            math.inf if arg.maximum is None else arg.maximum)
        self.max_frac = 0 if self.integer else max_frac_digits
        big = max(abs(self.range.lo), abs(self.range.hi))
        self.max_int_digits = 9 if math.isinf(big) else max(1, len(str(int(big))))
        self.max_tokens = self.max_int_digits + self.max_frac + 4

    def _viable(self, text: str) -> bool:
        if not text.startswith("="):
            return "=".startswith(text)
        body = text[1:]
        m = re.fullmatch(r"(-?)([0-9]*)(\.?)([0-9]*)", body)
        if not m:
            return False
        sign, ip, dot, fp = m.groups()
        if (dot and not ip) or (fp and not dot) or (len(ip) > 1 and ip[0] == "0"):
            return False
        if len(ip) > self.max_int_digits or len(fp) > self.max_frac:
            return False
        if dot and self.integer:
            return False
        neg = sign == "-"
        lo, hi = (-self.range.hi, -self.range.lo) if neg else (self.range.lo, self.range.hi)
        if hi < 0 or (neg and hi <= 0):
            return False  # no value of this sign is in range
        if not ip:
            return True
        return any(a <= hi and b >= lo for a, b in self._spans(ip, dot, fp))

    def _spans(self, ip: str, dot: str, fp: str) -> list[tuple[float, float]]:
        """Closed intervals of magnitudes reachable from this prefix."""
        if dot:
            base = float(f"{ip}.{fp or '0'}")
            width = 10.0 ** -len(fp) if len(fp) < self.max_frac else 0.0
            return [(base, base + width)]
        d = int(ip)
        frac = 0.0 if self.integer else 1.0
        if ip == "0":
            return [(0.0, frac)]
        return [(d * 10**k, (d + 1) * 10**k - 1 + frac)
                for k in range(self.max_int_digits - len(ip) + 1)]

    def viable(self, text: str) -> bool:
        return self._viable(text)

    def lead(self) -> list[int]:
        return self.vocab.tokenize("=") if self.range.lo >= 0 else []

    def allowed(self, text: str) -> np.ndarray:
        texts = self.vocab.texts
        keep = [i for i in self.vocab.numeric_ids if self._viable(text + texts[i])]  # type: ignore[operator]
        return np.array(keep, dtype=np.int64)

    def complete(self, text: str) -> bool:
        if not re.fullmatch(r"=-?(0|[1-9][0-9]*)(\.[0-9]+)?", text) or text == "=-0":
            return False
        if self.integer and "." in text:
            return False
        v = float(text[1:])
        return self.range.lo <= v <= self.range.hi

    def value(self, text: str) -> Any:
        return int(text[1:]) if "." not in text else float(text[1:])


class StringMatcher(Matcher):
    """A double-quoted string without escapes or newlines, at most ``max_length`` chars."""

    close = '"'

    def __init__(self, arg: ArgSpec, vocab: VocabIndex, default_max_length: int = 80) -> None:
        self.vocab = vocab
        self.max_length = arg.max_length or default_max_length
        self.max_tokens = self.max_length + 4

    def allowed(self, text: str) -> np.ndarray:
        v = self.vocab
        if text == "":
            return v.assign_ids
        if text == "=":
            return v.open_ids
        room = self.max_length - (len(text) - 2)
        return np.flatnonzero(v.plain_mask & (v.plain_len <= room))

    def complete(self, text: str) -> bool:
        return text.startswith('="')

    def viable(self, text: str) -> bool:
        if text in ("", "=", '="'):
            return True
        body = text[2:]
        return (text.startswith('="') and len(body) <= self.max_length
                and not _BAD_IN_STRING.search(body))

    def body(self, text: str) -> str:
        return text[2:]

    def lead(self) -> list[int]:
        return self.vocab.tokenize('="')

    def value(self, text: str) -> Any:
        return text[2:]


def matcher_for(arg: ArgSpec, vocab: VocabIndex, enum: Sequence[Any] | None = None) -> Matcher:
    """The constraint for ``arg``; ``enum`` narrows it at run time (e.g. visible objects)."""
    if enum is not None:
        return EnumMatcher(enum, arg, vocab)
    if arg.kind is ArgKind.ENUM:
        return EnumMatcher(arg.enum, arg, vocab)
    if arg.kind is ArgKind.BOOLEAN:
        return EnumMatcher([True, False], arg, vocab)
    if arg.kind in (ArgKind.NUMBER, ArgKind.INTEGER):
        return NumberMatcher(arg, vocab)
    return StringMatcher(arg, vocab)
