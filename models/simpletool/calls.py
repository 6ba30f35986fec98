"""Decoding one call on a :class:`~models.simpletool.cursor.DecodeCursor`: its name, then
its arguments (one sequence, or parallel heads), each value under its constraint
(:mod:`models.simpletool.values`: scalars, arrays, objects).

Structure is never sampled: forced spans (``(``, argument names, ``, ``, the rest of an
enum member once it is unique, a value's lead ``=`` / ``="``) go to ``cur.pending`` and
are evaluated in the batch of the next decision (jump-forward).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from control.tools import ToolCall, ToolSpec
from models.callformat import ArgKind, ArgSpec, arg_specs, render_key
from models.constraints import CompositeMatcher, Matcher, VocabIndex, matcher_for
from models.decoder import DecodeContext, DecodeError
from models.simpletool.cursor import DecodeCursor
from models.simpletool.drafts import call_draft, request_names
from models.simpletool.names import Alt, choose
from models.simpletool.parallel import decode_required
from models.simpletool.refs import with_references
from models.simpletool.said import RequestValues
from models.simpletool.values import Follow, decode_scalar, decode_value

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
             can_more: bool, said: RequestValues) -> list[Follow]:
    """What may come after argument ``i``'s value (``i = -1``: right after ``(``). An
    optional number is offered only while the request has a number left for it (as an
    argument whose run-time enum is empty is not offered)."""
    out: list[Follow] = []
    # (argument i's value, a number of the request's, takes one: one more must be left)
    taking = i >= 0 and args[i].kind in (ArgKind.NUMBER, ArgKind.INTEGER) and said.offers(args[i])
    need = 2 if taking else 1
    for j in range(i + 1, len(args)):
        if matchers[j] is not None and (args[j].required or said.offers(args[j], need)):
            sep = ", " if i >= 0 else ""
            out.append(Follow(sep + render_key(args[j].name), kind="arg", index=j))
        if args[j].required:
            return out
    # "name()" already written; where another call may follow, whether one does is
    # decided after this one is yielded (see SimpleToolDecoder._run)
    closing = ")" if args else ""
    out.append(Follow(closing, kind="close") if can_more
               else Follow(closing, [cur.eot], kind="end"))
    return out


def _alts(cur: DecodeCursor, follows: Sequence[Follow], close: str = "") -> list[Alt]:
    tok = cur.vocab.tokenize
    return [Alt(f.kind, (tok(close + f.text) if close + f.text else []) + f.tail, f.index)
            for f in follows]


def _args_sequential(cur: DecodeCursor, args: list[ArgSpec], matchers: Sequence[Matcher | None],
                     values: dict[str, Any], start: int, can_more: bool,
                     said: RequestValues | None = None) -> str:
    said = said if said is not None else RequestValues.of(cur.request, cur.vocab, cur.stats.calls)
    follows = _follows(cur, args, matchers, start, can_more, said)
    alts = _alts(cur, follows)
    return _args_from(cur, args, matchers, values, follows[choose(cur, alts)], can_more, said)


def _args_from(cur: DecodeCursor, args: list[ArgSpec], matchers: Sequence[Matcher | None],
               values: dict[str, Any], pick: Follow, can_more: bool, said: RequestValues) -> str:
    """Decode values on the main sequence from ``pick`` until the call closes (``said``:
    what the request still offers this call)."""
    while pick.kind == "arg":
        m = matchers[pick.index]
        arg = args[pick.index]
        assert m is not None
        follows = _follows(cur, args, matchers, pick.index, can_more, said)
        if isinstance(m, CompositeMatcher):
            values[arg.name], k = decode_value(cur, arg, "=", follows, enum=m.enum, said=said)
        else:
            m = said.narrow(m, arg)
            text, k = decode_scalar(cur, m, follows, arg.name)
            said.take(m, text)
            values[arg.name] = m.value(text)
        pick = follows[k]
    return pick.kind


def _args_parallel(cur: DecodeCursor, args: list[ArgSpec], matchers: Sequence[Matcher | None],
                   values: dict[str, Any], can_more: bool) -> str:
    req = [j for j, a in enumerate(args) if a.required]
    optional_inside = any(not a.required for a in args[:req[-1]]) if req else True
    composite = any(isinstance(matchers[j], CompositeMatcher) for j in req)
    if len(req) < 2 or optional_inside or composite:
        return _args_sequential(cur, args, matchers, values, -1, can_more)
    # (the heads can't take turns: each may take any of the request's numbers)
    said = RequestValues.of(cur.request, cur.vocab, cur.stats.calls)
    decode_required(cur, args, [m if m is None else said.narrow(m, a)
                                for m, a in zip(matchers, args, strict=True)], req, values)
    for v in values.values():
        said.use(v)
    rest = _follows(cur, args, matchers, req[-1], can_more, said)
    # optional arguments after the required ones continue on the main sequence
    return _args_from(cur, args, matchers, values, rest[choose(cur, _alts(cur, rest))], can_more,
                      said)
