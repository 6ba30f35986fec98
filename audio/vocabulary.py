"""Whisper's "previous text" from the live vocabulary of the tools.

Whisper spells a word it was just "told" more readily ("oat milk", not "old
milk"; "Reykjavik", "Mom"): :func:`stt_prompt` writes the words the tools
take now (the home's rooms and devices, its contacts and shopping items, the
cities asked about lately) as a few plausible sentences for
``SttOptions.initial_prompt`` (faster-whisper's ``initial_prompt`` /
``hotwords`` mechanism: tokens after ``<|startofprev|>``). :class:`Vocabulary`
keeps the latest words by source ("home", "recent") from ``vocabulary`` events
and says when the prompt changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MAX_WORDS_PER_KIND", "Vocabulary", "stt_prompt"]

MAX_WORDS_PER_KIND = 10  # the newest of each kind: the prompt stays short (decode cost)
_KINDS = ("rooms", "devices", "contacts", "items", "cities")


def _listed(words: Sequence[str], last: str = "or") -> str:
    ws = [" ".join(str(w).replace("_", " ").split()) for w in words if str(w).strip()]
    ws = list(dict.fromkeys(ws))[-MAX_WORDS_PER_KIND:]
    if len(ws) <= 1:
        return "".join(ws)
    return f"{', '.join(ws[:-1])} {last} {ws[-1]}"


def stt_prompt(rooms: Sequence[str] = (), devices: Sequence[str] = (), contacts: Sequence[str] = (),
               items: Sequence[str] = (), cities: Sequence[str] = ()) -> str:
    """A few sentences using each word (an empty kind is left out)."""
    parts = []
    if rooms:
        parts.append(f"Turn the {_listed(rooms)} lights on or off.")
    if devices:
        parts.append(f"Set the {_listed(devices)}.")
    if items:
        parts.append(f"Add {_listed(items, 'and')} to the shopping list.")
    if contacts:
        parts.append(f"Call or text {_listed(contacts)}.")
    where = f" in {_listed(cities)}" if cities else ""
    parts.append(f"What is the weather and the time{where}? What's on my calendar tomorrow?")
    return " ".join(parts)


class Vocabulary:
    """The words of each source, merged into one prompt."""

    def __init__(self, base: Mapping[str, Sequence[str]] | None = None) -> None:
        self.sources: dict[str, dict[str, list[str]]] = {}
        if base:
            self.update("base", base)

    def update(self, source: str, words: Mapping[str, Any]) -> bool:
        """Take ``source``'s words (``rooms``, ``devices``, ``contacts``, ``items``,
        ``cities``; others are ignored); True if the prompt changed."""
        before = self.prompt()
        self.sources[source] = {k: [str(w) for w in words.get(k) or ()] for k in _KINDS}
        return self.prompt() != before

    def prompt(self) -> str:
        merged: dict[str, list[str]] = {k: [] for k in _KINDS}
        for words in self.sources.values():
            for k in _KINDS:
                merged[k] += words.get(k, [])
        return stt_prompt(**merged)
