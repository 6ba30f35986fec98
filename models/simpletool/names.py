"""Choosing among token alternatives: a tool's name, what follows a value, the answer's end.

Only the allowed tokens are scored, never a grammar over the whole vocabulary. By
default the first token decides; where several alternatives share it (``get_weather``,
``get_time``...), the shared tokens are forced and each branching token decides, one
pass per branch point (:func:`walk`); ``whole`` ranks every alternative by its whole
log-probability, one forked sequence each (:func:`rank`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from models.llama_backend import BatchItem
from models.simpletool.cursor import DecodeCursor

__all__ = ["MAX_FORKS", "Alt", "choose", "rank", "walk"]

MAX_FORKS = 15  # sequences one ranking may fork (the context holds one more: the main one)


@dataclass
class Alt:
    """One alternative: its tokens, what it is, and (``index``) which tool or argument."""

    kind: str  # "arg", "close", "end", "more", "tool", "none"
    tokens: list[int]
    index: int = -1


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = float(x.max())
    return x - (m + float(np.log(np.exp(x - m).sum())))


def choose(cur: DecodeCursor, alts: Sequence[Alt], whole: bool = False,
           guess: Callable[[list[int]], list[int]] | None = None) -> int:
    """Pick an alternative; the chosen tokens not yet evaluated go to ``cur.pending``.

    By default the first token decides and whole candidates are ranked only
    where first tokens collide; ``whole`` ranks every candidate in full.
    ``guess`` (see :func:`walk`) drafts where first tokens collide.
    """
    if len(alts) == 1:
        cur.pending += alts[0].tokens
        return 0
    logits = cur.flush()
    if whole and len(alts) <= MAX_FORKS:
        return rank(cur, [a.tokens for a in alts])
    firsts = np.array(sorted({a.tokens[0] for a in alts}), dtype=np.int64)
    best = int(firsts[int(np.argmax(logits[firsts]))])
    cur.stats.sampled += 1
    group = [i for i, a in enumerate(alts) if a.tokens[0] == best]
    if len(group) == 1:
        cur.pending += alts[group[0]].tokens
        return group[0]
    pick = None if guess is None else (lambda live: guess([group[i] for i in live]))
    return group[walk(cur, [alts[i].tokens for i in group], pick)]


def walk(cur: DecodeCursor, cands: list[list[int]],
         guess: Callable[[list[int]], list[int]] | None = None) -> int:
    """Follow the token trie of candidates that share a first token: the shared
    tokens are forced, each branching token is the argmax over the branches.

    One pass per branching point (``get_`` -> ``weather|time|calendar``) where
    ranking whole candidates forks a sequence per candidate (measured: 5 ``get_*``
    names, ~95 ms vs ~35 ms). A candidate that is a prefix of another can't be told
    apart by a token: those are ranked whole. ``guess(live)``: a draft of the
    candidate the request names (its tokens and what follows them), or none.
    """
    live = list(range(len(cands)))
    pos = 0
    while len(live) > 1:
        if any(len(cands[i]) <= pos for i in live):
            pick = rank(cur, [cands[i][pos:] for i in live])
            return live[pick]
        nxt = {cands[i][pos] for i in live}
        if len(nxt) > 1:
            cur.use_ahead()
            if guess is not None and not cur.ahead:
                cur.lookahead(guess(live)[pos:])
            logits = cur.flush()
            ids = np.array(sorted(nxt), dtype=np.int64)
            best = int(ids[int(np.argmax(logits[ids]))])
            cur.stats.sampled += 1
            live = [i for i in live if cands[i][pos] == best]
        cur.pending.append(cands[live[0]][pos])
        pos += 1
    cur.pending += cands[live[0]][pos:]
    return live[0]


def rank(cur: DecodeCursor, cands: list[list[int]]) -> int:
    """Whole-candidate log-probability ranking; each candidate in its own fork."""
    cur.settle()
    ctx = cur.ctx
    cp = 0
    while all(len(c) > cp for c in cands) and len({c[cp] for c in cands}) == 1:
        cp += 1
    if len(cands) > MAX_FORKS:  # more than we can fork: greedy on the next token
        cur.pending += cands[0][:cp]
        logits = cur.flush()
        nxt = [c[cp] if len(c) > cp else -1 for c in cands]
        i = int(np.argmax([logits[t] if t >= 0 else -np.inf for t in nxt]))
        cur.pending += cands[i][cp:]
        return i
    seqs = list(range(1, len(cands) + 1))
    for s in seqs:
        ctx.fork(0, s)
    shared = cur.pending + cands[0][:cp]
    base = len(ctx.tokens[0])
    items = [BatchItem(t, base + j, (0, *seqs), j == len(shared) - 1)
             for j, t in enumerate(shared)]
    pos = base + len(shared)
    for s, c in zip(seqs, cands, strict=True):
        items += [BatchItem(t, pos + j, (s,), True) for j, t in enumerate(c[cp:-1])]
    rows = ctx.decode(items)
    first = _log_softmax(ctx.logits(rows[0]) if shared else cur.logits)
    scores, r = [], 1 if shared else 0
    for c in cands:
        score = float(first[c[cp]]) if len(c) > cp else -np.inf
        for j in range(cp, len(c) - 1):
            score += float(_log_softmax(ctx.logits(rows[r]))[c[j + 1]])
            r += 1
        scores.append(score)
    best = int(np.argmax(scores))
    if len(cands[best]) - 1 > cp:
        ctx.fork(seqs[best], 0)
    for s in seqs:
        ctx.drop(s)
    cur.pending = cands[best][-1:] if len(cands[best]) > cp else []
    if not cur.pending:  # the shared part was the whole candidate
        cur.logits = ctx.logits(rows[0])
    cur.stats.sampled += 1
    return best
