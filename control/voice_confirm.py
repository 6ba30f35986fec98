"""Calls that wait for the user: irreversible ones until a yes, unsure ones until a choice.

- :class:`ConfirmGate` sits in the agent's invoke chain, in front of the
  executor: a call of an ``x-confirm`` tool (a message, a phone call) is not
  run but answered ``{"held": True, "question": "Call Mom?"}``, so the turn's
  reply asks. Such tools are writes, never speculated.
- :func:`waiting_calls` finds in a finished turn what waits for an answer: the
  held calls, and calls whose result asked back with ``choices`` ("Did you mean
  Reykjavik?") — a :class:`Waiting` the decision keeps for the next utterance.
- :meth:`Waiting.answer` reads that utterance: yes (one choice) -> the calls to
  run; no -> nothing; a choice named ("the one in Texas", "the second") -> that
  call; anything else -> not an answer (the utterance is a new request).
- :class:`ConfirmedCalls` runs the answered calls on the agent's loop, past the
  gate, and reports them as turns (``submit`` / ``poll``, like the agent).
"""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from control.agent import Turn, drain
from control.tools import ToolCall, ToolResult
from sim_envs.home.intents import is_no, is_yes
from sim_envs.home.replies import confirm_question, declined_text

__all__ = ["Answer", "ConfirmGate", "ConfirmedCalls", "Waiting", "waiting_calls"]

Invoke = Callable[[ToolCall], Awaitable[ToolResult]]
_ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "other": 1, "latter": 1, "former": 0,
             "last": -1}


class ConfirmGate:
    """Holds calls of the ``confirm`` tools; runs every other call through ``inner``."""

    def __init__(self, confirm: frozenset[str], now_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.confirm = confirm
        self.inner: Invoke | None = None  # set once the executor exists
        self.held = 0
        self._now_ns = now_ns

    async def __call__(self, call: ToolCall) -> ToolResult:
        if call.name in self.confirm:
            self.held += 1
            t = self._now_ns()
            return ToolResult(call, ok=True, value={
                "held": True, "question": confirm_question(call.name, call.arguments)},
                started_ns=t, ended_ns=t)
        assert self.inner is not None, "ConfirmGate.inner is set before any turn runs"
        return await self.inner(call)


@dataclass(frozen=True)
class Answer:
    """What an utterance said to a question: ``run`` these calls, or ``reply`` this;
    neither: it was no answer (a new request)."""

    run: tuple[ToolCall, ...] = ()
    reply: str | None = None


@dataclass(frozen=True)
class Waiting:
    """Calls a question asked about; ``choices[i]``: the arguments call ``i`` may run with
    (a held call: its own; an unsure one: each it offered)."""

    calls: tuple[ToolCall, ...]
    choices: tuple[tuple[Mapping[str, Any], ...], ...]
    asked_ns: int
    confirm: bool  # an irreversible call asked about (else a lookup unsure of an argument)

    def answer(self, text: str) -> Answer:
        if is_no(text):
            if self.confirm:
                return Answer(reply=declined_text([c.name for c in self.calls],
                                                  [c.arguments for c in self.calls]))
            return Answer(reply="Okay.")
        if is_yes(text) and all(len(c) == 1 for c in self.choices):
            return Answer(run=tuple(self._with(i, 0) for i in range(len(self.calls))))
        if len(self.calls) == 1 and len(self.choices[0]) > 1:
            picked = _pick(text, self.choices[0])
            if picked is not None:
                return Answer(run=(self._with(0, picked),))
        return Answer()

    def _with(self, i: int, choice: int) -> ToolCall:
        call = self.calls[i]
        return replace(call, arguments={**call.arguments, **self.choices[i][choice]}, id="")


def _pick(text: str, choices: Sequence[Mapping[str, Any]]) -> int | None:
    """Which of ``choices`` the words name: an ordinal ("the second one"), else the one
    whose values share the most words with it ("the one in Texas")."""
    words = set(text.lower().replace(",", " ").replace(".", " ").split())
    for word, i in _ORDINALS.items():
        if word in words:
            return i % len(choices)
    scores = []
    for c in choices:
        said = {w for v in c.values() for w in str(v).lower().replace(",", " ").split()}
        scores.append(len(words & said))
    best = max(scores)
    if best == 0 or scores.count(best) > 1:
        return None
    return scores.index(best)


def waiting_calls(turn: Mapping[str, Any], asked_ns: int) -> Waiting | None:
    """What in a finished turn (``Turn.to_json()``) waits for the user's answer."""
    calls, choices, confirm = [], [], False
    for c, r in zip(turn.get("calls") or [], turn.get("results") or [], strict=False):
        value = r.get("value") if r.get("ok") else None
        if not isinstance(value, Mapping):
            continue
        if value.get("held"):
            calls.append(ToolCall(c["name"], c["arguments"]))
            choices.append((dict(c["arguments"]),))
            confirm = True
        elif value.get("choices"):
            calls.append(ToolCall(c["name"], c["arguments"]))
            choices.append(tuple(dict(a) for a in value["choices"]))
    if not calls:
        return None
    return Waiting(tuple(calls), tuple(choices), asked_ns, confirm)


class ConfirmedCalls:
    """Runs answered calls through ``invoke`` (past the gate) on ``loop``; each batch is a
    turn (negative ids, apart from the agent's) that ``poll`` returns once done."""

    def __init__(self, invoke: Invoke, loop: asyncio.AbstractEventLoop,
                 now_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.invoke, self.loop, self._now_ns = invoke, loop, now_ns
        self._done: queue.SimpleQueue[Turn] = queue.SimpleQueue()
        self._next_id = 0
        self._pending = 0

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def submit(self, text: str, calls: Sequence[ToolCall]) -> int:
        self._next_id -= 1
        self._pending += 1
        turn = Turn(self._next_id, text, self._now_ns(),
                    calls=[replace(c, id=str(i + 1)) for i, c in enumerate(calls)])
        turn.first_call_ns = turn.submitted_ns
        asyncio.run_coroutine_threadsafe(self._run(turn), self.loop)
        return turn.id

    async def _run(self, turn: Turn) -> None:
        try:
            results = await asyncio.gather(*(self._one(turn, c) for c in turn.calls))
            turn.results = [_result_json(r) for r in results]
            turn.ok = all(r.ok for r in results)
            turn.error = next((r.error for r in results if not r.ok), None)
        except Exception as exc:  # a turn's failure is reported, never lost
            turn.ok, turn.error = False, f"{type(exc).__name__}: {exc}"
        finally:
            turn.done_ns = self._now_ns()
            self._done.put(turn)

    async def _one(self, turn: Turn, call: ToolCall) -> ToolResult:
        result = await self.invoke(call)
        if not turn.first_result_ns:
            turn.first_result_ns = self._now_ns()
        return result

    def poll(self) -> list[Turn]:
        out = drain(self._done)
        self._pending -= len(out)
        return out


def _result_json(r: ToolResult) -> dict[str, Any]:
    return {"name": r.call.name, "ok": r.ok, "value": r.value, "error": r.error,
            "speculative": r.speculative, "ms": round(r.duration_ms, 2)}
