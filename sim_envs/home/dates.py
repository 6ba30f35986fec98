"""Dates in requests: "tomorrow", "on Friday", "in two hours", "2026-05-01".

:func:`parse_date` reads a date argument in any form a decoder writes (an ISO
date, a weekday, a relative phrase) against an injected clock;
:func:`date_in_text` finds the date a request speaks of ("what's on my
calendar tomorrow" -> tomorrow), so a call the decoder made without one can
still be given it; :func:`day_phrase` names a day for a spoken reply
("today", "tomorrow", "on Friday 16 January"). ``dateparser`` does the
parsing; its first use loads its language data (~0.3 s): :func:`warm_up`
does that at start.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from sim_envs.home.errors import HomeError

__all__ = ["DateError", "Now", "date_in_text", "dates_in_text", "day_phrase", "local_now",
           "parse_date", "warm_up"]

Now = Callable[[], dt.datetime]
"""The wall clock: an aware local datetime (injected, so tests fix "today")."""

# A phrase found in free text is taken as a date only with one of these in it: a bare
# month name ("may I ...") or a duration ("a timer for 10 minutes") is not one.
_DATE_WORDS = re.compile(
    r"\b(today|tonight|tomorrow|yesterday|monday|tuesday|wednesday|thursday|friday|saturday|"
    r"sunday|weekend|(next|this|coming) (week|month)|in \w+ (hours?|days?|weeks?)|\d{4}-\d{2}-\d{2}|"
    r"\d{1,2}(st|nd|rd|th)?( of)? (jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\w*|"
    r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\w* \d{1,2}(st|nd|rd|th)?)\b", re.I)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class DateError(HomeError, ValueError):
    """A date argument that names no day."""


def local_now() -> dt.datetime:
    """Now, in this machine's time zone."""
    return dt.datetime.now().astimezone()


def _settings(now: dt.datetime) -> dict[str, Any]:
    return {"RELATIVE_BASE": now.replace(tzinfo=None), "PREFER_DATES_FROM": "future",
            "RETURN_AS_TIMEZONE_AWARE": False}


def parse_date(value: str | None, now: dt.datetime) -> dt.date:
    """The day ``value`` names, relative to ``now`` (None or "": today)."""
    text = " ".join((value or "").split())
    if not text or text.lower() in ("today", "now"):
        return now.date()
    if _ISO.match(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass  # "2026-02-30": said below
    import dateparser

    got = dateparser.parse(text, languages=["en"], settings=_settings(now))
    if got is None:
        raise DateError(f"expected a date like 2026-05-01, tomorrow or Friday, got {value!r}")
    return got.date()


def dates_in_text(text: str, now: dt.datetime) -> list[dt.date]:
    """The days a request speaks of, in order ("... today and on Friday")."""
    if not _DATE_WORDS.search(text):
        return []
    from dateparser.search import search_dates

    found = search_dates(text, languages=["en"], settings=_settings(now)) or []
    return [when.date() for phrase, when in found if _DATE_WORDS.search(phrase)]


def date_in_text(text: str, now: dt.datetime) -> dt.date | None:
    """The day a request speaks of, if it names one ("... tomorrow", "on Friday")."""
    days = dates_in_text(text, now)
    return days[0] if days else None


def day_phrase(day: dt.date, today: dt.date) -> str:
    """How a reply names ``day``: "today", "tomorrow", "on Friday", "on Friday 30 January"."""
    delta = (day - today).days
    if delta == 0:
        return "today"
    if delta == 1:
        return "tomorrow"
    if delta == -1:
        return "yesterday"
    if 1 < delta < 7:
        return f"on {day:%A}"
    return f"on {day:%A} {day.day} {day:%B}"


def warm_up() -> None:
    """Load dateparser's data now rather than in the first request that names a date."""
    parse_date("tomorrow", local_now())
