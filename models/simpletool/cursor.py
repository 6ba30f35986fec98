"""Where one decode stands on the main sequence: the SimpleTool decoder's per-decode state.

A :class:`DecodeCursor` is made for each decode and dropped with it; the decoder
object keeps none of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from control.tools import ToolCall
from models.constraints import VocabIndex
from models.llama_backend import BatchItem, LlamaContext

__all__ = ["DecodeCursor", "DecodeStats"]


@dataclass
class DecodeStats:
    """What one decode cost, filled in as it goes (see :class:`models.decoder.DecodeResult`)."""

    sampled: int = 0
    prompt_tokens: int = 0
    prompt_evaluated: int = 0
    first_call_ms: float | None = None
    calls: list[ToolCall] = field(default_factory=list)


class DecodeCursor:
    """One decode's position on sequence 0 of ``ctx``, between any two of its steps.

    Invariant, with ``prompt`` the prompt's tokens (``prompt_len`` of them) and
    ``taken`` the answer's tokens already in the KV cache::

        ctx.tokens[0] == prompt + taken + [token for token, _ in ahead]
        the answer so far == taken + pending

    - ``pending``: answer tokens chosen (forced structure, decisions) not yet evaluated;
    - ``ahead``: a draft evaluated after ``taken``, each token with the logits after it:
      not part of the answer until the answer takes the same tokens (:meth:`use_ahead`),
      cut from the cache at the first it does not (:meth:`drop_ahead`);
    - ``logits``: the scores after ``prompt + taken``: the next decision's once
      ``pending`` is empty (:meth:`flush`), stale while it is not;
    - every other sequence is empty (forks for ranking or parallel heads live inside one
      step).

    :meth:`start` establishes it; every method here keeps it (checked where cheap:
    :meth:`check`). Work on the cache directly (a fork) starts with :meth:`settle`.
    """

    def __init__(self, ctx: LlamaContext, vocab: VocabIndex, *, eot: int, request: str,
                 lookup: bool, n_batch_tokens: int, stats: DecodeStats) -> None:
        self.ctx = ctx
        self.vocab = vocab
        self.eot = eot  # the token that ends the answer
        self.request = request  # the user's last turn: what drafts are taken from
        self.lookup = lookup  # whether to draft from the request at all
        self.n_batch_tokens = n_batch_tokens
        self.stats = stats
        self.prompt_len = 0
        self.pending: list[int] = []
        self.ahead: list[tuple[int, np.ndarray]] = []
        self.logits = np.zeros(0, np.float32)

    def start(self, prompt: list[int], cached: int, draft: list[int]) -> None:
        """Evaluate the prompt's new tokens (``cached`` of them are in the cache), and the
        draft after them in the same batch."""
        self.prompt_len = len(prompt)
        if not draft:
            self.logits = self.ctx.logits(self.ctx.sync_prefix(0, prompt))
            self.check()
            return
        self.ctx.truncate(0, cached)
        self.pending = prompt[cached:]  # (prompt tokens: pending only until the flush below)
        self.lookahead(draft)
        self.flush()  # (evaluates the prompt here if the draft did not fit)
        self.check()

    def lookahead(self, draft: list[int]) -> None:
        """Evaluate the pending tokens and ``draft`` after them in one batch, logits at
        each draft token; the draft is then read by the decisions that agree with it.
        A draft that does not fit is skipped (the pending tokens stay pending)."""
        self.settle()
        while draft and draft[-1] == self.eot:
            draft = draft[:-1]  # nothing reads the logits after the end of the answer
        ctx = self.ctx
        pos0, npend = len(ctx.tokens[0]), len(self.pending)
        if (not draft or pos0 + npend + len(draft) >= ctx.n_ctx
                or npend + len(draft) > self.n_batch_tokens):
            return
        items = [BatchItem(t, pos0 + i, (0,), i == npend - 1) for i, t in enumerate(self.pending)]
        items += [BatchItem(t, pos0 + npend + i, (0,), True) for i, t in enumerate(draft)]
        rows = ctx.decode(items)
        if npend:
            self.logits, rows = ctx.logits(rows[0]), rows[1:]
        self.ahead = [(t, ctx.logits(r)) for t, r in zip(draft, rows, strict=True)]
        self.pending = []
        self.check()

    def use_ahead(self) -> None:
        """Serve pending tokens from the evaluated draft while they agree with it."""
        k = 0
        while k < min(len(self.pending), len(self.ahead)) and self.pending[k] == self.ahead[k][0]:
            k += 1
        if k:
            self.logits = self.ahead[k - 1][1]
            self.pending, self.ahead = self.pending[k:], self.ahead[k:]
        if self.pending:
            self.drop_ahead()

    def drop_ahead(self) -> None:
        """Rewind the main sequence past the draft tokens the answer did not take."""
        if self.ahead:
            self.ctx.truncate(0, len(self.ctx.tokens[0]) - len(self.ahead))
            self.ahead = []

    def settle(self) -> None:
        """Before working on the KV cache directly: the draft's agreeing part kept, the rest gone."""
        self.use_ahead()
        self.drop_ahead()

    def flush(self) -> np.ndarray:
        """The next decision's logits: the pending tokens served from the draft or evaluated."""
        self.use_ahead()
        if self.pending:
            row = self.ctx.append(0, self.pending)
            assert row is not None
            self.logits = self.ctx.logits(row)
            self.pending = []
        return self.logits

    def answer(self) -> list[int]:
        """The answer's tokens so far (``taken + pending``)."""
        seq = self.ctx.tokens[0]
        return seq[self.prompt_len:len(seq) - len(self.ahead)] + self.pending

    def check(self) -> None:
        """The invariant's cheap part: the draft ahead is what ends sequence 0, after the prompt."""
        seq = self.ctx.tokens[0]
        n = len(self.ahead)
        assert len(seq) >= self.prompt_len + n, "the cache lost part of the prompt or the draft"
        assert [t for t, _ in self.ahead] == seq[len(seq) - n:], "the draft ahead is not cached"
