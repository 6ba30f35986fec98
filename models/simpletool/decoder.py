"""The SimpleTool decoder object: the model, its context and caches, and one decode's run.

What a decode does is described in :mod:`models.simpletool`; its per-decode state is a
:class:`~models.simpletool.cursor.DecodeCursor`, made in :meth:`SimpleToolDecoder._run`
and dropped with it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

from control.tools import ToolCall, ToolSpec
from models.artifacts import describe_gguf
from models.callformat import render
from models.constraints import VocabIndex
from models.decoder import DecodeContext, DecodeError, DecodeResult
from models.llama_backend import BackendOptions, BatchItem, LlamaContext, LlamaModel
from models.prompts import Example, build_messages, fallback_template, render_answer
from models.resolve import ResolvedModel
from models.simpletool.calls import decode_call, ends_here, named_call
from models.simpletool.cursor import DecodeCursor, DecodeStats
from models.simpletool.names import MAX_FORKS
from models.usable import decodable_tools
from realtime.errors import ConfigError

__all__ = ["Schedule", "SimpleToolDecoder"]

Schedule = Literal["auto", "parallel", "sequential"]
_MAX_ANSWERS = 32  # answers remembered token for token, for drafts


class SimpleToolDecoder:
    """See :mod:`models.simpletool`. Close it (or use ``with``) to free llama.cpp memory.

    Between decodes it keeps only its set-up and caches: the context's KV cache
    (``ctx.tokens[s]`` mirrors it; seq 0 holds the last prompt, a new one evaluates only
    what differs) and ``_answers``: for each of the last :data:`_MAX_ANSWERS` answers, its
    rendered text -> the tokens decoded after the prompt (end of turn included where it
    was decided), so a draft with that text is replayed token for token.
    """

    name = "simpletool"

    def __init__(self, model: ResolvedModel, *, n_threads: int | None = None,
                 n_gpu_layers: int = 0, schedule: Schedule = "auto", max_calls: int = 8,
                 n_ctx_tokens: int = 2048,
                 examples: Sequence[Example] | None = None, lookup: bool = True,
                 name_scoring: Literal["first", "whole"] = "first",
                 verbose: bool = False) -> None:
        if schedule not in ("auto", "parallel", "sequential"):
            raise ConfigError(f"schedule: expected auto, parallel or sequential, got {schedule!r}")
        if max_calls < 1:
            raise ConfigError(f"max_calls: expected >= 1, got {max_calls}")
        self.options = BackendOptions(n_ctx_tokens=n_ctx_tokens, n_seq_max=MAX_FORKS + 1,
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
        self.lookup = lookup  # read at the start of each decode
        if name_scoring not in ("first", "whole"):
            raise ConfigError(f"name_scoring: expected first or whole, got {name_scoring!r}")
        self.name_scoring = name_scoring
        self._answers: OrderedDict[str, list[int]] = OrderedDict()
        self.stats = DecodeStats()
        """The costs of the latest decode (streamed or not), filled in as it runs: what the
        agent's trace span reports once the stream ends."""
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
        stats = self.stats = DecodeStats()
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
        self.stats = DecodeStats()
        yield from self._run(DecodeContext.coerce(context), tools, self.stats, time.perf_counter())

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
    def _run(self, context: DecodeContext, tools: Sequence[ToolSpec], stats: DecodeStats,
             t0: float) -> Iterator[ToolCall]:
        if not tools:
            raise ConfigError("decode: expected at least one tool, got none")
        self._check_enums(context, tools)
        tools = decodable_tools(tools)  # a tool the format can't decode is left out, logged
        msgs = build_messages(tools, context.messages, "compact", self.examples)
        text = self.model.apply_chat_template(self.template, msgs, True)
        prompt = self.model.tokenize(text, add_special=self.model.add_bos, parse_special=True)
        cached = self._common_prefix(prompt)
        stats.prompt_tokens, stats.prompt_evaluated = len(prompt), len(prompt) - cached
        cur = DecodeCursor(self.ctx, self.vocab, eot=self.eot,
                           request=str(context.messages[-1].get("content", "")),
                           lookup=self.lookup, n_batch_tokens=self.options.n_batch_tokens,
                           stats=stats)
        cur.start(prompt, cached, self._draft_tokens(context, tools)
                  or named_call(cur, context, tools))
        max_calls = context.max_calls or self.max_calls
        looped = False
        try:
            for n in range(max_calls):
                call, kind = decode_call(cur, context, tools, n, n + 1 < max_calls,
                                         self.schedule, self.name_scoring == "whole")
                if call is None:
                    break
                if _repeats(call, stats.calls):  # the model went round in a loop: stop there
                    looped = True
                    break
                stats.calls.append(call)
                if stats.first_call_ms is None:
                    stats.first_call_ms = (time.perf_counter() - t0) * 1e3
                yield call
                if kind == "end" or ends_here(cur):
                    break
            if not looped:  # (a looped answer's tokens are not its calls' text)
                self._remember(cur.answer(), stats.calls, tools)
        finally:
            for s in range(1, self.options.n_seq_max):
                if self.ctx.tokens[s]:
                    self.ctx.drop(s)

    # ------------------------------------------------------------------ answer memory
    def _draft_tokens(self, context: DecodeContext, tools: Sequence[ToolSpec]) -> list[int]:
        if context.draft is None:
            return []
        text = render(context.draft, tools)
        known = self._answers.get(text)
        return list(known) if known is not None else self.vocab.tokenize(text) + [self.eot]

    def _remember(self, answer: list[int], calls: list[ToolCall], tools: Sequence[ToolSpec]) -> None:
        """Keep a finished answer's tokens, so a draft of it is replayed exactly."""
        key = render(calls, tools)
        self._answers[key] = answer
        self._answers.move_to_end(key)
        while len(self._answers) > _MAX_ANSWERS:
            self._answers.popitem(last=False)

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


def _repeats(call: ToolCall, earlier: Sequence[ToolCall]) -> bool:
    """Whether ``call`` is the call right before it again, word for word: a small model
    that has run out of things to do can loop (``place_on(red, bin)`` twice). The same
    call twice in a row never does more than once (a read tells nothing new, a write
    finds its work done), so the answer ends before the repeat. (Not adjacent, it may
    mean something: "on, then off, then on again".)"""
    return bool(earlier) and earlier[-1].name == call.name and (
        earlier[-1].arguments == call.arguments)
