"""Matching a heard name to a known one: by spelling and by sound.

Speech recognition writes what it hears ("Rake a Vick", "Mum", "Lisboa"), so
names are compared twice: by spelling (``rapidfuzz``'s ratio of the normalised
texts: case, accents and punctuation dropped) and by sound (the ratio of their
Metaphone codes, ``jellyfish``, spaces dropped: "rake a vick" and "reykjavik"
sound alike). A candidate's score is the better of the two, the sound score
weighted a little lower as it confuses more names.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

__all__ = ["SOUND_WEIGHT", "best_name", "name_score", "normalize", "sound_key"]

SOUND_WEIGHT = 0.95  # a sound match counts a little less than the same spelling match
_NOT_WORD = re.compile(r"[^a-z0-9 ]+")


def normalize(text: str) -> str:
    """Lower case, accents and punctuation dropped, spaces collapsed ("São Paulo" -> "sao paulo")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", plain.replace("'", "")).split())


def sound_key(text: str) -> str:
    """The Metaphone code of a normalised name, spaces dropped."""
    import jellyfish

    joined = normalize(text).replace(" ", "")
    return jellyfish.metaphone(joined) if joined else ""


def name_score(heard: str, known: str, heard_key: str | None = None,
               known_key: str | None = None) -> float:
    """0..100: how well ``heard`` matches ``known`` by spelling or by sound."""
    from rapidfuzz import fuzz

    a, b = normalize(heard), normalize(known)
    if not a or not b:
        return 0.0
    spelling = fuzz.ratio(a, b)
    ka = sound_key(heard) if heard_key is None else heard_key
    kb = sound_key(known) if known_key is None else known_key
    sound = fuzz.ratio(ka, kb) * SOUND_WEIGHT if ka and kb else 0.0
    return max(spelling, sound)


def best_name(heard: str, names: Iterable[str], *, min_score: float = 80.0,
              margin: float = 5.0) -> str | None:
    """The one of ``names`` that ``heard`` means: the same normalised text, else the best
    match scoring ``min_score`` or more and ``margin`` above any other; None if none is."""
    known: Sequence[str] = list(names)
    target = normalize(heard)
    for name in known:
        if normalize(name) == target:
            return name
    scored = sorted(((name_score(heard, n), n) for n in known), reverse=True)
    if not scored or scored[0][0] < min_score:
        return None
    if len(scored) > 1 and scored[1][0] > scored[0][0] - margin:
        return None
    return scored[0][1]
