"""Per-type value constraints for the SimpleTool-style decoder.

A value is decoded as text that starts at its ``prefix``: the ``=`` after an
argument's (or a field's) name, ``=[`` before an array's first element, `` ``
before a later one (the ``,`` is structure) - the prefix belongs to the value
because tokenizers merge it with what follows: ``=-``, ``="`` and ``=["`` are
single tokens in both bundled vocabularies. A token that ends inside the prefix
(``=`` of ``=["``) is allowed only where the prefix's own tokens end there, so the
text stays tokenized as the model reads it. Each
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
  at least ``minLength``, at most ``maxLength`` characters;
- ``null`` and unions of scalars (``number|null``, *any*): :class:`UnionMatcher`.

Arrays and objects are structure, decoded by :mod:`models.simpletool.values` with
these matchers for their scalars (:class:`CompositeMatcher` stands in for them where
a call's arguments are listed).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.callformat import ArgKind, ArgSpec, render_value
from models.copyspans import CopySpans
from models.vocab import BAD_IN_STRING as _BAD_IN_STRING
from models.vocab import VocabIndex

__all__ = ["CompositeMatcher", "EnumMatcher", "Matcher", "NumberMatcher", "StringMatcher",
           "UnionMatcher", "VocabIndex", "matcher_for"]

class Matcher:
    """What a value may look like, as text that starts at ``prefix``."""

    close = ""  # text that ends the value before the structure that follows
    prefix = "="
    vocab: VocabIndex
    _cuts: frozenset[str] = frozenset()

    def set_prefix(self, prefix: str) -> None:
        self.prefix = prefix
        # where the prefix's own tokens end: a token may stop there, not elsewhere inside it
        tokens = self.vocab.tokenize(prefix) if prefix else []
        ends, text = set(), ""
        for t in tokens:
            text += self.vocab.texts[t] or ""
            ends.add(text)
        self._cuts = frozenset(ends)

    def prefix_ok(self, grown: str) -> bool:
        """Whether text ``grown`` (just extended by a token) may stop where it does."""
        return len(grown) >= len(self.prefix) or grown in self._cuts

    def close_for(self, text: str) -> str:
        """The text that closes the value ``text`` (a union's depends on the option)."""
        return self.close

    def allowed(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def complete(self, text: str) -> bool:
        raise NotImplementedError

    def viable(self, text: str) -> bool:
        """Whether ``text`` can still grow into a valid value (char level)."""
        raise NotImplementedError

    def body(self, text: str) -> str:
        """The value's own characters (after the prefix and an opening quote)."""
        return text[len(self.prefix):]

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

    def __init__(self, values: Sequence[Any], arg: ArgSpec | None, vocab: VocabIndex,
                 prefix: str = "=") -> None:
        self.vocab = vocab
        self.set_prefix(prefix)
        self.options = {prefix + render_value(v, arg): v for v in values}
        toks = [vocab.tokenize(opt) for opt in self.options]
        ids: set[int] = set()
        for opt, t in zip(self.options, toks, strict=True):
            ids.update(t)
            for k in range(1, len(prefix) + 1):
                ids.update(vocab.tokenize(opt[k:]))
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
                if texts[i] and any(o.startswith(text + texts[i]) for o in self.options)
                and self.prefix_ok(text + texts[i])]
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
    """Plain decimals inside ``[minimum, maximum]``; integers have no ``.``.

    ``choices`` (numbers as written, e.g. the request's): only those, each at its own
    precision; the rest of one is forced once it is the only one left."""

    def __init__(self, arg: ArgSpec, vocab: VocabIndex, max_frac_digits: int = 4,
                 prefix: str = "=", choices: Sequence[str] | None = None) -> None:
        self.vocab = vocab
        self.set_prefix(prefix)
        self.arg = arg
        self.integer = arg.kind is ArgKind.INTEGER
        self.range = _Range(-math.inf if arg.minimum is None else arg.minimum,
                            math.inf if arg.maximum is None else arg.maximum)
        self.max_frac = 0 if self.integer else max_frac_digits
        big = max(abs(self.range.lo), abs(self.range.hi))
        self.max_int_digits = 9 if math.isinf(big) else max(1, len(str(int(big))))
        self.choices: tuple[str, ...] | None = None
        if choices is not None:
            digits = [c.lstrip("-").split(".") for c in choices]
            self.max_int_digits = max([self.max_int_digits, *(len(d[0]) for d in digits)])
            if not self.integer:
                self.max_frac = max([self.max_frac, *(len(d[1]) for d in digits if len(d) > 1)])
            self.choices = tuple(c for c in choices if self.complete(prefix + c))
        self.max_tokens = self.max_int_digits + self.max_frac + 4

    def _viable(self, text: str) -> bool:
        p = self.prefix
        if not text.startswith(p):
            return p.startswith(text)
        body = text[len(p):]
        if self.choices is not None and not any(c.startswith(body) for c in self.choices):
            return False
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
        return self.vocab.tokenize(self.prefix) if self.range.lo >= 0 else []

    def allowed(self, text: str) -> np.ndarray:
        texts = self.vocab.texts
        ids = self.vocab.numeric_ids if self.prefix == "=" else self.vocab.numeric_for(self.prefix)
        keep = [i for i in ids if self._viable(text + texts[i])  # type: ignore[operator]
                and self.prefix_ok(text + texts[i])]  # type: ignore[operator]
        return np.array(keep, dtype=np.int64)

    def forced(self, text: str) -> str | None:
        if self.choices is None or not text.startswith(self.prefix):
            return None
        body = text[len(self.prefix):]
        left = [c for c in self.choices if c.startswith(body)]
        return left[0][len(body):] if len(left) == 1 and left[0] != body else None

    def complete(self, text: str) -> bool:
        body = text[len(self.prefix):]
        if self.choices is not None and body not in self.choices:
            return False
        if (not text.startswith(self.prefix) or body == "-0"
                or not re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?", body)):
            return False
        if self.integer and "." in body:
            return False
        v = float(body)
        return self.range.lo <= v <= self.range.hi and self.arg.accepts_number(v)

    def value(self, text: str) -> Any:
        body = text[len(self.prefix):]
        return int(body) if "." not in body else float(body)


class StringMatcher(Matcher):
    """A double-quoted string without escapes or newlines, at most ``max_length`` chars."""

    close = '"'

    def __init__(self, arg: ArgSpec, vocab: VocabIndex, default_max_length: int = 80,
                 prefix: str = "=", copy: CopySpans | None = None) -> None:
        self.vocab = vocab
        self.set_prefix(prefix)
        self.open = prefix + '"'
        self.max_length = arg.max_length or max(default_max_length, arg.min_length)
        self.min_length = arg.min_length
        self.max_tokens = self.max_length + 4
        self.arg = arg
        self.copy = copy  # held to spans of the request, where given

    def allowed(self, text: str) -> np.ndarray:
        v, n = self.vocab, len(self.open)
        if len(text) < n:
            if self.prefix == "=":  # (the common case, precomputed)
                ids = v.assign_ids if text == "" else v.open_ids
            else:
                ids = v.opening(self.open, text)
            texts = v.texts
            return np.array([i for i in ids if self.prefix_ok(text + (texts[i] or ""))
                             and len(text + (texts[i] or "")) - n <= self.max_length
                             and (self.copy is None or len(text + (texts[i] or "")) <= n
                                  or self.viable(text + (texts[i] or "")))],
                            dtype=np.int64)
        room = self.max_length - (len(text) - n)
        if self.copy is not None:
            return self.copy.allowed(text[n:], room)
        return np.flatnonzero(v.plain_mask & (v.plain_len <= room))

    def complete(self, text: str) -> bool:
        body = text[len(self.open):]
        return (text.startswith(self.open) and len(body) >= self.min_length
                and (self.copy is None or self.copy.complete(body)))

    def viable(self, text: str) -> bool:
        if self.open.startswith(text):
            return True
        body = text[len(self.open):]
        return (text.startswith(self.open) and len(body) <= self.max_length
                and not _BAD_IN_STRING.search(body)
                and (self.copy is None or self.copy.viable(body)))

    def forced(self, text: str) -> str | None:
        if self.copy is None or not text.startswith(self.open):
            return None
        rest = self.copy.forced(text[len(self.open):])
        room = self.max_length - (len(text) - len(self.open))
        return rest if rest and len(rest) <= room else None

    def body(self, text: str) -> str:
        return text[len(self.open):]

    def lead(self) -> list[int]:
        return self.vocab.tokenize(self.open)

    def value(self, text: str) -> Any:
        return text[len(self.open):]


class UnionMatcher(Matcher):
    """One of several scalar matchers (same prefix): ``number|null``, *any*'s scalars.
    The options part at their first characters (a digit, ``"``, ``t``/``f``, ``n``)."""

    def __init__(self, members: Sequence[Matcher], vocab: VocabIndex) -> None:
        self.vocab = vocab
        self.members = list(members)
        self.prefix = members[0].prefix
        self._cuts = members[0]._cuts
        self.max_tokens = max(m.max_tokens for m in members)
        leads = [m.lead() for m in members]
        self._lead = leads[0] if all(lead == leads[0] for lead in leads) else []

    def _live(self, text: str) -> list[Matcher]:
        return [m for m in self.members if m.viable(text)]

    def allowed(self, text: str) -> np.ndarray:
        parts = [m.allowed(text) for m in self._live(text)]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def complete(self, text: str) -> bool:
        return any(m.complete(text) for m in self.members)

    def viable(self, text: str) -> bool:
        return bool(self._live(text))

    def _done(self, text: str) -> Matcher:
        return next(m for m in self.members if m.complete(text))

    def close_for(self, text: str) -> str:
        return self._done(text).close_for(text) if self.complete(text) else ""

    def body(self, text: str) -> str:
        live = self._live(text)
        return live[0].body(text) if live else text[len(self.prefix):]

    def forced(self, text: str) -> str | None:
        live = self._live(text)
        return live[0].forced(text) if len(live) == 1 else None

    def lead(self) -> list[int]:
        return self._lead

    def value(self, text: str) -> Any:
        return self._done(text).value(text)


class CompositeMatcher(Matcher):
    """Stands in for an array or object argument where a call's arguments are listed
    (drafts stop at it; :mod:`models.simpletool.values` decodes it)."""

    max_tokens = 0

    def __init__(self, arg: ArgSpec, vocab: VocabIndex, enum: Sequence[Any] | None = None) -> None:
        self.arg, self.vocab, self.enum = arg, vocab, enum

    def allowed(self, text: str) -> np.ndarray:
        return np.zeros(0, np.int64)

    def complete(self, text: str) -> bool:
        return False

    def viable(self, text: str) -> bool:
        return False

    def body(self, text: str) -> str:
        return ""

    def value(self, text: str) -> Any:
        raise TypeError("a composite value is decoded by models.simpletool.values")


def matcher_for(arg: ArgSpec, vocab: VocabIndex, enum: Sequence[Any] | None = None,
                prefix: str = "=") -> Matcher:
    """The constraint for ``arg``; ``enum`` narrows it at run time (e.g. visible objects;
    for an array, its elements)."""
    if not arg.scalar:
        return CompositeMatcher(arg, vocab, enum)
    if enum is not None:
        return EnumMatcher(enum, arg, vocab, prefix)
    if arg.kind is ArgKind.UNION:
        plain = [v for o in arg.options for v in
                 (o.enum if o.kind is ArgKind.ENUM else (True, False) if o.kind is ArgKind.BOOLEAN
                  else (None,) if o.kind is ArgKind.NULL else ())]
        members: list[Matcher] = [matcher_for(o, vocab, prefix=prefix) for o in arg.options
                                  if o.kind in (ArgKind.NUMBER, ArgKind.INTEGER, ArgKind.STRING)]
        if plain:
            members.append(EnumMatcher(plain, None, vocab, prefix))
        return members[0] if len(members) == 1 else UnionMatcher(members, vocab)
    if arg.kind is ArgKind.ENUM:
        return EnumMatcher(arg.enum, arg, vocab, prefix)
    if arg.kind is ArgKind.BOOLEAN:
        return EnumMatcher([True, False], arg, vocab, prefix)
    if arg.kind is ArgKind.NULL:
        return EnumMatcher([None], arg, vocab, prefix)
    if arg.kind in (ArgKind.NUMBER, ArgKind.INTEGER):
        return NumberMatcher(arg, vocab, prefix=prefix)
    return StringMatcher(arg, vocab, prefix=prefix)
