"""Dates in the voice tools' calls: the day a request speaks of, as an ISO date.

:class:`DatedDecoder` wraps the decoder (the agent's decodes and the
preflights of partial transcripts alike): a call of a tool with a ``date``
argument gets the day its request names ("what's on my calendar tomorrow" ->
``get_calendar(date="2026-01-16")``): the decoder's own date if the request
names that day (or names none), else the request's first day (what was said
wins over what was guessed); a date in words becomes an ISO date, and today's
is dropped (no date means today), so the same request always makes the same
call and a speculative run of it can be matched. Everything else passes through.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from control.tools import ToolCall, ToolSpec
from sim_envs.home.dates import DateError, Now, dates_in_text, local_now, parse_date

__all__ = ["DatedDecoder", "date_calls"]

DATE_ARGUMENT = "date"


def _request_text(context: Any) -> str:
    for msg in reversed(list(getattr(context, "messages", ()))):
        if msg.get("role") == "user":
            return str(msg.get("content", ""))
    return ""


def date_calls(calls: Sequence[ToolCall], text: str, tools: Sequence[ToolSpec],
               now: Now = local_now) -> list[ToolCall]:
    """``calls`` with their ``date`` arguments settled from ``text`` (see the module doc)."""
    dated = {t.name for t in tools if DATE_ARGUMENT in t.properties}
    if not any(c.name in dated for c in calls):
        return list(calls)
    at = now()
    said = dates_in_text(text, at)
    out = []
    for call in calls:
        if call.name in dated:
            out.append(_settled(call, said, at))
        else:
            out.append(call)
    return out


def _settled(call: ToolCall, said: list[Any], at: Any) -> ToolCall:
    args = dict(call.arguments)
    day = said[0] if said else None
    if args.get(DATE_ARGUMENT):
        try:
            written = parse_date(str(args[DATE_ARGUMENT]), at)
        except DateError:
            written = None
        if written is not None and (not said or written in said):
            day = written
        elif not said:
            return call  # neither said nor readable: the service says what is wrong
    args.pop(DATE_ARGUMENT, None)
    if day is not None and day != at.date():
        args[DATE_ARGUMENT] = day.isoformat()
    return dataclasses.replace(call, arguments=args)


class DatedDecoder:
    """``inner`` with :func:`date_calls` applied to every call it decodes."""

    def __init__(self, inner: Any, now: Now = local_now) -> None:
        self.inner, self.now = inner, now

    def __getattr__(self, name: str) -> Any:  # stats, ctx, close, ...: the inner decoder's
        return getattr(self.inner, name)

    def decode(self, context: Any, tools: Sequence[ToolSpec]) -> Any:
        result = self.inner.decode(context, tools)
        calls = getattr(result, "calls", None)
        if calls is None:
            return result
        return dataclasses.replace(result, calls=date_calls(calls, _request_text(context), tools,
                                                            self.now))

    def decode_stream(self, context: Any, tools: Sequence[ToolSpec]) -> Iterator[ToolCall]:
        text = _request_text(context)
        gen = self.inner.decode_stream(context, tools)
        try:
            for call in gen:
                yield date_calls([call], text, tools, self.now)[0]
        finally:
            close = getattr(gen, "close", None)
            if close is not None:
                close()

    def preflight(self, context: Any, tools: Sequence[ToolSpec], on_calls: Any) -> bool:
        text = _request_text(context)

        def dated(calls: list[ToolCall], complete: bool) -> None:
            on_calls(date_calls(calls, text, tools, self.now), complete)

        return bool(self.inner.preflight(context, tools, dated))
