"""Read-only services standing in for remote APIs: weather, world clock, web search.

Deterministic data with realistic, deterministic latency: each call sleeps a
time drawn from ``[min_latency_ms, max_latency_ms]`` by a hash of its
arguments (so the same call always takes the same time, and a benchmark can
show what speculation saves). Plain classes: :class:`Services.handle` is a
``(name, arguments) -> result`` entry point a bus server can expose.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from realtime.errors import ConfigError
from sim_envs.home.errors import HomeError

__all__ = ["CITIES", "SearchService", "ServiceError", "ServiceOptions", "Services",
           "TimeService", "WeatherService"]


class ServiceError(HomeError, LookupError):
    """A service has no answer for the request (unknown city, ...)."""


# city -> (IANA zone, temperature C, condition, high C, low C)
CITIES: dict[str, tuple[str, float, str, float, float]] = {
    "oslo": ("Europe/Oslo", 4, "cloudy", 6, 1), "london": ("Europe/London", 11, "light rain", 13, 8),
    "paris": ("Europe/Paris", 12, "sunny", 15, 7), "berlin": ("Europe/Berlin", 8, "overcast", 10, 4),
    "madrid": ("Europe/Madrid", 17, "sunny", 20, 9), "rome": ("Europe/Rome", 16, "partly cloudy", 18, 10),
    "stockholm": ("Europe/Stockholm", 3, "snow showers", 4, -1),
    "dublin": ("Europe/Dublin", 10, "windy", 12, 7), "amsterdam": ("Europe/Amsterdam", 9, "drizzle", 11, 6),
    "new york": ("America/New_York", 9, "clear", 12, 4),
    "chicago": ("America/Chicago", 5, "windy", 7, 0),
    "los angeles": ("America/Los_Angeles", 22, "sunny", 25, 14),
    "toronto": ("America/Toronto", 2, "cloudy", 4, -3),
    "mexico city": ("America/Mexico_City", 21, "thunderstorms", 24, 12),
    "sao paulo": ("America/Sao_Paulo", 27, "humid", 30, 20),
    "tokyo": ("Asia/Tokyo", 14, "clear", 17, 9), "beijing": ("Asia/Shanghai", 6, "hazy", 9, -1),
    "singapore": ("Asia/Singapore", 30, "thunderstorms", 32, 25),
    "mumbai": ("Asia/Kolkata", 31, "humid", 33, 24), "dubai": ("Asia/Dubai", 29, "sunny", 31, 22),
    "sydney": ("Australia/Sydney", 24, "sunny", 27, 17), "cairo": ("Africa/Cairo", 23, "clear", 26, 15),
    "nairobi": ("Africa/Nairobi", 21, "partly cloudy", 25, 13),
    "moscow": ("Europe/Moscow", -2, "snow", 0, -6), "seattle": ("America/Los_Angeles", 9, "rain", 10, 6),
}

_DOCS = (
    ("How long to boil an egg", "Soft-boiled eggs take about 6 minutes, hard-boiled 10 to 12 minutes.",
     "https://example.org/cooking/boil-egg"),
    ("Tallest mountain in the world", "Mount Everest is 8,849 metres above sea level.",
     "https://example.org/geo/everest"),
    ("Population of Norway", "Norway has about 5.5 million inhabitants; Oslo is the capital.",
     "https://example.org/geo/norway"),
    ("Speed of light", "Light travels at 299,792 kilometres per second in a vacuum.",
     "https://example.org/physics/light"),
    ("Who wrote Hamlet", "Hamlet is a tragedy by William Shakespeare, written around 1600.",
     "https://example.org/books/hamlet"),
    ("Banana bread recipe", "Mash three ripe bananas, mix with flour, sugar, butter and an egg, "
     "bake 60 minutes at 175 C.", "https://example.org/cooking/banana-bread"),
    ("Distance to the moon", "The moon is on average 384,400 kilometres from Earth.",
     "https://example.org/space/moon"),
    ("Football world cup winners", "Argentina won the 2022 FIFA World Cup in Qatar.",
     "https://example.org/sport/world-cup"),
    ("How many bones in the human body", "An adult human has 206 bones.",
     "https://example.org/health/bones"),
    ("Largest ocean", "The Pacific is the largest and deepest ocean on Earth.",
     "https://example.org/geo/pacific"),
    ("Python programming language", "Python is a programming language created by Guido van Rossum.",
     "https://example.org/tech/python"),
    ("Opening hours of the library", "The city library is open 9 to 20 on weekdays, 10 to 16 on "
     "Saturdays.", "https://example.org/local/library"),
    ("Pizza places nearby", "Luigi's Pizza on Main Street is open until 23; rated 4.5 stars.",
     "https://example.org/local/pizza"),
    ("Train to the airport", "Airport trains leave every 10 minutes; the ride takes 20 minutes.",
     "https://example.org/local/airport-train"),
    ("Capital of Australia", "Canberra is the capital of Australia.",
     "https://example.org/geo/australia"),
    ("How to water tomato plants", "Water tomatoes deeply two or three times a week, at the base.",
     "https://example.org/garden/tomatoes"),
)


@dataclass(frozen=True)
class ServiceOptions:
    """min_latency_ms / max_latency_ms: the range each call's simulated latency is drawn from."""

    min_latency_ms: float = 150.0
    max_latency_ms: float = 400.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_latency_ms <= self.max_latency_ms <= 10_000:
            raise ConfigError("expected 0 <= min_latency_ms <= max_latency_ms <= 10000, got "
                             f"{self.min_latency_ms}, {self.max_latency_ms}")

    def latency_s(self, key: str) -> float:
        u = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") / 2**32
        return (self.min_latency_ms + u * (self.max_latency_ms - self.min_latency_ms)) / 1000


def _city(city: str) -> tuple[str, tuple[str, float, str, float, float]]:
    key = " ".join(city.lower().replace(".", "").replace("ã", "a").split())
    if key not in CITIES:
        raise ServiceError(f"no data for city {city!r}; known cities: "
                           f"{', '.join(c.title() for c in sorted(CITIES))}")
    return key, CITIES[key]


class _Remote:
    def __init__(self, options: ServiceOptions | None = None, *,
                 sleep_s: Callable[[float], None] = time.sleep) -> None:
        self.options = options or ServiceOptions()
        self._sleep_s = sleep_s
        self.calls = 0

    def _wait(self, key: str) -> None:
        self.calls += 1
        self._sleep_s(self.options.latency_s(key))


class WeatherService(_Remote):
    def get_weather(self, city: str, date: str | None = None) -> dict[str, Any]:
        self._wait(f"weather:{city.lower()}:{date or ''}")
        key, (_, temp, cond, hi, lo) = _city(city)
        return {"city": key.title(), "celsius": temp, "condition": cond, "high_celsius": hi,
                "low_celsius": lo}


class TimeService(_Remote):
    """Local time in a city from the real time-zone database; ``now_utc`` is injected."""

    def __init__(self, options: ServiceOptions | None = None, *,
                 now_utc: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 sleep_s: Callable[[float], None] = time.sleep) -> None:
        super().__init__(options, sleep_s=sleep_s)
        self._now_utc = now_utc

    def get_time(self, city: str) -> dict[str, Any]:
        self._wait(f"time:{city.lower()}")
        key, (zone, *_) = _city(city)
        local = self._now_utc().astimezone(zoneinfo.ZoneInfo(zone))
        return {"city": key.title(), "time": local.strftime("%H:%M"), "timezone": zone,
                "utc_offset": local.strftime("%z")}


class SearchService(_Remote):
    """Ranks a fixed corpus by word overlap with the query; top 3."""

    def web_search(self, query: str) -> dict[str, Any]:
        self._wait(f"search:{query.lower()}")
        words = {w.strip("?.,!'").lower() for w in query.split()} - {
            "the", "a", "an", "of", "to", "in", "is", "what", "how", "who", "for", "me", "search"}
        scored = []
        for i, (title, snippet, url) in enumerate(_DOCS):
            text = {w.strip(",.;").lower() for w in (title + " " + snippet).split()}
            score = len(words & text) + 2 * len(words & {w.lower() for w in title.split()})
            if score:
                scored.append((-score, i, {"title": title, "snippet": snippet, "url": url}))
        return {"query": query, "results": [r for _, _, r in sorted(scored)[:3]]}


class Services:
    """The three services behind one ``handle(name, arguments)`` entry point."""

    def __init__(self, options: ServiceOptions | None = None, *,
                 sleep_s: Callable[[float], None] = time.sleep,
                 now_utc: Callable[[], dt.datetime] | None = None) -> None:
        self.weather = WeatherService(options, sleep_s=sleep_s)
        self.clock = (TimeService(options, sleep_s=sleep_s) if now_utc is None
                      else TimeService(options, sleep_s=sleep_s, now_utc=now_utc))
        self.search = SearchService(options, sleep_s=sleep_s)
        self.handlers: dict[str, Callable[..., dict[str, Any]]] = {
            "get_weather": self.weather.get_weather, "get_time": self.clock.get_time,
            "web_search": self.search.web_search}

    def handle(self, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        try:
            fn = self.handlers[name]
        except KeyError:
            raise ServiceError(f"no service named {name!r}; services: {', '.join(self.handlers)}") from None
        return fn(**arguments)
