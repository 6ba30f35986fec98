"""What the request offers the call being decoded: its numbers and its spans of words.

A call's values nearly always come from the request as written (every number and text
value of the project's eval sets does): a number argument (or element) takes one of the
request's numbers where it has any that fit ("5 Ampere", "three", "8%" as 8 or 0.08;
none that fits: the number is free; ``0.0`` as written as well as ``0``), a string one of its spans
(:mod:`models.copyspans`); each written occurrence gives one value per call, and an
optional number is offered only while one is left for it. Numbers an earlier call of
the answer used are left to later calls only where no other fits ("20 and 15 minutes
respectively": one each; "both over the past 30 days": 30 twice).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from control.tools import ToolCall
from models.callformat import ArgKind, ArgSpec, format_number
from models.constraints import Matcher, NumberMatcher, StringMatcher, UnionMatcher, VocabIndex
from models.copyspans import CopySpans

__all__ = ["RequestValues", "request_numbers", "request_spellings"]

_DIGITS = re.compile(r"(-?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(\s*(?:%|percent\b))?")
_WORDS = {w: n for n, w in enumerate([
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty"])}
_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
               "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000, "dozen": 12})
_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.IGNORECASE)


def _digits(request: str) -> list[tuple[int, str, bool]]:
    """Each number written in digits: where, as written (``1,500`` as 1500; a ``-`` only
    where it is a sign, not in ``2022-2023``), and whether a percent follows."""
    out = []
    for m in _DIGITS.finditer(request):
        sign = m.group(1) if m.start() == 0 or not request[m.start() - 1].isalnum() else ""
        out.append((m.start(), sign + m.group(2).replace(",", "") + (m.group(3) or ""),
                    bool(m.group(4))))
    return out


def request_numbers(request: str) -> list[str]:
    """The numbers a request writes, as the format writes them, in order: digits
    (``1,500`` as 1500; a ``-`` only where it is a sign, not in ``2022-2023``), a percent
    also as its fraction (``8%``: 8 and 0.08), and number words (``three``)."""
    out: list[tuple[int, str]] = []
    for start, written, percent in _digits(request):
        value = float(written)
        out.append((start, format_number(value)))
        if percent:
            out.append((start, format_number(round(value / 100, 12))))
    out += [(m.start(), str(_WORDS[m.group(1).lower()])) for m in _WORD.finditer(request)]
    return [text for _, text in sorted(out, key=lambda p: p[0])]


def request_spellings(request: str) -> dict[str, tuple[str, ...]]:
    """Other ways the request writes a number than the format's own (``0.0`` for 0,
    ``2.50`` for 2.5): a model copying the request writes them, and a matcher that
    offered only ``0`` would turn the copied ``0.`` into the next number (``0.3``)."""
    out: dict[str, set[str]] = {}
    for _, written, _ in _digits(request):
        canonical = format_number(float(written))
        if written != canonical:
            out.setdefault(canonical, set()).add(written)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


@dataclass
class RequestValues:
    """What the call being decoded may still take from the request: its numbers no call
    of this answer has used yet (``numbers``), all it writes (``written``: taken again
    where none unused fits: "both 0.3"), and its spans for strings
    (:class:`~models.copyspans.CopySpans`, per call: calls often share a place or name)."""

    numbers: list[str]
    spans: CopySpans | None = None
    written: tuple[str, ...] = ()
    spellings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, request: str, vocab: VocabIndex,
           earlier: Sequence[ToolCall] = ()) -> RequestValues:
        """For the next call of an answer whose ``earlier`` calls are decoded."""
        written = request_numbers(request)
        out = cls(list(written), CopySpans(request, vocab) if request else None, tuple(written),
                  request_spellings(request))
        for call in earlier:
            for v in _leaves(call.arguments):
                if isinstance(v, int | float) and not isinstance(v, bool):
                    out.use(v)
        return out

    def narrow(self, m: Matcher, arg: ArgSpec) -> Matcher:
        """``m`` held to the request: a number to its numbers that fit (unused first), if
        any; a string to its spans."""
        if type(m) is UnionMatcher:
            return UnionMatcher([self.narrow(o, getattr(o, "arg", arg)) for o in m.members],
                                m.vocab)
        if type(m) is StringMatcher and self.spans is not None:
            return StringMatcher(arg, m.vocab, prefix=m.prefix, copy=self.spans)
        if type(m) is not NumberMatcher:
            return m
        for pool in (self.numbers, self.written):
            if pool:
                spelled = [w for n in dict.fromkeys(pool) for w in (n, *self.spellings.get(n, ()))]
                narrowed = NumberMatcher(arg, m.vocab, prefix=m.prefix, choices=spelled)
                if narrowed.choices:
                    return narrowed
        return m

    def take(self, m: Matcher, text: str) -> None:
        """Use up the value ``text`` (decoded under ``m``) for the rest of the call."""
        if isinstance(m, UnionMatcher):
            m = next(o for o in m.members if o.complete(text))
        if isinstance(m, NumberMatcher) and m.choices is not None:
            self.use(m.value(text))
        elif isinstance(m, StringMatcher) and m.copy is not None:
            m.copy.take(m.body(text))

    def offers(self, arg: ArgSpec, need: int = 1) -> bool:
        """Whether the request still has a value for ``arg``: for a number, ``need``
        numbers left that fit it (one more where the value being decoded takes one);
        anything else, always."""
        if arg.kind not in (ArgKind.NUMBER, ArgKind.INTEGER):
            return True
        return sum(1 for n in self.numbers if arg.accepts_number(v := float(n)) and (
            arg.kind is ArgKind.NUMBER or v.is_integer())) >= need

    def use(self, value: Any) -> None:
        """Use up one occurrence of ``value`` if it is one of the request's numbers."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = format_number(value)
            if text in self.numbers:
                self.numbers.remove(text)
        elif isinstance(value, str) and self.spans is not None:
            self.spans.take(value)
