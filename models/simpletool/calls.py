"""Decoding one call on a :class:`~models.simpletool.cursor.DecodeCursor`: its name, then
its arguments (one sequence, or parallel heads), each value under its constraint.

Structure is never sampled: forced spans (``(``, argument names, ``, ``, the rest of an
enum member once it is unique, a value's lead ``=`` / ``="``) go to ``cur.pending`` and
are evaluated in the batch of the next decision (jump-forward).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from control.tools import ToolCall, ToolSpec
from models.callformat import ArgSpec, arg_specs
from models.constraints import Matcher, VocabIndex, matcher_for
from models.decoder import DecodeContext, DecodeError
from models.simpletool.cursor import DecodeCursor
from models.simpletool.drafts import call_draft, request_names, token_text, value_lookahead
from models.simpletool.names import Alt, choose, walk
from models.simpletool.parallel import decode_required
from models.simpletool.refs import with_references

__all__ = ["callable_args", "decode_call", "ends_here", "named_call"]

Usable = tuple[ToolSpec, list[ArgSpec], list[Matcher | None]]


def callable_args(spec: ToolSpec, context: DecodeContext, vocab: VocabIndex
                  ) -> tuple[list[ArgSpec], list[Matcher | None]] | None:
    """``spec``'s arguments and their matchers, or None where a required argument has
    no allowed value now (e.g. nothing seen)."""
    args = arg_specs(spec)
    matchers: list[Matcher | None] = []
    for a in args:
        enum = context.enums.get(a.name)
        matchers.append(None if enum is not None and not enum
                        else matcher_for(a, vocab, enum))
    if any(m is None and a.required for m, a in zip(matchers, args, strict=True)):
        return None
    return args, matchers


def _head(spec: ToolSpec, args: list[ArgSpec], vocab: VocabIndex) -> list[int]:
    return vocab.tokenize(f"{spec.name}()" if not args else f"{spec.name}(")


def named_call(cur: DecodeCursor, context: DecodeContext, tools: Sequence[ToolSpec]) -> list[int]:
    """The call of the one tool the request names (``set_timer`` in "set a timer for
    12 minutes"), drafted into the prompt's batch: the name's decisions read it there
    instead of a pass for the branch after ``set_``."""
    named = ([t for t in tools if request_names(t.name, cur.request)]
             if cur.lookup else [])
    got = callable_args(named[0], context, cur.vocab) if len(named) == 1 else None
    if got is None:
        return []
    return _head(named[0], got[0], cur.vocab) + call_draft(*got, cur.request, cur.vocab)


def decode_call(cur: DecodeCursor, context: DecodeContext, tools: Sequence[ToolSpec], n: int,
                can_more: bool, schedule: Literal["parallel", "sequential"],
                whole_names: bool) -> tuple[ToolCall | None, str]:
    """The answer's call ``n`` (None: "no call"), and how it ended (``"end"``: the
    answer's end was chosen with its close; ``"close"``: another call may follow)."""
    alts: list[Alt] = []
    usable: list[Usable] = []
    for spec in tools:
        got = callable_args(spec, context, cur.vocab)
        if got is None:
            continue
        alts.append(Alt("tool", _head(spec, got[0], cur.vocab), len(usable)))
        # the calls decoded so far offer their results as ``$k`` references (refs.py)
        usable.append((spec, got[0], with_references(*got, cur.stats.calls, tools, cur.vocab,
                                                     context.enums)))
    if n == 0:
        alts.append(Alt("none", cur.vocab.tokenize("none()") + [cur.eot]))
    if not alts:
        raise DecodeError("no tool can be called now (every tool needs a value that "
                          "the run-time enums leave empty)")

    def guess(live: list[int]) -> list[int]:
        """The call the request names, among names that share their first tokens."""
        named = [i for i in live if cur.lookup and alts[i].kind == "tool"
                 and request_names(usable[alts[i].index][0].name, cur.request)]
        if len(named) != 1:
            return []
        _, args, matchers = usable[alts[named[0]].index]
        return alts[named[0]].tokens + call_draft(args, matchers, cur.request, cur.vocab)

    choice = alts[choose(cur, alts, whole_names, guess)]
    if choice.kind == "none":
        return None, "end"
    spec, args, matchers = usable[choice.index]
    values: dict[str, Any] = {}
    if schedule == "parallel":
        kind = _args_parallel(cur, args, matchers, values, can_more)
    else:
        cur.use_ahead()
        if cur.lookup and not cur.ahead:
            cur.lookahead(call_draft(args, matchers, cur.request, cur.vocab))
        kind = _args_sequential(cur, args, matchers, values, -1, can_more)
    return ToolCall(spec.name, values, id=str(n + 1)), kind


def ends_here(cur: DecodeCursor) -> bool:
    """After a closed call: the end of the answer, or another call?"""
    alts = [Alt("end", [cur.eot]), Alt("more", cur.vocab.tokenize("\n"))]
    return alts[choose(cur, alts)].kind == "end"


def _follows(cur: DecodeCursor, args: list[ArgSpec], matchers: Sequence[Matcher | None], i: int,
             close: str, can_more: bool) -> list[Alt]:
    """What may come after argument ``i``'s value (``i = -1``: right after ``(``)."""
    alts: list[Alt] = []
    tok = cur.vocab.tokenize
    for j in range(i + 1, len(args)):
        if matchers[j] is not None:
            sep = ", " if i >= 0 else ""
            alts.append(Alt("arg", tok(close + sep + args[j].name), j))
        if args[j].required:
            return alts
    # "name()" already written; where another call may follow, whether one does is
    # decided after this one is yielded (see SimpleToolDecoder._run)
    closing = tok(close + ")") if args else []
    alts.append(Alt("close", closing) if can_more else Alt("end", closing + [cur.eot]))
    return alts


def _args_sequential(cur: DecodeCursor, args: list[ArgSpec], matchers: Sequence[Matcher | None],
                     values: dict[str, Any], start: int, can_more: bool) -> str:
    alt = _follows(cur, args, matchers, start, "", can_more)
    return _args_from(cur, args, matchers, values, alt[choose(cur, alt)], can_more)


def _args_from(cur: DecodeCursor, args: list[ArgSpec], matchers: Sequence[Matcher | None],
               values: dict[str, Any], pick: Alt, can_more: bool) -> str:
    """Decode values on the main sequence from ``pick`` until the call closes."""
    while pick.kind == "arg":
        m = matchers[pick.index]
        assert m is not None
        follows = _follows(cur, args, matchers, pick.index, m.close, can_more)
        text, k = _value(cur, m, follows, args[pick.index].name)
        values[args[pick.index].name] = m.value(text)
        pick = follows[k]
    return pick.kind


def _args_parallel(cur: DecodeCursor, args: list[ArgSpec], matchers: Sequence[Matcher | None],
                   values: dict[str, Any], can_more: bool) -> str:
    req = [j for j, a in enumerate(args) if a.required]
    optional_inside = any(not a.required for a in args[:req[-1]]) if req else True
    if len(req) < 2 or optional_inside:
        return _args_sequential(cur, args, matchers, values, -1, can_more)
    decode_required(cur, args, matchers, req, values)
    rest = _follows(cur, args, matchers, req[-1], "", can_more)
    # optional arguments after the required ones continue on the main sequence
    return _args_from(cur, args, matchers, values, rest[choose(cur, rest)], can_more)


def _value(cur: DecodeCursor, m: Matcher, follows: list[Alt], arg: str) -> tuple[str, int]:
    """Decode one value on the main sequence; returns its text and the follow chosen.

    With ``lookup``, a draft goes ahead of the decisions (:func:`value_lookahead`): the
    value as the request gives it, and the call's end after a value that is over.
    Each decision reads the draft's logits while it agrees, so the result equals
    plain greedy decoding, in fewer forward passes.
    """
    vocab = cur.vocab
    lead = m.lead()  # structure, not a decision: ``=`` of ``=true``, ``="`` of a string
    cur.pending += lead
    text = token_text(vocab, lead)
    texts = vocab.texts
    firsts = np.array(sorted({f.tokens[0] for f in follows}), np.int64)
    for _ in range(m.max_tokens + 1):
        ids = m.allowed(text)
        done = m.complete(text)
        both = np.concatenate([ids, firsts]) if done else ids
        if len(both) == 0:
            raise DecodeError(f"no valid continuation for value {text!r}; "
                              "nothing was returned for this call")
        if len(both) == 1:  # one token can come next (the only object seen): no decision
            best = int(both[0])
        else:
            cur.use_ahead()
            if cur.lookup and not cur.ahead:
                cur.lookahead(value_lookahead(m, text, arg, cur.request, vocab,
                                                     follows[-1].tokens))
            logits = cur.flush()
            best = int(both[int(np.argmax(logits[both]))])
            cur.stats.sampled += 1
        if done and best in firsts:
            group = [k for k, f in enumerate(follows) if f.tokens[0] == best]
            if len(group) == 1:
                cur.pending += follows[group[0]].tokens
                return text, group[0]
            return text, group[walk(cur, [follows[k].tokens for k in group])]
        text += texts[best] or ""
        cur.pending.append(best)
        # While the draft agrees and goes on, its own tokens follow (a forced rest,
        # tokenized alone, may split differently and throw the draft away).
        if not (len(cur.ahead) > 1 and cur.ahead[0][0] == best):
            rest = m.forced(text)
            if rest:
                cur.pending += vocab.tokenize(rest)
                text += rest
    raise DecodeError(f"no valid continuation for value {text!r} within "
                      f"{m.max_tokens} tokens; nothing was returned for this call")
