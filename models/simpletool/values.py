"""Decoding one value on a :class:`~models.simpletool.cursor.DecodeCursor`: a scalar under
its matcher, an array, an object, a map or a union, with the structure forced.

Every value is decoded with the structure that may follow it (``follows``: ``, y`` or
``)`` after an argument, ``,`` or ``]`` + what follows the array after an element...):
the value's closing characters and what follows are tokenized together (``"])``,
``},``), as the model reads them, and the first token of each follow competes with the
value's own tokens, so ending a value and choosing what comes next is one decision.
``exits`` are alternatives to the value that are open at its start (``[]``: the empty
array; ``[`` / ``{``: a union's array or object option): a value may be left for one.

The decoder chooses only values and, for arrays and maps, whether another element
comes (bounded by ``maxItems`` or :data:`~models.callschema.DEFAULT_MAX_ITEMS`);
brackets, commas, keys and quotes are forced. ``uniqueItems`` is kept for elements
drawn from a closed set (an element already given is not offered again).

Numbers and strings are held to what the request offers (:mod:`models.simpletool.said`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.argspec import option_for
from models.callformat import ArgKind, ArgSpec, render_key, render_value
from models.constraints import Matcher, matcher_for
from models.decoder import DecodeError
from models.simpletool.cursor import DecodeCursor
from models.simpletool.drafts import token_text, value_lookahead
from models.simpletool.names import Alt, choose, walk
from models.simpletool.said import RequestValues

__all__ = ["Follow", "decode_scalar", "decode_value", "value_pieces"]

@dataclass
class Follow:
    """Structure that may follow a value: its text (``", y"``, ``")"``), the tokens after
    it (the end of turn), and what it leads to (``kind`` / ``index``: the caller's)."""

    text: str
    tail: list[int] = field(default_factory=list)
    kind: str = ""
    index: int = -1


def _follow_tokens(cur: DecodeCursor, close: str, follows: Sequence[Follow]) -> list[list[int]]:
    return [cur.vocab.tokenize(close + f.text) + f.tail for f in follows]


def decode_scalar(cur: DecodeCursor, m: Matcher, follows: Sequence[Follow], arg: str,
                  exits: Sequence[Alt] = ()) -> tuple[str, int]:
    """Decode one value under ``m`` on the main sequence; returns its text and what came
    next: ``k < len(follows)``, ``follows[k]``; else the exit ``k - len(follows)`` was
    taken at the start (no value).

    With ``lookup``, a draft goes ahead of the decisions (:func:`value_lookahead`): the
    value as the request gives it, and the call's end after a value that is over.
    Each decision reads the draft's logits while it agrees, so the result equals
    plain greedy decoding, in fewer forward passes.
    """
    vocab = cur.vocab
    texts = vocab.texts
    lead = m.lead()  # structure, not a decision: ``=`` of ``=true``, ``="`` of a string
    taken: list[int] = []  # this value's tokens so far (an exit lives while it shares them)
    if not exits:
        cur.pending += lead
        taken = list(lead)
    text = token_text(vocab, taken)
    static = None if hasattr(m, "members") else _follow_tokens(cur, m.close, follows)
    for _ in range(m.max_tokens + 1 + (len(lead) if exits else 0)):
        alive = [k for k, e in enumerate(exits)
                 if len(e.tokens) > len(taken) and e.tokens[:len(taken)] == taken]
        if len(taken) < len(lead) and lead[:len(taken)] == taken:
            # the lead's tokens as tokenized, or an exit's token that is a start of it
            # (``=[`` of ``=["`` and ``=[])``: the next token decides)
            opening = token_text(vocab, lead)
            ids = np.array(sorted({lead[len(taken)], *(
                t for k in alive for t in exits[k].tokens[len(taken):len(taken) + 1]
                if opening.startswith(text + (texts[t] or "")))}), np.int64)
        else:
            ids = m.allowed(text) if m.viable(text) else np.zeros(0, np.int64)
        done = m.complete(text)
        ftoks = (static if static is not None else _follow_tokens(cur, m.close_for(text), follows)
                 ) if done else []
        firsts = {t[0] for t in ftoks}
        out = {exits[k].tokens[len(taken)] for k in alive}
        both = np.unique(np.concatenate([ids, np.array(sorted(firsts | out), np.int64)]))
        if len(both) == 0:
            raise DecodeError(f"no valid continuation for value {text!r}; "
                              "nothing was returned for this call")
        if len(both) == 1:  # one token can come next (the only object seen): no decision
            best = int(both[0])
        else:
            cur.use_ahead()
            if cur.lookup and not cur.ahead and not alive:
                follow_last = ftoks[-1] if ftoks else _follow_tokens(
                    cur, m.close_for(text), follows[-1:])[0] if follows else []
                cur.lookahead(value_lookahead(m, text, arg, cur.request, vocab, follow_last))
            logits = cur.flush()
            best = int(both[int(np.argmax(logits[both]))])
            cur.stats.sampled += 1
        if done and best in firsts:
            group = [k for k, t in enumerate(ftoks) if t[0] == best]
            if len(group) == 1:
                cur.pending += ftoks[group[0]]
                return text, group[0]
            return text, group[walk(cur, [ftoks[k] for k in group])]
        if best in out and best not in set(ids.tolist()):
            group = [k for k in alive if exits[k].tokens[len(taken)] == best]
            rest = [exits[k].tokens[len(taken):] for k in group]
            pick = 0 if len(group) == 1 else walk(cur, rest)
            if len(group) == 1:
                cur.pending += rest[0]
            return token_text(vocab, exits[group[pick]].tokens), len(follows) + group[pick]
        text += texts[best] or ""
        taken.append(best)
        cur.pending.append(best)
        # While the draft agrees and goes on, its own tokens follow (a forced rest,
        # tokenized alone, may split differently and throw the draft away).
        if not (len(cur.ahead) > 1 and cur.ahead[0][0] == best) and len(taken) >= len(lead):
            rest = m.forced(text)
            if rest:
                more = vocab.tokenize(rest)
                cur.pending += more
                taken += more
                text += rest
    raise DecodeError(f"no valid continuation for value {text!r} within "
                      f"{m.max_tokens} tokens; nothing was returned for this call")


def decode_value(cur: DecodeCursor, arg: ArgSpec, prefix: str, follows: Sequence[Follow],
                 exits: Sequence[Alt] = (), enum: Sequence[Any] | None = None,
                 opened: bool = False, said: RequestValues | None = None) -> tuple[Any, int]:
    """Decode the value of ``arg`` written after ``prefix`` (``=``, ``=[``, `` ``...);
    returns it and what came next, as :func:`decode_scalar` does (an exit: value None).
    ``enum`` narrows a scalar (an array's elements) at run time; ``opened``: the
    opening ``[`` / ``{`` is already written (a union chose it); ``said``: the request's
    numbers left for this call."""
    said = said if said is not None else RequestValues([])
    if arg.scalar:
        m = said.narrow(matcher_for(arg, cur.vocab, enum, prefix), arg)
        text, k = decode_scalar(cur, m, follows, arg.name, exits)
        if k >= len(follows):
            return None, k
        said.take(m, text)
        return m.value(text), k
    if arg.kind is ArgKind.ARRAY:
        return _array(cur, arg, prefix, follows, exits, enum, opened, said)
    if arg.kind is ArgKind.OBJECT:
        return _object(cur, arg, prefix, follows, exits, opened, said)
    if arg.kind is ArgKind.MAP:
        return _map(cur, arg, prefix, follows, exits, opened, said)
    return _union(cur, arg, prefix, follows, exits, enum, said)


def _closing(close: str, follows: Sequence[Follow]) -> list[Follow]:
    return [Follow(close + f.text, f.tail, "up", j) for j, f in enumerate(follows)]


def _up(follows: Sequence[Follow], exits: Sequence[Alt], inner: Sequence[Follow],
        k: int, n_own_exits: int) -> int:
    """Map an outcome ``k`` of an inner decode to this level's: an exit of this level's
    caller (after ``n_own_exits`` exits of this level's own)."""
    return len(follows) + (k - len(inner) - n_own_exits)


def _array(cur: DecodeCursor, arg: ArgSpec, prefix: str, follows: Sequence[Follow],
           exits: Sequence[Alt], enum: Sequence[Any] | None, opened: bool,
           said: RequestValues) -> tuple[Any, int]:
    items = arg.items
    assert items is not None
    tok = cur.vocab.tokenize
    start = "" if opened else prefix + "["
    cap = arg.item_cap
    pool = list(enum) if enum is not None else (list(items.enum) if items.kind is ArgKind.ENUM
                                                else None)
    unique = arg.unique and pool is not None

    def after(n: int, left: Sequence[Any] | None) -> list[Follow]:
        # another element while the cap, a closed set's unused members and the request's
        # numbers (for numbers) leave one
        # (element n takes one of the request's numbers: one more must be left)
        more = ([Follow(",", kind="more")] if n < arg.min_items or (
            n < cap and (left is None or left) and said.offers(items, need=2)) else [])
        return more + (_closing("]", follows) if n >= arg.min_items else [])

    empty = ([Alt("empty", tok(start + "]" + f.text) + f.tail, j) for j, f in enumerate(follows)]
             if arg.min_items == 0 else [])
    if cap == 0 or (unique and not pool):
        k = choose(cur, [*empty, *exits])
        return ([], empty[k].index) if k < len(empty) else (None, len(follows) + k - len(empty))
    out: list[Any] = []
    inner = after(1, pool if unique else None)
    value, k = decode_value(cur, items, start, inner, [*empty, *exits], pool if unique else enum,
                            said=said)
    if k >= len(inner):  # an exit, at the first element's start
        e = k - len(inner)
        return ([], empty[e].index) if e < len(empty) else (None, _up(follows, exits, inner, k,
                                                                      len(empty)))
    while True:
        out.append(value)
        f = inner[k]
        if f.kind != "more":
            return out, f.index
        left = [v for v in pool if v not in out] if unique and pool is not None else None
        inner = after(len(out) + 1, left)
        value, k = decode_value(cur, items, " ", inner, (), left if unique else enum, said=said)


def _object(cur: DecodeCursor, arg: ArgSpec, prefix: str, follows: Sequence[Follow],
            exits: Sequence[Alt], opened: bool, said: RequestValues) -> tuple[Any, int]:
    fields = arg.fields
    tok = cur.vocab.tokenize
    close = _closing("}", follows)

    def after(i: int) -> list[Follow]:
        """What may come after field ``i``'s value (``i = -1``: right after ``{``)."""
        out: list[Follow] = []
        for j in range(i + 1, len(fields)):
            out.append(Follow((", " if i >= 0 else "") + render_key(fields[j].name),
                              kind="field", index=j))
            if fields[j].required:
                return out
        return out + close

    start = "" if opened else prefix + "{"
    first = after(-1)
    opening = [Alt(f.kind, tok(start + f.text) + f.tail, n) for n, f in enumerate(first)]
    k = choose(cur, [*opening, *exits])
    if k >= len(opening):
        return None, len(follows) + k - len(opening)
    f = first[k]
    values: dict[str, Any] = {}
    while f.kind == "field":
        j = f.index
        inner = after(j)
        value, n = decode_value(cur, fields[j], "=", inner, said=said)
        values[fields[j].name] = value
        f = inner[n]
    return values, f.index


def _map(cur: DecodeCursor, arg: ArgSpec, prefix: str, follows: Sequence[Follow],
         exits: Sequence[Alt], opened: bool, said: RequestValues) -> tuple[Any, int]:
    assert arg.items is not None
    tok = cur.vocab.tokenize
    start = "" if opened else prefix + "{"
    key_arg = ArgSpec(arg.name, ArgKind.STRING, True, min_length=1, max_length=40)
    empty = [Alt("empty", tok(start + "}" + f.text) + f.tail, j) for j, f in enumerate(follows)]
    to_value = [Follow("", kind="value")]
    key_m = said.narrow(matcher_for(key_arg, cur.vocab, prefix=start), key_arg)
    text, k = decode_scalar(cur, key_m, to_value, arg.name, [*empty, *exits])
    if k >= 1:
        e = k - 1
        return ({}, empty[e].index) if e < len(empty) else (None, len(follows) + e - len(empty))
    out: dict[str, Any] = {}
    while True:
        key = key_m.value(text)
        said.take(key_m, text)
        inner = ([Follow(",", kind="more")] if len(out) + 1 < arg.item_cap else []) + _closing(
            "}", follows)
        out[key], n = decode_value(cur, arg.items, "=", inner, said=said)
        if inner[n].kind != "more":
            return out, inner[n].index
        key_m = said.narrow(matcher_for(key_arg, cur.vocab, prefix=" "), key_arg)
        text, _ = decode_scalar(cur, key_m, to_value, arg.name)


def _union(cur: DecodeCursor, arg: ArgSpec, prefix: str, follows: Sequence[Follow],
           exits: Sequence[Alt], enum: Sequence[Any] | None,
           said: RequestValues) -> tuple[Any, int]:
    """A union with an array or object option: its opening bracket is an exit of the
    scalar options' value (or the only choices, where it has no scalar option)."""
    scalars = [o for o in arg.options if o.scalar]
    branches = [o for o in arg.options if not o.scalar]
    tok = cur.vocab.tokenize
    opens = [Alt(str(o.kind), tok(prefix + ("[" if o.kind is ArgKind.ARRAY else "{")), i)
             for i, o in enumerate(branches)]
    if scalars:
        part = scalars[0] if len(scalars) == 1 else ArgSpec(arg.name, ArgKind.UNION, True,
                                                           options=tuple(scalars))
        m = matcher_for(part, cur.vocab, None, prefix)
        text, k = decode_scalar(cur, m, follows, arg.name, [*opens, *exits])
        if k < len(follows):
            return m.value(text), k
        e = k - len(follows)
    else:
        e = choose(cur, [*opens, *exits])
    if e >= len(opens):
        return None, len(follows) + e - len(opens)
    return decode_value(cur, branches[e], prefix, follows, (), enum, opened=True, said=said)


def value_pieces(value: Any, arg: ArgSpec, prefix: str = "=") -> tuple[list[str], str]:
    """A value's text split as this module decodes it: the pieces tokenized apart, and
    the closing text that goes with what follows (``"]`` + ``, next``), for training
    data that tokenizes answers as the decoder does (``models.tune.encode``).

    ``items=["oat milk", "bananas"]`` -> ``(['=["oat milk', '",', ' "bananas'], '"]')``;
    ``{x=0.1, y=0.2}`` -> ``(['={x', '=0.1', ', y', '=0.2'], '}')``; an empty array is
    all close (``"=[]"``: tokenized with what follows)."""
    if arg.kind is ArgKind.UNION:
        arg = option_for(value, arg) or arg
    if arg.scalar or not isinstance(value, list | dict):
        text = prefix + render_value(value, arg)
        quoted = text.endswith('"') and text[len(prefix):].startswith('"')
        return ([text[:-1]], '"') if quoted else ([text], "")
    pieces: list[str] = []
    if isinstance(value, list):
        assert arg.items is not None
        if not value:
            return [], prefix + "[]"
        close, start = "", prefix + "["
        for i, v in enumerate(value):
            inner, end = value_pieces(v, arg.items, start if i == 0 else " ")
            if i:
                pieces.append(close + ",")
            if inner:
                pieces += inner
                close = end
            else:  # (an empty element array: its close opens it)
                pieces.append(end)
                close = ""
        return pieces, close + "]"
    if arg.kind is ArgKind.MAP:
        assert arg.items is not None
        if not value:
            return [], prefix + "{}"
        close = ""
        for i, (k, v) in enumerate(value.items()):
            key, _ = value_pieces(str(k), ArgSpec(arg.name, ArgKind.STRING, True),
                                  prefix + "{" if i == 0 else " ")
            pieces += ([close + ","] if i else []) + key
            inner, close = value_pieces(v, arg.items)
            pieces += ['"', *inner]  # (the key's close: a token of its own, then the value)
        return pieces, close + "}"
    by_name = {f.name: f for f in arg.fields}
    given = [f for f in arg.fields if f.name in value]
    if not given:
        return [], prefix + "{}"
    close = ""
    for i, f in enumerate(given):
        key = render_key(f.name)
        pieces.append(prefix + "{" + key if i == 0 else close + ", " + key)
        inner, close = value_pieces(value[f.name], by_name[f.name])
        pieces += inner
    return pieces, close + "}"
