"""Preflight decoding: decode partial transcripts while the user is still speaking.

:class:`PreflightDecoder` wraps a :class:`models.decoder.Decoder`. The voice
demo's decision process hands it each partial transcript (``preflight``); it
decodes that text on its own worker thread and reports the calls, so the
read-only ones can run speculatively before the user stops speaking (LiveKit
starts its LLM on "preflight" transcripts the same way). When the final
transcript comes, the agent decodes it through ``decode_stream``: if a partial
had exactly the same text (and the same history and tools), the calls decoded
then are served at once; greedy decoding of the same context gives the same
calls, so the answer is the one a fresh decode would give (lossless). A text
not decoded yet is decoded with the calls of the latest decode in the same turn
(the same utterance: the final's decode ends it) as its draft
(``DecodeContext.draft``): "turn off the kitchen" often already has the calls of
"turn off the kitchen lights", which the decoder then verifies in the prompt's
batch instead of deciding token by token (same answer, but for near ties: see
:mod:`models.simpletool`).

One llama.cpp context is not thread-safe: a lock lets one decode run at a
time, and a real decode has priority: a preflight gives up as soon as a real
decode is waiting (its complete calls so far are still reported) — before the
next forward pass for a decoder with a llama context (``ctx.decode``, the
SimpleTool decoder), else before its next call. At most one preflight is
queued, and a newer partial replaces it and makes a preflight of another text in
flight give way too: the newest text is the likeliest final one, so it is decoded
as early as possible (measured: first action 947 -> 827 ms p50 against finishing
the older one first; read-only lookups done at end of speech 23% -> 27%).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from control.tools import ToolCall, ToolSpec, canonical_json
from models.decoder import DecodeContext
from realtime.trace import Tracer

__all__ = ["Preempted", "PreflightDecoder", "PreflightStats"]

OnCalls = Callable[[list[ToolCall], bool], None]  # (new calls, decode complete)


class Preempted(Exception):
    """A preflight gave way to a real decode (raised inside the decoder's forward pass)."""


@dataclass
class PreflightStats:
    preflights: int = 0  # partial decodes run
    aborted: int = 0  # given up for a real decode or a newer partial
    superseded: int = 0  # preflights of an older text given up for a newer partial
    errors: int = 0  # a partial that did not decode
    hits: int = 0  # real decodes served from a preflight
    joined: int = 0  # real decodes that waited for the preflight of the same text
    misses: int = 0  # real decodes run fresh

    def to_json(self) -> dict[str, int]:
        return dict(vars(self))


def _key(context: Any, tools: Sequence[ToolSpec], turn: bool = False) -> str:
    """The decode's identity; ``turn``: all but the user's last words (the same turn)."""
    msgs = list(getattr(context, "messages", context))
    return canonical_json({"m": [dict(m) for m in (msgs[:-1] if turn else msgs)],
                           "e": {k: list(v) for k, v in dict(getattr(context, "enums", {})).items()},
                           "n": getattr(context, "max_calls", None),
                           "t": [t.name for t in tools]})


class PreflightDecoder:
    """A decoder that serves the final transcript's calls from a preflight of the same text."""

    name = "preflight"

    def __init__(self, decoder: Any, *, max_entries: int = 64, tracer: Tracer | None = None,
                 threads: tuple[int, int] | None = None) -> None:
        self.inner = decoder
        # (preflight, real): CPU threads of a preflight (speech goes on: Whisper needs a
        # core) and of a real decode or one it waits for (the speech is over). None: as is.
        self.threads = threads
        self._joiners = 0
        self.tracer = tracer or Tracer("preflight", enabled=False)
        self.max_entries = max_entries
        self.stats = PreflightStats()
        self._lock = threading.Lock()  # one llama.cpp decode at a time
        self._urgent = threading.Event()  # a real decode waits: preflights yield
        self._superseded = threading.Event()  # a partial of another text came: yield
        self._cache: OrderedDict[str, list[ToolCall]] = OrderedDict()
        self._latest: tuple[str, list[ToolCall]] | None = None  # (turn key, calls): for drafts
        self._state = threading.Lock()
        self._next: tuple[str, Any, Sequence[ToolSpec], OnCalls] | None = None
        self._running = False
        self._inflight: str | None = None  # key of the preflight decoding now
        self._inflight_done = threading.Event()
        self.join_timeout_s = 10.0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="preflight")
        self._preflighting = False
        self._install_preemption()

    def _install_preemption(self) -> None:
        """Check for a waiting real decode before each forward pass of a preflight."""
        ctx: Any = getattr(self.inner, "ctx", None)
        forward = getattr(ctx, "decode", None)
        if forward is None:
            return

        set_threads = getattr(ctx, "set_threads", None)

        def decode(*args: Any, **kwargs: Any) -> Any:
            if self._preflighting and self._yield():
                raise Preempted("a real decode or a newer partial is waiting")
            if self.threads is not None and set_threads is not None:
                real = not self._preflighting or self._joiners > 0
                set_threads(self.threads[1] if real else self.threads[0])
            return forward(*args, **kwargs)

        ctx.decode = decode  # an instance attribute: the context's own calls go through it

    def _yield(self) -> bool:
        return self._urgent.is_set() or self._superseded.is_set()

    # -- the agent's side (its decoder thread) ------------------------------------------------
    def decode(self, context: Any, tools: Sequence[ToolSpec]) -> Any:
        return self.inner.decode(context, tools)

    def decode_stream(self, context: Any, tools: Sequence[ToolSpec]) -> Iterator[ToolCall]:
        key = _key(context, tools)
        with self._state:
            self._next = None  # a partial still queued is older than this text: moot now
            joining = self._inflight == key
        if joining:  # the same text is being preflighted: wait for it instead of redoing it
            self.stats.joined += 1
            self._joiners += 1  # (its remaining passes run with the real decode's threads)
            try:
                self._inflight_done.wait(self.join_timeout_s)
            finally:
                self._joiners -= 1
        else:
            self._urgent.set()
        with self._lock:
            self._urgent.clear()
            cached = self._cache.get(key)
            if cached is not None:
                self.stats.hits += 1
                self._end_turn()
                yield from list(cached)
                return
            self.stats.misses += 1
            calls: list[ToolCall] = []
            try:
                for call in self.inner.decode_stream(self._drafted(context, tools), tools):
                    calls.append(call)
                    yield call
                self._store(key, calls, context, tools)
            finally:
                self._end_turn()

    def _end_turn(self) -> None:
        """A real decode ends its utterance: the next one's partials start without a draft.
        (Without history every request has the same turn key, and the previous request's
        calls were wrong drafts: in ``rtagent bench voice`` the final's decode after the
        endpoint took p50 284 / p90 550 ms with them, 235 / 375 ms without.)"""
        with self._state:
            self._latest = None

    # -- the loop's side: partial transcripts -------------------------------------------------
    def preflight(self, context: Any, tools: Sequence[ToolSpec], on_calls: OnCalls) -> bool:
        """Decode ``context`` ahead on the worker thread; a preflight of another (older)
        text in flight gives way to it (its complete calls so far are still reported).

        ``on_calls([call], False)`` is called there as each call is decoded (so a read-only
        lookup can start before the rest is decoded), then ``on_calls([], True)`` if the
        decode finished. Returns False when the same context was decoded already: its calls
        are reported at once, as ``on_calls(calls, True)``.
        """
        key = _key(context, tools)
        with self._state:
            cached = self._cache.get(key)
        if cached is not None:
            on_calls(list(cached), True)
            return False
        with self._state:
            self._next = (key, context, list(tools), on_calls)
            if self._inflight not in (None, key):
                self._superseded.set()
                self.stats.superseded += 1
            if self._running:
                return True
            self._running = True
        self._pool.submit(self._work)
        return True

    def _work(self) -> None:
        while True:
            with self._state:
                job, self._next = self._next, None
                if job is None:
                    self._running = False
                    return
            self._one(*job)

    def _one(self, key: str, context: Any, tools: Sequence[ToolSpec], on_calls: OnCalls) -> None:
        calls: list[ToolCall] = []
        complete = True
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                calls = list(cached)
                on_calls(calls, True)
                return
            else:
                with self._state:
                    self._inflight = key
                    self._inflight_done.clear()
                    self._superseded.clear()
                self.stats.preflights += 1
                self._preflighting = True
                start_ns = time.monotonic_ns()
                gen = self.inner.decode_stream(self._drafted(context, tools), tools)
                try:
                    for call in gen:
                        calls.append(call)
                        on_calls([call], False)
                        if self._yield():
                            complete = False
                            self.stats.aborted += 1
                            break
                except Preempted:
                    complete = False
                    self.stats.aborted += 1
                except Exception:  # a garbled partial: nothing to speculate on
                    self.stats.errors += 1
                    calls, complete = [], False
                finally:
                    gen.close()
                    self._preflighting = False
                    self.tracer.complete("preflight", "decoder", start_ns, time.monotonic_ns(),
                                         "decode", calls=len(calls), complete=complete)
                    if complete:
                        self._store(key, calls, context, tools)
                    with self._state:
                        self._inflight = None
                        self._inflight_done.set()
        if complete:
            on_calls([], True)

    def _drafted(self, context: Any, tools: Sequence[ToolSpec]) -> Any:
        """``context`` with the latest calls decoded in its turn as the draft."""
        latest = self._latest
        if (latest is None or not isinstance(context, DecodeContext) or context.draft is not None
                or latest[0] != _key(context, tools, turn=True)):
            return context
        return dataclasses.replace(context, draft=tuple(latest[1]))

    def _store(self, key: str, calls: list[ToolCall], context: Any,
               tools: Sequence[ToolSpec]) -> None:
        with self._state:
            self._latest = (_key(context, tools, turn=True), list(calls))
            self._cache[key] = list(calls)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.inner.close()

    def __enter__(self) -> PreflightDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

