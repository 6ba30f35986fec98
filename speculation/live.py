"""Speculation in the live demos: record every call, mine between turns, predict.

:class:`LiveSpeculation` is what a demo's decision process builds: a
:class:`~speculation.executor.SpeculativeExecutor` whose predictor is a
:class:`LivePredictor` over a pattern library, every committed call recorded in
the on-disk store (:mod:`speculation.trace_store`) and kept for mining, and
:meth:`LiveSpeculation.after_turn` to mine again off the loop's thread and swap
the new library in on the agent's loop (two libraries, counted turn by turn: mining
costs only the new calls). At start it loads the store's latest library (earlier
runs), so a demo's second run speculates better than its first.

:func:`request_features` gives the observation features a request has before
it is decoded (its first word, the known names it mentions, its numbers).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from control.tools import ToolCall, ToolRegistry
from speculation.derive import UNKNOWN, Context, Prediction
from speculation.executor import SpeculationOptions, SpeculativeExecutor
from speculation.metadata import AheadMode, ahead_mode, registry_tool
from speculation.patterns import Guess, PatternLibrary
from speculation.trace_store import (
    JsonlTraceStore,
    compact_result,
    load_library,
    mine_recorded,
    save_library,
    spec_dir,
)
from speculation.traces import Episode, Step

__all__ = ["LIVE_MIN_SUPPORT", "LiveMiner", "LivePredictor", "LiveSpeculation", "MinedTurns",
           "request_features"]

log = logging.getLogger("rtagent.speculation")

LIVE_MIN_SUPPORT = 1  # a live run has few calls: one occurrence is already a pattern
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_WORD = re.compile(r"[a-z0-9']+")


def request_features(text: str, names: Iterable[str] = ()) -> dict[str, Any]:
    """What a request says before it is decoded: ``w0`` its first word, ``m0``, ``m1``...
    the ``names`` it mentions in the order it mentions them (``red_cube`` as "red cube"),
    ``numbers`` the numbers it says (ints stay ints)."""
    low = text.lower()
    words = _WORD.findall(low)
    out: dict[str, Any] = {"w0": words[0] if words else ""}
    found = []
    for name in names:
        phrase = r"\b" + r"\s+".join(re.escape(w) for w in name.lower().split("_")) + r"\b"
        hit = re.search(phrase, low)
        if hit:
            found.append((hit.start(), name))
    for i, (_, name) in enumerate(sorted(found)):
        out[f"m{i}"] = name
    numbers = [float(n) if "." in n else int(n) for n in _NUMBER.findall(low)]
    if numbers:
        out["numbers"] = numbers
    return out


class LivePredictor:
    """A pattern library as a predictor, swapped for a newly mined one after each turn.

    Proposes only calls the executor may run ahead (``speculable``), and nothing while
    ``gate()`` is false (e.g. while the arm moves and every result would be stale).
    """

    name = "pattern"

    def __init__(self, library: PatternLibrary, *, speculable: Callable[[str], bool],
                 gate: Callable[[], bool] | None = None) -> None:
        self.library = library
        self.speculable = speculable
        self.gate = gate

    def predict(self, ctx: Context, k: int) -> list[Prediction]:
        if self.gate is not None and not self.gate():
            return []
        preds = self.library.predict(ctx, k + 4)
        # Not the call just made: its result is in hand (and was just served or run).
        last = ctx.history[-1].key() if ctx.history else None
        return [p for p in preds if self.speculable(p.call.name) and p.call.key() != last][:k]

    def guess_result(self, call: ToolCall, ctx: Context | None = None) -> Guess | None:
        return self.library.guess_result(call, ctx)

    def chain(self, ctx: Context, *, max_calls: int = 6,
              min_probability: float = 0.3) -> list[Prediction]:
        """The most likely calls from ``ctx`` on, one after another (each the top
        prediction after the ones before, their results unknown): e.g. a decoder's draft."""
        out: list[Prediction] = []
        seen: set[str] = set()
        p_all = 1.0
        for _ in range(max_calls):
            preds = self.library.predict(ctx, 1)
            if not preds:
                break
            best = preds[0]
            p_all *= best.probability
            if p_all < min_probability or best.call.key() in seen:
                break
            seen.add(best.call.key())
            out.append(Prediction(best.call, p_all, best.source))
            ctx = ctx.then(best.call, UNKNOWN)
        return out


Batch = list[tuple[tuple[Step, ...], Episode]]  # (calls counted before, new calls)


class LiveMiner:
    """This run's calls, to be counted into a library turn by turn (:meth:`take`, then
    :meth:`apply`): each batch of new calls is counted after the calls of its episode
    that came before it (as their context), so nothing is counted twice and mining a
    turn costs only that turn's calls."""

    def __init__(self, *, lookback: int = 8, max_episodes: int = 256) -> None:
        self.lookback = lookback
        self.max_episodes = max_episodes
        self._lock = threading.Lock()
        self._new: dict[str, list[Step]] = {}
        self._before: dict[str, list[Step]] = {}

    def add(self, episode: str, step: Step) -> None:
        # A big result (a dense plan) is mined by its small fields only, as it is stored.
        step = replace(step, result=compact_result(step.result))
        with self._lock:
            self._new.setdefault(episode, []).append(step)

    def take(self) -> Batch:
        """The calls added since the last take, per episode, with the calls before them."""
        with self._lock:
            batch: Batch = []
            for eid, steps in self._new.items():
                before = self._before.pop(eid, [])
                batch.append((tuple(before[-self.lookback:]), Episode(eid, tuple(steps))))
                self._before[eid] = (before + steps)[-self.lookback:]
            self._new.clear()
            while len(self._before) > self.max_episodes:
                del self._before[next(iter(self._before))]
            return batch

    @staticmethod
    def apply(library: PatternLibrary, batch: Batch) -> None:
        for before, episode in batch:
            library.update([episode], context=before)


class _Recorder:
    """The executor's store: each committed call goes to disk and to the miner."""

    def __init__(self, store: JsonlTraceStore | None, miner: LiveMiner) -> None:
        self.store, self.miner = store, miner

    def record(self, episode: str, step: Step, *, started_ns: int = 0, ended_ns: int = 0) -> int:
        self.miner.add(episode, step)
        if self.store is None:
            return 0
        try:
            return self.store.record(episode, step, started_ns=started_ns, ended_ns=ended_ns)
        except OSError as exc:  # a full disk costs the trace, never the agent's call
            log.warning("trace store: %s; recording stops", exc)
            self.store = None
            return 0


def speculable_in(registry: ToolRegistry) -> Callable[[str], bool]:
    """Whether a tool of ``registry`` may run ahead for real (read-only, allowed)."""
    def ok(name: str) -> bool:
        tool = registry_tool(registry, name)
        return tool is not None and ahead_mode(tool) is AheadMode.RUN
    return ok


class LiveSpeculation:
    """A demo's speculation, recorded and mined live (see the module doc).

    ``demo`` names the store (``robot``, ``voice``); ``directory`` overrides where it is
    (default :func:`speculation.trace_store.spec_dir`); ``record=False`` keeps nothing on
    disk (the run still learns from itself).
    """

    def __init__(self, demo: str, registry: ToolRegistry, options: SpeculationOptions, *,
                 directory: Path | None = None, record: bool = True,
                 gate: Callable[[], bool] | None = None) -> None:
        self.directory = directory if directory is not None else spec_dir(demo)
        self.run_id = f"{demo}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        t0 = time.perf_counter()
        base = load_library(self.directory)
        self.loaded = "library" if base is not None else "none"
        if base is None and self.directory.is_dir():
            mined, read = mine_recorded(self.directory)
            if read.calls:
                base, self.loaded = mined, "traces"
        self.load_s = time.perf_counter() - t0
        library = base if base is not None else PatternLibrary(min_support=LIVE_MIN_SUPPORT)
        self.miner = LiveMiner()
        self.store = JsonlTraceStore(self.directory, self.run_id) if record else None
        self.predictor = LivePredictor(library, speculable=speculable_in(registry), gate=gate)
        # Two libraries: the predictor reads one (on the agent's loop) while the miner
        # counts a turn into the other, and they swap (speculation/live.py, after_turn).
        self._spare = copy.deepcopy(library)
        self.executor = SpeculativeExecutor(registry, self.predictor, options,
                                            store=_Recorder(self.store, self.miner),
                                            episode_id=self.run_id)
        self.mined = 0  # libraries mined and swapped in during this run
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="spec-miner")
        self._pending: Future[None] | None = None
        self._broken = False

    def after_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        """A turn ended: count its calls into the spare library on the miner's thread,
        swap it in on ``loop`` (the agent's, where the executor runs), bring the other
        up to date and save the new one. Never blocks; a turn that ends while the last
        mining still runs is counted in by the next one."""
        if self._broken or (self._pending is not None and not self._pending.done()):
            return
        self._pending = self._pool.submit(self._mine, loop)

    def _mine(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self.miner.take()
        if not batch:
            return
        try:
            fresh = self._spare
            LiveMiner.apply(fresh, batch)
            swapped: Future[PatternLibrary] = Future()
            loop.call_soon_threadsafe(self._swap, fresh, swapped)
            old = swapped.result(timeout=60)
            LiveMiner.apply(old, batch)  # no longer read by the predictor: the next spare
            self._spare = old
            if self.store is not None:
                save_library(fresh, self.directory)
        except RuntimeError:  # the agent's loop is closed: the run is over
            return
        except Exception as exc:  # speculation goes on with the last library, mined no more
            self._broken = True  # (a swap may still come: the spare could be in use)
            log.warning("mining the live traces failed: %s; no more mining in this run", exc)

    def _swap(self, library: PatternLibrary, done: Future[PatternLibrary]) -> None:
        old, self.predictor.library = self.predictor.library, library
        self.mined += 1
        done.set_result(old)

    def wait_mined(self, timeout_s: float = 10.0) -> None:
        """Wait for the mining in progress (tests, and before saving at the end)."""
        if self._pending is not None:
            self._pending.result(timeout_s)

    def draft(self, visible: Sequence[str]) -> list[ToolCall]:
        """The calls among ``visible`` the predictor expects from the executor's context
        now: a draft for the decoder (verified token by token, so a wrong one only costs
        a little)."""
        names = set(visible)
        return [p.call for p in self.predictor.chain(self.executor.context())
                if p.call.name in names]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.store is not None:
            self.store.close()


class _TurnAgent(Protocol):
    @property
    def busy(self) -> bool: ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def submit(self, text: str) -> int: ...

    def poll(self) -> list[Any]: ...


class MinedTurns:
    """An agent (:class:`control.agent.Agent`) as a decision loop uses it (``busy``,
    ``submit``, ``poll``), with each batch of finished turns mined in by ``live``."""

    def __init__(self, agent: _TurnAgent, live: LiveSpeculation) -> None:
        self.agent, self.live = agent, live

    @property
    def busy(self) -> bool:
        return self.agent.busy

    def submit(self, text: str) -> int:
        return self.agent.submit(text)

    def poll(self) -> list[Any]:
        turns = self.agent.poll()
        if turns:
            self.live.after_turn(self.agent.loop)
        return turns
