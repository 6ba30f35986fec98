"""Prompt lookup: what the request suggests a call, or a value, will be (pure functions).

Values are often copied from the request (``x 0.4`` -> ``x=0.4``, "kitchen" ->
``room=kitchen``). These heuristics guess the tokens ahead; the decoder evaluates the
guess in the same batch as its next decision and keeps it only as far as greedy
decoding agrees (:class:`models.simpletool.cursor.DecodeCursor`), so a wrong guess
costs a few batch tokens, never a different answer. Each function reads only its
arguments: ``vocab`` is anything with ``texts`` and ``tokenize`` (a
:class:`models.constraints.VocabIndex`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from models.callformat import ArgSpec
from models.constraints import EnumMatcher, Matcher, NumberMatcher, StringMatcher, VocabIndex

__all__ = [
    "MAX_DRAFT",
    "call_draft",
    "closes_value",
    "continuation",
    "named_option",
    "number_for",
    "numbers_in_order",
    "request_names",
    "token_text",
    "value_draft",
    "value_lookahead",
    "value_tail",
    "viable_prefix",
]

MAX_DRAFT = 8  # most tokens of one value drafted
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def token_text(vocab: VocabIndex, tokens: Sequence[int]) -> str:
    return "".join(vocab.texts[t] or "" for t in tokens)


def request_names(tool: str, request: str) -> bool:
    """Whether ``request`` names ``tool``: every word of it after the verb, or its plural
    (``set_light``: "turn on the lights"; ``get_weather``: "weather in Rome"; not
    ``get_time`` in "set a timer")."""
    words = tool.lower().split("_")[1:]
    return bool(words) and all(re.search(rf"\b{re.escape(w)}(?:e?s)?\b", request, re.IGNORECASE)
                               for w in words)


def numbers_in_order(request: str, numeric_args: Sequence[str]) -> dict[str, str]:
    """The request's numbers for ``numeric_args`` in order, where it has exactly as many
    ("go to (0.5, -0.1, 0.3)"); else none."""
    said = NUMBER.findall(request)
    return dict(zip(numeric_args, said, strict=True)) if len(said) == len(numeric_args) else {}


def named_option(options: Mapping[str, Any], request: str) -> str | None:
    """The one rendered option (``=kitchen``) whose value the request names as a word
    (``living_room`` as "living room"); None where it names none or several."""
    said = [o for o, v in options.items() if isinstance(v, str)
            and re.search(rf"\b{re.escape(v.replace('_', ' '))}\b", request, re.IGNORECASE)]
    return said[0] if len(said) == 1 else None


def number_for(arg: str, request: str) -> str | None:
    """The number the request gives ``arg``: after its name ("x 0.4", "x: -0.2") or
    right before it ("12 minutes"); None where it gives none."""
    name = re.escape(arg)
    hit = (re.search(rf"\b{name}\b\W{{0,3}}?({NUMBER.pattern})", request)
           or re.search(rf"({NUMBER.pattern})\s*{name}\b", request))
    return hit.group(1) if hit else None


def continuation(request: str, arg: str, body: str) -> str | None:
    """What follows ``body`` (a value begun) in the request, up to 24 characters: looked
    for after the argument's name where the request says it, else anywhere (the last
    place); None where the request does not have ``body``."""
    anchor = re.search(rf"\b{re.escape(arg)}\b", request)
    at = request.find(body, anchor.start() if anchor else 0)
    at = at if at >= 0 else request.rfind(body)
    if at < 0:
        return None
    return request[at + len(body): at + len(body) + 24]


def value_tail(m: Matcher, text: str, lead_text: str, arg: str, request: str,
               number: str | None = None) -> str:
    """The text the request suggests after ``text`` (a value so far, from its ``=``).

    A value not begun yet (``text`` is its forced lead, ``lead_text``) is drafted only
    for a number (the one the request gives the argument, else ``number``: the
    request's numbers taken in order) and for an enum the request names exactly one
    option of; one begun continues as the request goes on after it.
    """
    if not request:
        return ""
    fresh = text == lead_text  # nothing of the value decided yet
    if isinstance(m, EnumMatcher):
        said = named_option(m.options, request) if fresh else None
        return said[len(text):] if said is not None else ""
    body = m.body(text) if text else ""
    if not body:
        if not fresh or not isinstance(m, NumberMatcher):
            return ""
        said = number_for(arg, request)
        if said is None:
            said = number
        return ("=" + said)[len(text):] if said is not None else ""
    return continuation(request, arg, body) or ""


def viable_prefix(m: Matcher, text: str, tail: str) -> str:
    """The longest start of ``tail`` that ``text`` can be followed by (char level)."""
    k = 0
    while k < len(tail) and m.viable(text + tail[:k + 1]):
        k += 1
    return tail[:k]


def value_draft(m: Matcher, text: str, arg: str, request: str, vocab: VocabIndex,
                number: str | None = None) -> list[int]:
    """Tokens the request suggests next for the value ``text`` (:func:`value_tail`), cut
    where the value can't go, at most :data:`MAX_DRAFT`."""
    if not request:
        return []
    tail = viable_prefix(m, text, value_tail(m, text, token_text(vocab, m.lead()), arg,
                                             request, number))
    keep: list[int] = []
    for tok in vocab.tokenize(tail) if tail else []:
        piece = vocab.texts[tok]
        if not piece or not m.viable(text + piece):
            break
        keep.append(tok)
        text += piece
    return keep[:MAX_DRAFT]


def closes_value(m: Matcher, value: str, drafted: bool, request: str) -> bool:
    """Whether ``value`` (``drafted``: with a draft from the request) is over, so what
    follows it is drafted too: a string the request ends with; a value drafted to a
    complete one, or one nothing can extend. A value that can still grow (``=1`` of
    ``=10``) is not closed unless the request says it ends."""
    if not m.complete(value):
        return False
    if isinstance(m, StringMatcher):
        body = m.body(value)
        return bool(body) and request.rstrip(" .!?").endswith(body)
    return drafted or len(m.allowed(value)) == 0


def value_lookahead(m: Matcher, text: str, arg: str, request: str, vocab: VocabIndex,
                    follow: list[int]) -> list[int]:
    """The rest of the value as the request gives it, then, where that ends the value,
    ``follow`` (what most often follows it: the call's close, or the next required
    argument): the logits at its last token decide what comes after it."""
    draft = value_draft(m, text, arg, request, vocab)
    if not closes_value(m, text + token_text(vocab, draft), bool(draft), request):
        return draft
    return draft + follow


def call_draft(args: Sequence[ArgSpec], matchers: Sequence[Matcher | None], request: str,
               vocab: VocabIndex) -> list[int]:
    """The rest of the call as the request suggests it (prompt lookup over the whole
    call, ``x=0.27, y=-0.33, z=0.2)``), up to the first value it does not give, with
    that one's name and forced lead (``on=``): its first decision reads this batch.
    Where only optional arguments are left, the close follows (``minutes=12)``: most
    calls leave them out), so the decision after it needs no pass of its own."""
    tok, close = vocab.tokenize, ""
    out: list[int] = []
    numeric = [a.name for a, m in zip(args, matchers, strict=True)
               if a.required and isinstance(m, NumberMatcher)]
    in_order = numbers_in_order(request, numeric)
    for i, (arg, m) in enumerate(zip(args, matchers, strict=True)):
        if m is None or not arg.required:  # optional ones are most often left out
            return out + tok(close + ")")
        lead = m.lead()
        value = value_draft(m, token_text(vocab, lead), arg.name, request, vocab,
                            in_order.get(arg.name))
        out += tok(close + (", " if i else "") + arg.name) + lead + value
        if not value:
            return out
        close = m.close
    return out + tok(close + ")") if args else out
