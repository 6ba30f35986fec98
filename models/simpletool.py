"""SimpleTool-style decoding on llama.cpp: structure forced, values decoded in parallel.

The answer is in the compact call format (:mod:`models.callformat`). Nothing
of its structure is sampled:

- **Jump-forward**: forced spans (``(``, argument names, ``, ``, the rest of an
  enum member once it is unique) are appended in the same batch as the next
  decision, never one token at a time.
- **Function name**: only the allowed tokens of a trie over the tokenized names
  are scored, never a grammar over the whole vocabulary: where several names
  share the chosen first token (``get_weather``, ``get_time``, ...), the shared
  tokens are forced and the branching token decides, one pass per branch point.
  ``name_scoring="whole"`` instead ranks every name by its whole log-probability
  (one batch, one forked sequence per name).
- **Arguments** under per-type constraints (:mod:`models.constraints`). Two
  schedules: ``"sequential"`` (one sequence, every value conditioned on the
  ones before) and ``"parallel"`` (one sequence per required argument, all
  forked from the shared prefix ``name(`` and advanced together in one
  ``llama_batch`` per step). ``"auto"`` times one decode step of 1 vs 3
  sequences on this model and device at start-up and picks parallel only with
  GPU offload and where three sequences cost clearly less than three steps. On
  the CPU it stays sequential: a parallel head sees ``move_to(y=`` without the
  ``x`` before it, and the small models (base or our adapter, trained on the
  sequential text) then copy the first number (measured: ``y 0.0`` -> ``y=0.5``).
- **Prompt lookup** (``lookup=True``): values are often copied from the request
  (``x 0.4`` -> ``x=0.4``); a draft taken from the request is verified in the
  same batch and kept only as far as it is the constrained argmax, so the
  output is exactly greedy decoding's, in fewer forward passes. Once the name
  is chosen, the whole rest of the call is drafted so where the request gives
  its values (``move_to(`` + ``x=0.27, y=-0.33, z=0.2)``: one pass, not four);
  the call of the one tool the request names (every word after the verb:
  ``set_timer`` in "set a timer for 12 minutes") is drafted in the prompt's own
  batch, name and all (one pass in all); where names collide, the one the request
  names is drafted with its call from the branching token on; a value
  that is over (``=true``, a string the request ends with) is drafted with what
  follows it (``)``), so the decision after it reads the same batch. A draft
  agreed with costs a few batch tokens (~5 ms each here), a pass saved ~25 ms.
  "Exactly" is up to llama.cpp's arithmetic: a token evaluated in a batch gets
  logits a little different from the same token evaluated alone (top-two logit
  gaps moved by up to ~0.35 here), so a decision that is a near tie can go the
  other way (seen: ``set_light(..., on=true)`` vs ``..., brightness=30)``).
- **Leads**: the token every value of an argument starts with (``=`` before
  ``true`` / ``false``, an enum member or an unsigned number, ``="`` before a
  string) is structure and forced; a signed number's ``=`` / ``=-`` is decided.
- Several calls per answer (``max_calls``), yielded one by one by ``decode_stream``
  as soon as each call's ``)`` is decided; whether another call follows is
  decided after the yield, so the caller can start the call one pass earlier.
- The system prompt, tool list and examples are evaluated once; a call
  evaluates only the tokens after the cached prefix.
- **Answer drafts** (``DecodeContext.draft``, e.g. the calls decoded for a
  partial transcript): the draft's tokens go into the prompt's own batch with
  logits at each; every decision then reads them while the answer agrees with
  the draft and drops the rest at the first token it does not (the same
  greedy answer; a draft the decoder produced itself is replayed token for token).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from control.tools import ToolCall, ToolSpec
from models.artifacts import describe_gguf
from models.callformat import ArgSpec, arg_specs, check_expressible, render, render_value
from models.constraints import (
    EnumMatcher,
    Matcher,
    NumberMatcher,
    StringMatcher,
    VocabIndex,
    matcher_for,
)
from models.decoder import DecodeContext, DecodeError, DecodeResult
from models.llama_backend import (
    BackendOptions,
    BatchItem,
    LlamaContext,
    LlamaModel,
)
from models.prompts import Example, build_messages, fallback_template, render_answer
from models.resolve import ResolvedModel
from realtime.errors import ConfigError

__all__ = ["SimpleToolDecoder"]

Schedule = Literal["auto", "parallel", "sequential"]
_MAX_FORKS = 15
_MAX_DRAFT = 8
_MAX_ANSWERS = 32  # answers remembered token for token, for drafts
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _names(tool: str, request: str) -> bool:
    """Whether ``request`` names ``tool``: every word of it after the verb, or its plural
    (``set_light``: "turn on the lights"; ``get_weather``: "weather in Rome"; not
    ``get_time`` in "set a timer")."""
    words = tool.lower().split("_")[1:]
    return bool(words) and all(re.search(rf"\b{re.escape(w)}(?:e?s)?\b", request, re.IGNORECASE)
                               for w in words)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = float(x.max())
    return x - (m + float(np.log(np.exp(x - m).sum())))


@dataclass
class _Alt:
    kind: str  # "arg", "close", "end", "more", "tool", "none"
    tokens: list[int]
    index: int = -1


@dataclass
class _Head:
    seq: int
    arg: int
    matcher: Matcher
    follow_first: np.ndarray
    pending: list[int]
    text: str = ""
    steps: int = 0
    done: bool = False


@dataclass
class _Stats:
    sampled: int = 0
    prompt_tokens: int = 0
    prompt_evaluated: int = 0
    first_call_ms: float | None = None
    calls: list[ToolCall] = field(default_factory=list)


class SimpleToolDecoder:
    """See the module docstring. Close it (or use ``with``) to free llama.cpp memory."""

    name = "simpletool"

    def __init__(self, model: ResolvedModel, *, n_threads: int | None = None,
                 n_gpu_layers: int = 0, schedule: Schedule = "auto", max_calls: int = 4,
                 n_ctx_tokens: int = 2048,
                 examples: Sequence[Example] | None = None, lookup: bool = True,
                 name_scoring: Literal["first", "whole"] = "first",
                 verbose: bool = False) -> None:
        if schedule not in ("auto", "parallel", "sequential"):
            raise ConfigError(f"schedule: expected auto, parallel or sequential, got {schedule!r}")
        if max_calls < 1:
            raise ConfigError(f"max_calls: expected >= 1, got {max_calls}")
        self.options = BackendOptions(n_ctx_tokens=n_ctx_tokens, n_seq_max=_MAX_FORKS + 1,
                                      n_threads=n_threads, n_gpu_layers=n_gpu_layers,
                                      lora_path=model.adapter, verbose=verbose)
        self.model = LlamaModel(model.run_file.path, self.options,
                                merged_lora=model.run_file.lora_merged)
        try:
            self.ctx = LlamaContext(self.model, self.options)
            self.vocab = VocabIndex(self.model)
        except BaseException:
            self.model.close()
            raise
        self.template = self.model.chat_template() or fallback_template(
            describe_gguf(model.gguf).architecture)
        self.eot = self._find_eot()
        self.max_calls = max_calls
        self.examples = examples
        self.lookup = lookup
        if name_scoring not in ("first", "whole"):
            raise ConfigError(f"name_scoring: expected first or whole, got {name_scoring!r}")
        self.name_scoring = name_scoring
        self.request = ""
        self.pending: list[int] = []
        self.ahead: list[tuple[int, np.ndarray]] = []  # evaluated draft: (token, logits after it)
        self._answers: OrderedDict[str, list[int]] = OrderedDict()
        self.step_ms: dict[int, float] = {}
        self.schedule: Literal["parallel", "sequential"] = (
            self._measure_schedule() if schedule == "auto" else schedule)

    # ------------------------------------------------------------------ set-up
    def _find_eot(self) -> int:
        """The token the chat template writes after an assistant turn."""
        text = self.model.apply_chat_template(
            self.template, [{"role": "user", "content": "a"},
                            {"role": "assistant", "content": "XYZ"}], False)
        after = text.split("XYZ", 1)[1]
        toks = self.model.tokenize(after, parse_special=True)
        if toks and self.model.is_eog(toks[0]):
            return toks[0]
        eog = self.model.eog_tokens()
        if not eog:
            raise DecodeError("the model has no end-of-turn token; use an instruct GGUF")
        return eog[0]

    def _measure_schedule(self) -> Literal["parallel", "sequential"]:
        """Time one step of 1 and of 3 sequences; parallel only on a GPU and if 3 cost < 2.4x one."""
        ctx = self.ctx
        ctx.sync_prefix(0, self.model.tokenize("Calibrating the decoder schedule.",
                                               add_special=True))
        n = len(ctx.tokens[0])
        tok = ctx.tokens[0][-1]
        for k in (1, 3):
            best = float("inf")
            for _ in range(3):
                for s in range(1, k + 1):
                    ctx.fork(0, s)
                t0 = time.perf_counter()
                ctx.decode([BatchItem(tok, n, (s,), True) for s in range(1, k + 1)])
                best = min(best, (time.perf_counter() - t0) * 1e3)
            self.step_ms[k] = best
        ctx.clear()
        faster = self.step_ms[3] < 2.4 * self.step_ms[1]
        return "parallel" if faster and self.options.n_gpu_layers != 0 else "sequential"

    # ------------------------------------------------------------------ public
    def decode(self, context: DecodeContext | Sequence[Mapping[str, str]],
               tools: Sequence[ToolSpec]) -> DecodeResult:
        t0 = time.perf_counter()
        passes0 = self.ctx.forward_passes
        stats = _Stats()
        calls = list(self._run(DecodeContext.coerce(context), tools, stats, t0))
        latency = (time.perf_counter() - t0) * 1e3
        as_json = render_answer(calls, tools, "json")
        return DecodeResult(
            calls=calls, latency_ms=latency, prompt_tokens=stats.prompt_tokens,
            forward_passes=self.ctx.forward_passes - passes0, sampled_tokens=stats.sampled,
            json_tokens=len(self.vocab.tokenize(as_json)), text=render(calls, tools),
            prompt_tokens_evaluated=stats.prompt_evaluated, first_call_ms=stats.first_call_ms)

    def decode_stream(self, context: DecodeContext | Sequence[Mapping[str, str]],
                      tools: Sequence[ToolSpec]) -> Iterator[ToolCall]:
        """Yield each call as soon as its closing ``)`` is decided."""
        yield from self._run(DecodeContext.coerce(context), tools, _Stats(), time.perf_counter())

    def close(self) -> None:
        if getattr(self, "ctx", None) is not None:
            self.ctx.close()
        if getattr(self, "model", None) is not None:
            self.model.close()

    def __enter__(self) -> SimpleToolDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ one decode
    def _run(self, context: DecodeContext, tools: Sequence[ToolSpec], stats: _Stats,
             t0: float) -> Iterator[ToolCall]:
        if not tools:
            raise ConfigError("decode: expected at least one tool, got none")
        check_expressible(tools)
        self._check_enums(context, tools)
        msgs = build_messages(tools, context.messages, "compact", self.examples)
        text = self.model.apply_chat_template(self.template, msgs, True)
        prompt = self.model.tokenize(text, add_special=self.model.add_bos, parse_special=True)
        cached = self._common_prefix(prompt)
        stats.prompt_tokens, stats.prompt_evaluated = len(prompt), len(prompt) - cached
        self.stats = stats
        self.request = str(context.messages[-1].get("content", ""))
        self.pending, self.ahead = [], []
        draft = self._draft_tokens(context, tools) or self._named_call(context, tools)
        self.logits = self._evaluate_prompt(prompt, cached, draft)
        max_calls = context.max_calls or self.max_calls
        try:
            for n in range(max_calls):
                call, kind = self._one_call(context, tools, n, n + 1 < max_calls)
                if call is None:
                    break
                stats.calls.append(call)
                if stats.first_call_ms is None:
                    stats.first_call_ms = (time.perf_counter() - t0) * 1e3
                yield call
                if kind == "end" or self._ends_here():
                    break
            self._remember(len(prompt), stats.calls, tools)
        finally:
            for s in range(1, self.options.n_seq_max):
                if self.ctx.tokens[s]:
                    self.ctx.drop(s)

    # ------------------------------------------------------------------ drafts
    def _draft_tokens(self, context: DecodeContext, tools: Sequence[ToolSpec]) -> list[int]:
        if context.draft is None:
            return []
        text = render(context.draft, tools)
        known = self._answers.get(text)
        return list(known) if known is not None else self.vocab.tokenize(text) + [self.eot]

    def _remember(self, prompt_len: int, calls: list[ToolCall], tools: Sequence[ToolSpec]) -> None:
        """Keep a finished answer's tokens, so a draft of it is replayed exactly."""
        seq = self.ctx.tokens[0]
        answer = seq[prompt_len:len(seq) - len(self.ahead)] + self.pending
        key = render(calls, tools)
        self._answers[key] = answer
        self._answers.move_to_end(key)
        while len(self._answers) > _MAX_ANSWERS:
            self._answers.popitem(last=False)

    def _evaluate_prompt(self, prompt: list[int], cached: int, draft: list[int]) -> np.ndarray:
        """The prompt's new tokens, and the draft after them, in one batch."""
        if not draft:
            return self.ctx.logits(self.ctx.sync_prefix(0, prompt))
        self.ctx.truncate(0, cached)
        self.pending = prompt[cached:]
        self._lookahead(draft)
        return self._flush()  # (evaluates the prompt here if the draft did not fit)

    def _lookahead(self, draft: list[int]) -> None:
        """Evaluate the pending tokens and ``draft`` after them in one batch, logits at
        each draft token; the draft is then read by the decisions that agree with it.
        A draft that does not fit is skipped (the pending tokens stay pending)."""
        self._settle()
        while draft and draft[-1] == self.eot:
            draft = draft[:-1]  # nothing reads the logits after the end of the answer
        ctx = self.ctx
        pos0, npend = len(ctx.tokens[0]), len(self.pending)
        if (not draft or pos0 + npend + len(draft) >= ctx.n_ctx
                or npend + len(draft) > self.options.n_batch_tokens):
            return
        items = [BatchItem(t, pos0 + i, (0,), i == npend - 1) for i, t in enumerate(self.pending)]
        items += [BatchItem(t, pos0 + npend + i, (0,), True) for i, t in enumerate(draft)]
        rows = ctx.decode(items)
        if npend:
            self.logits, rows = ctx.logits(rows[0]), rows[1:]
        self.ahead = [(t, ctx.logits(r)) for t, r in zip(draft, rows, strict=True)]
        self.pending = []

    def _use_ahead(self) -> None:
        """Serve pending tokens from the evaluated draft while they agree with it."""
        k = 0
        while k < min(len(self.pending), len(self.ahead)) and self.pending[k] == self.ahead[k][0]:
            k += 1
        if k:
            self.logits = self.ahead[k - 1][1]
            self.pending, self.ahead = self.pending[k:], self.ahead[k:]
        if self.pending:
            self._drop_ahead()

    def _drop_ahead(self) -> None:
        """Rewind the main sequence past the draft tokens the answer did not take."""
        if self.ahead:
            self.ctx.truncate(0, len(self.ctx.tokens[0]) - len(self.ahead))
            self.ahead = []

    def _settle(self) -> None:
        """Before working on the KV cache directly: the draft's agreeing part kept, the rest gone."""
        self._use_ahead()
        self._drop_ahead()

    def _text(self, tokens: Sequence[int]) -> str:
        return "".join(self.vocab.texts[t] or "" for t in tokens)

    def _ends_here(self) -> bool:
        """After a closed call: the end of the answer, or another call?"""
        alts = [_Alt("end", [self.eot]), _Alt("more", self.vocab.tokenize("\n"))]
        return alts[self._choose(alts)].kind == "end"

    def _check_enums(self, context: DecodeContext, tools: Sequence[ToolSpec]) -> None:
        names = {a for t in tools for a in t.properties}
        unknown = sorted(set(context.enums) - names)
        if unknown:
            raise ConfigError(f"enums restrict argument(s) {unknown} that no tool has; "
                              f"arguments: {sorted(names)}")

    def _common_prefix(self, prompt: list[int]) -> int:
        cached = self.ctx.tokens[0]
        n = 0
        while n < min(len(cached), len(prompt) - 1) and cached[n] == prompt[n]:
            n += 1
        return n

    # ------------------------------------------------------------------ choices
    def _flush(self) -> np.ndarray:
        self._use_ahead()
        if self.pending:
            row = self.ctx.append(0, self.pending)
            assert row is not None
            self.logits = self.ctx.logits(row)
            self.pending = []
        return self.logits

    def _choose(self, alts: Sequence[_Alt], whole: bool = False,
                guess: Callable[[list[int]], list[int]] | None = None) -> int:
        """Pick an alternative; the chosen tokens not yet evaluated go to ``pending``.

        By default the first token decides and whole candidates are ranked only
        where first tokens collide; ``whole`` ranks every candidate in full.
        ``guess`` (see :meth:`_walk`) drafts where first tokens collide.
        """
        if len(alts) == 1:
            self.pending += alts[0].tokens
            return 0
        logits = self._flush()
        if whole and len(alts) <= _MAX_FORKS:
            return self._rank([a.tokens for a in alts])
        firsts = np.array(sorted({a.tokens[0] for a in alts}), dtype=np.int64)
        best = int(firsts[int(np.argmax(logits[firsts]))])
        self.stats.sampled += 1
        group = [i for i, a in enumerate(alts) if a.tokens[0] == best]
        if len(group) == 1:
            self.pending += alts[group[0]].tokens
            return group[0]
        pick = None if guess is None else (lambda live: guess([group[i] for i in live]))
        return group[self._walk([alts[i].tokens for i in group], pick)]

    def _walk(self, cands: list[list[int]],
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
                pick = self._rank([cands[i][pos:] for i in live])
                return live[pick]
            nxt = {cands[i][pos] for i in live}
            if len(nxt) > 1:
                self._use_ahead()
                if guess is not None and not self.ahead:
                    self._lookahead(guess(live)[pos:])
                logits = self._flush()
                ids = np.array(sorted(nxt), dtype=np.int64)
                best = int(ids[int(np.argmax(logits[ids]))])
                self.stats.sampled += 1
                live = [i for i in live if cands[i][pos] == best]
            self.pending.append(cands[live[0]][pos])
            pos += 1
        self.pending += cands[live[0]][pos:]
        return live[0]

    def _rank(self, cands: list[list[int]]) -> int:
        """Whole-candidate log-probability ranking; each candidate in its own fork."""
        self._settle()
        ctx = self.ctx
        cp = 0
        while all(len(c) > cp for c in cands) and len({c[cp] for c in cands}) == 1:
            cp += 1
        if len(cands) > _MAX_FORKS:  # more than we can fork: greedy on the next token
            self.pending += cands[0][:cp]
            logits = self._flush()
            nxt = [c[cp] if len(c) > cp else -1 for c in cands]
            i = int(np.argmax([logits[t] if t >= 0 else -np.inf for t in nxt]))
            self.pending += cands[i][cp:]
            return i
        seqs = list(range(1, len(cands) + 1))
        for s in seqs:
            ctx.fork(0, s)
        shared = self.pending + cands[0][:cp]
        base = len(ctx.tokens[0])
        items = [BatchItem(t, base + j, (0, *seqs), j == len(shared) - 1)
                 for j, t in enumerate(shared)]
        pos = base + len(shared)
        for s, c in zip(seqs, cands, strict=True):
            items += [BatchItem(t, pos + j, (s,), True) for j, t in enumerate(c[cp:-1])]
        rows = ctx.decode(items)
        first = _log_softmax(ctx.logits(rows[0]) if shared else self.logits)
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
        self.pending = cands[best][-1:] if len(cands[best]) > cp else []
        if not self.pending:  # the shared part was the whole candidate
            self.logits = ctx.logits(rows[0])
        self.stats.sampled += 1
        return best

    # ------------------------------------------------------------------ calls
    def _one_call(self, context: DecodeContext, tools: Sequence[ToolSpec], n: int,
                  can_more: bool) -> tuple[ToolCall | None, str]:
        alts: list[_Alt] = []
        usable: list[tuple[ToolSpec, list[ArgSpec], list[Matcher | None]]] = []
        for spec in tools:
            got = self._callable(spec, context)
            if got is None:
                continue
            alts.append(_Alt("tool", self._head(spec, got[0]), len(usable)))
            usable.append((spec, *got))
        if n == 0:
            alts.append(_Alt("none", self.vocab.tokenize("none()") + [self.eot]))
        if not alts:
            raise DecodeError("no tool can be called now (every tool needs a value that "
                              "the run-time enums leave empty)")

        def guess(live: list[int]) -> list[int]:
            """The call the request names, among names that share their first tokens."""
            named = [i for i in live if self.lookup and alts[i].kind == "tool"
                     and _names(usable[alts[i].index][0].name, self.request)]
            if len(named) != 1:
                return []
            _, args, matchers = usable[alts[named[0]].index]
            return alts[named[0]].tokens + self._call_draft(args, matchers)

        choice = alts[self._choose(alts, self.name_scoring == "whole", guess)]
        if choice.kind == "none":
            return None, "end"
        spec, args, matchers = usable[choice.index]
        values: dict[str, Any] = {}
        if self.schedule == "parallel":
            kind = self._args_parallel(args, matchers, values, can_more)
        else:
            self._use_ahead()
            if self.lookup and not self.ahead:
                self._lookahead(self._call_draft(args, matchers))
            kind = self._args_sequential(args, matchers, values, -1, can_more)
        return ToolCall(spec.name, values, id=str(n + 1)), kind

    def _callable(self, spec: ToolSpec, context: DecodeContext
                  ) -> tuple[list[ArgSpec], list[Matcher | None]] | None:
        """``spec``'s arguments and their matchers, or None where a required argument has
        no allowed value now (e.g. nothing seen)."""
        args = arg_specs(spec)
        matchers: list[Matcher | None] = []
        for a in args:
            enum = context.enums.get(a.name)
            matchers.append(None if enum is not None and not enum
                            else matcher_for(a, self.vocab, enum))
        if any(m is None and a.required for m, a in zip(matchers, args, strict=True)):
            return None
        return args, matchers

    def _head(self, spec: ToolSpec, args: list[ArgSpec]) -> list[int]:
        return self.vocab.tokenize(f"{spec.name}()" if not args else f"{spec.name}(")

    def _named_call(self, context: DecodeContext, tools: Sequence[ToolSpec]) -> list[int]:
        """The call of the one tool the request names (``set_timer`` in "set a timer for
        12 minutes"), drafted into the prompt's batch: the name's decisions read it there
        instead of a pass for the branch after ``set_``."""
        named = [t for t in tools if _names(t.name, self.request)] if self.lookup else []
        got = self._callable(named[0], context) if len(named) == 1 else None
        if got is None:
            return []
        return self._head(named[0], got[0]) + self._call_draft(*got)

    def _call_draft(self, args: list[ArgSpec], matchers: Sequence[Matcher | None]) -> list[int]:
        """The rest of the call as the request suggests it (prompt lookup over the whole
        call, ``x=0.27, y=-0.33, z=0.2)``), up to the first value it does not give, with
        that one's name and forced lead (``on=``): its first decision reads this batch.
        Where only optional arguments are left, the close follows (``minutes=12)``: most
        calls leave them out), so the decision after it needs no pass of its own."""
        tok, out, close = self.vocab.tokenize, [], ""
        numeric = [a.name for a, m in zip(args, matchers, strict=True)
                   if a.required and isinstance(m, NumberMatcher)]
        said = _NUMBER.findall(self.request)
        in_order = dict(zip(numeric, said, strict=True)) if len(said) == len(numeric) else {}
        for i, (arg, m) in enumerate(zip(args, matchers, strict=True)):
            if m is None or not arg.required:  # optional ones are most often left out
                return out + tok(close + ")")
            lead = m.lead()
            value = self._draft(m, self._text(lead), arg.name, in_order.get(arg.name))
            out += tok(close + (", " if i else "") + arg.name) + lead + value
            if not value:
                return out
            close = m.close
        return out + tok(close + ")") if args else out

    def _follows(self, args: list[ArgSpec], matchers: Sequence[Matcher | None], i: int,
                 close: str, can_more: bool) -> list[_Alt]:
        """What may come after argument ``i``'s value (``i = -1``: right after ``(``)."""
        alts: list[_Alt] = []
        tok = self.vocab.tokenize
        for j in range(i + 1, len(args)):
            if matchers[j] is not None:
                sep = ", " if i >= 0 else ""
                alts.append(_Alt("arg", tok(close + sep + args[j].name), j))
            if args[j].required:
                return alts
        # "name()" already written; where another call may follow, whether one does is
        # decided after this one is yielded (see _run)
        closing = tok(close + ")") if args else []
        alts.append(_Alt("close", closing) if can_more else _Alt("end", closing + [self.eot]))
        return alts

    def _args_sequential(self, args: list[ArgSpec], matchers: Sequence[Matcher | None],
                         values: dict[str, Any], start: int, can_more: bool) -> str:
        alt = self._follows(args, matchers, start, "", can_more)
        return self._args_from(args, matchers, values, alt[self._choose(alt)], can_more)

    def _args_from(self, args: list[ArgSpec], matchers: Sequence[Matcher | None],
                   values: dict[str, Any], pick: _Alt, can_more: bool) -> str:
        """Decode values on the main sequence from ``pick`` until the call closes."""
        while pick.kind == "arg":
            m = matchers[pick.index]
            assert m is not None
            follows = self._follows(args, matchers, pick.index, m.close, can_more)
            text, k = self._value(m, follows, args[pick.index].name)
            values[args[pick.index].name] = m.value(text)
            pick = follows[k]
        return pick.kind

    def _value(self, m: Matcher, follows: list[_Alt], arg: str) -> tuple[str, int]:
        """Decode one value on the main sequence; returns its text and the follow chosen.

        With ``lookup``, a draft goes ahead of the decisions (:meth:`_value_draft`): the
        value as the request gives it, and the call's end after a value that is over.
        Each decision reads the draft's logits while it agrees, so the result equals
        plain greedy decoding, in fewer forward passes.
        """
        lead = m.lead()  # structure, not a decision: ``=`` of ``=true``, ``="`` of a string
        self.pending += lead
        text = self._text(lead)
        texts = self.vocab.texts
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
                self._use_ahead()
                if self.lookup and not self.ahead:
                    self._lookahead(self._value_draft(m, text, arg, follows))
                logits = self._flush()
                best = int(both[int(np.argmax(logits[both]))])
                self.stats.sampled += 1
            if done and best in firsts:
                group = [k for k, f in enumerate(follows) if f.tokens[0] == best]
                if len(group) == 1:
                    self.pending += follows[group[0]].tokens
                    return text, group[0]
                return text, group[self._walk([follows[k].tokens for k in group])]
            text += texts[best] or ""
            self.pending.append(best)
            # While the draft agrees and goes on, its own tokens follow (a forced rest,
            # tokenized alone, may split differently and throw the draft away).
            if not (len(self.ahead) > 1 and self.ahead[0][0] == best):
                rest = m.forced(text)
                if rest:
                    self.pending += self.vocab.tokenize(rest)
                    text += rest
        raise DecodeError(f"no valid continuation for value {text!r} within "
                          f"{m.max_tokens} tokens; nothing was returned for this call")

    def _value_draft(self, m: Matcher, text: str, arg: str, follows: list[_Alt]) -> list[int]:
        """The rest of the value as the request gives it, then, where that ends the value,
        what most often follows it (the last of ``follows``: the call's close, or the next
        required argument): the logits at its last token decide what comes after it. A
        value that can still grow (``=1`` of ``=10``) is not closed unless the request
        says it ends."""
        draft = self._draft(m, text, arg)
        value = text + self._text(draft)
        if not m.complete(value):
            return draft
        if isinstance(m, StringMatcher):  # a string the request ends with ends there
            body = m.body(value)
            ends = bool(body) and self.request.rstrip(" .!?").endswith(body)
        else:
            ends = bool(draft) or len(m.allowed(value)) == 0
        if not ends:
            return draft
        return draft + follows[-1].tokens

    def _draft(self, m: Matcher, text: str, arg: str, number: str | None = None) -> list[int]:
        """Tokens the request suggests next (prompt lookup), cut where the value can't go.

        A value not begun yet is drafted only for a number (the one after or before the
        argument's name, else ``number``: the request's numbers taken in order) and for
        an enum the request names exactly one option of (``kitchen``).
        """
        src = self.request
        if not src:
            return []
        fresh = text == self._text(m.lead())  # nothing of the value decided yet
        if isinstance(m, EnumMatcher):
            if not fresh:
                return []
            said = [o for o, v in m.options.items() if isinstance(v, str)
                    and re.search(rf"\b{re.escape(v.replace('_', ' '))}\b", src, re.IGNORECASE)]
            if len(said) != 1:
                return []
            tail = said[0][len(text):]
        elif not (body := m.body(text) if text else ""):
            if not fresh or not isinstance(m, NumberMatcher):
                return []
            name = re.escape(arg)
            hit = (re.search(rf"\b{name}\b\W{{0,3}}?({_NUMBER.pattern})", src)
                   or re.search(rf"({_NUMBER.pattern})\s*{name}\b", src))
            if hit is None and number is None:
                return []
            tail = ("=" + (hit.group(1) if hit else str(number)))[len(text):]
        else:
            anchor = re.search(rf"\b{re.escape(arg)}\b", src)
            at = src.find(body, anchor.start() if anchor else 0)
            at = at if at >= 0 else src.rfind(body)
            if at < 0:
                return []
            tail = src[at + len(body): at + len(body) + 24]
        k = 0
        while k < len(tail) and m.viable(text + tail[:k + 1]):
            k += 1
        keep: list[int] = []
        for tok in self.vocab.tokenize(tail[:k]) if k else []:
            piece = self.vocab.texts[tok]
            if not piece or not m.viable(text + piece):
                break
            keep.append(tok)
            text += piece
        return keep[:_MAX_DRAFT]

    def _args_parallel(self, args: list[ArgSpec], matchers: Sequence[Matcher | None],
                       values: dict[str, Any], can_more: bool) -> str:
        req = [j for j, a in enumerate(args) if a.required]
        optional_inside = any(not a.required for a in args[:req[-1]]) if req else True
        if len(req) < 2 or optional_inside:
            return self._args_sequential(args, matchers, values, -1, can_more)
        self._settle()
        ctx, tok = self.ctx, self.vocab.tokenize
        heads = []
        for h, j in enumerate(req):
            m = matchers[j]
            assert m is not None
            firsts = {tok(m.close + ",")[0], tok(m.close + ")")[0]}
            heads.append(_Head(h + 1, j, m, np.array(sorted(firsts), np.int64),
                               tok(args[j].name) + m.lead(), self._text(m.lead())))
            ctx.fork(0, h + 1)
        base = len(ctx.tokens[0])
        shared = [BatchItem(t, base + i, (0, *(hd.seq for hd in heads)))
                  for i, t in enumerate(self.pending)]
        self.pending = []
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
                self._head_step(hd, ctx.logits(row))
        for hd in heads:
            ctx.drop(hd.seq)
            values[args[hd.arg].name] = hd.matcher.value(hd.text)
        rendered = ", ".join(f"{args[j].name}={render_value(values[args[j].name], args[j])}"
                             for j in req)
        self.pending = tok(rendered)
        rest = self._follows(args, matchers, req[-1], "", can_more)
        # optional arguments after the required ones continue on the main sequence
        return self._args_from(args, matchers, values, rest[self._choose(rest)], can_more)

    def _head_step(self, hd: _Head, logits: np.ndarray) -> None:
        m, texts = hd.matcher, self.vocab.texts
        ids = m.allowed(hd.text) if hd.steps < m.max_tokens else np.zeros(0, np.int64)
        done = m.complete(hd.text)
        cands = np.concatenate([ids, hd.follow_first]) if done else ids
        if len(cands) == 0:
            raise DecodeError(f"no valid continuation for value {hd.text!r}; nothing returned")
        best = int(cands[int(np.argmax(logits[cands]))])
        self.stats.sampled += 1
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
            hd.pending += self.vocab.tokenize(rest)
