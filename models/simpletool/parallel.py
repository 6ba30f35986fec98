"""Parallel argument heads: one sequence per required argument, advanced together.

Each head is forked from the shared prefix ``name(`` and decodes its argument's value
with the argument's name and lead before it (``move_to(`` + ``y=``); all heads step in
one ``llama_batch``. ``schedule="auto"`` picks them only with GPU offload, where three
sequences cost clearly less than three steps (``SimpleToolDecoder``); on the CPU it stays
sequential: a head sees ``move_to(y=`` without the ``x`` before it, and the small models
then copy the first number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.callformat import ArgSpec, render_value
from models.constraints import Matcher
from models.decoder import DecodeError
from models.llama_backend import BatchItem
from models.simpletool.cursor import DecodeCursor
from models.simpletool.drafts import token_text

__all__ = ["decode_required"]


@dataclass
class _Head:
    seq: int
    arg: int
    matcher: Matcher
    follow_first: np.ndarray  # first tokens of what may follow the value (``,`` / ``)``)
    pending: list[int]  # the head's own tokens not yet evaluated
    text: str = ""
    steps: int = 0
    done: bool = False


def decode_required(cur: DecodeCursor, args: list[ArgSpec], matchers: Sequence[Matcher | None],
                    req: list[int], values: dict[str, Any]) -> None:
    """Decode the required arguments ``req`` (indices into ``args``) in parallel heads
    into ``values``; their rendered text (``x=0.4, y=-0.2``) is left in ``cur.pending``
    and the heads' sequences are dropped."""
    cur.settle()
    ctx, tok = cur.ctx, cur.vocab.tokenize
    heads = []
    for h, j in enumerate(req):
        m = matchers[j]
        assert m is not None
        firsts = {tok(m.close + ",")[0], tok(m.close + ")")[0]}
        heads.append(_Head(h + 1, j, m, np.array(sorted(firsts), np.int64),
                           tok(args[j].name) + m.lead(), token_text(cur.vocab, m.lead())))
        ctx.fork(0, h + 1)
    base = len(ctx.tokens[0])
    shared = [BatchItem(t, base + i, (0, *(hd.seq for hd in heads)))
              for i, t in enumerate(cur.pending)]
    cur.pending = []
    while any(not hd.done for hd in heads):
        items = list(shared)
        shared = []
        live = [hd for hd in heads if not hd.done]
        for hd in live:
            pos = len(ctx.tokens[hd.seq]) + sum(1 for it in items if hd.seq in it.seq_ids)
            items += [BatchItem(t, pos + i, (hd.seq,), i == len(hd.pending) - 1)
                      for i, t in enumerate(hd.pending)]
            hd.pending = []
        rows = ctx.decode(items)
        for hd, row in zip(live, rows, strict=True):
            _step(cur, hd, ctx.logits(row))
    for hd in heads:
        ctx.drop(hd.seq)
        values[args[hd.arg].name] = hd.matcher.value(hd.text)
    rendered = ", ".join(f"{args[j].name}={render_value(values[args[j].name], args[j])}"
                         for j in req)
    cur.pending = tok(rendered)


def _step(cur: DecodeCursor, hd: _Head, logits: np.ndarray) -> None:
    m, texts = hd.matcher, cur.vocab.texts
    ids = m.allowed(hd.text) if hd.steps < m.max_tokens else np.zeros(0, np.int64)
    done = m.complete(hd.text)
    cands = np.concatenate([ids, hd.follow_first]) if done else ids
    if len(cands) == 0:
        raise DecodeError(f"no valid continuation for value {hd.text!r}; nothing returned")
    best = int(cands[int(np.argmax(logits[cands]))])
    cur.stats.sampled += 1
    if done and best in set(hd.follow_first.tolist()):
        hd.done = True
        return
    hd.text += texts[best] or ""
    hd.steps += 1
    hd.pending = [best]
    rest = m.forced(hd.text)
    if rest:
        hd.text += rest
    if m.complete(hd.text) and len(m.allowed(hd.text)) == 0:
        hd.done = True  # nothing can follow but the structure: no need to evaluate
    elif rest:
        hd.pending += cur.vocab.tokenize(rest)
