"""Read-only services: weather, world clock, web search.

Weather and time answer for any city of the offline gazetteer
(:mod:`sim_envs.home.places`; a misheard name is matched by spelling and sound,
and an unsure match is answered with a question, ``{"question": "Did you mean
Reykjavik?", "retry": {...arguments...}}``, which the assistant asks back):
time from the IANA zone database, weather from Open-Meteo
(``ServiceOptions(weather="online")``, the offline stand-in when it cannot be
reached) or from the deterministic offline stand-in (``weather="offline"``,
the default: tests and benchmarks need no network). Search ranks a fixed corpus.

The offline answers (and time and search) sleep a simulated remote latency
drawn from ``[min_latency_ms, max_latency_ms]`` by a hash of the arguments (the
same call always takes the same time, so a benchmark can show what speculation
saves); Open-Meteo takes what it takes. :class:`Services.handle` is a
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

from control.tools import UnknownValueError
from realtime.errors import ConfigError
from sim_envs.home.dates import Now, day_phrase, local_now, parse_date
from sim_envs.home.errors import HomeError
from sim_envs.home.places import Ambiguous, Place, UnknownPlace, gazetteer
from sim_envs.home.weather import (
    OPEN_METEO_URL,
    FallbackWeather,
    OfflineWeather,
    OpenMeteoWeather,
    WeatherSource,
    WeatherUnavailable,
)

__all__ = ["SearchService", "ServiceError", "ServiceOptions", "Services", "TimeService",
           "WeatherService"]

WEATHER_MODES = ("offline", "online")


class ServiceError(HomeError, LookupError):
    """A service has no answer for the request (unknown city, ...)."""


class UnknownCityError(ServiceError, UnknownValueError):
    """No city sounds like the name: the agent says so instead of guessing another."""


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
    """min_latency_ms / max_latency_ms: the range each offline call's simulated latency is
    drawn from. weather: "offline" (the deterministic stand-in) or "online" (Open-Meteo at
    ``weather_url``, the stand-in while it cannot be reached); weather_timeout_ms: how long
    an Open-Meteo request may take."""

    min_latency_ms: float = 150.0
    max_latency_ms: float = 400.0
    weather: str = "offline"
    weather_url: str = OPEN_METEO_URL
    weather_timeout_ms: float = 3000.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_latency_ms <= self.max_latency_ms <= 10_000:
            raise ConfigError("expected 0 <= min_latency_ms <= max_latency_ms <= 10000, got "
                             f"{self.min_latency_ms}, {self.max_latency_ms}")
        if self.weather not in WEATHER_MODES:
            raise ConfigError(f"weather: expected one of {', '.join(WEATHER_MODES)}, got "
                              f"{self.weather!r}")
        if not self.weather_url.startswith(("http://", "https://")):
            raise ConfigError(f"weather_url: expected an http(s) URL, got {self.weather_url!r}")
        if not 10 <= self.weather_timeout_ms <= 60_000:
            raise ConfigError(f"weather_timeout_ms: expected 10..60000 ms, got "
                              f"{self.weather_timeout_ms}")

    def latency_s(self, key: str) -> float:
        u = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") / 2**32
        return (self.min_latency_ms + u * (self.max_latency_ms - self.min_latency_ms)) / 1000

    def weather_source(self) -> WeatherSource:
        if self.weather == "offline":
            return OfflineWeather()
        online = OpenMeteoWeather(self.weather_url, timeout_s=self.weather_timeout_ms / 1000)
        return FallbackWeather(online, OfflineWeather())


def resolve_city(city: str) -> Place | dict[str, Any]:
    """The gazetteer city ``city`` names, or the question to ask back when unsure: with the
    ``choices`` of arguments it offers (``retry``: the one a "yes" means, if it offers one)."""
    try:
        got = gazetteer().resolve(city)
    except UnknownPlace as exc:
        raise UnknownCityError(str(exc)) from None
    if isinstance(got, Ambiguous):
        choices = [{"city": c.qualified()} for c in got.candidates]
        out: dict[str, Any] = {"city": city, "question": got.question, "choices": choices}
        if len(choices) == 1:
            out["retry"] = choices[0]
        return out
    return got


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
    """A city's weather today or on a date (``date`` in any form :func:`parse_date` reads,
    relative to the injected wall clock ``now``)."""

    def __init__(self, options: ServiceOptions | None = None, *,
                 sleep_s: Callable[[float], None] = time.sleep, now: Now = local_now,
                 source: WeatherSource | None = None) -> None:
        super().__init__(options, sleep_s=sleep_s)
        self._now = now
        self.source = source or self.options.weather_source()

    def get_weather(self, city: str, date: str | None = None) -> dict[str, Any]:
        if self.options.weather == "offline":
            self._wait(f"weather:{city.lower()}:{date or ''}")
        place = resolve_city(city)
        if isinstance(place, dict):
            return place
        today = self._now().date()
        day = parse_date(date, self._now())
        try:
            forecast = self.source.forecast(place, day, today)
        except WeatherUnavailable as exc:
            raise ServiceError(str(exc)) from None
        return {"city": place.name, "country": place.country, "when": day_phrase(day, today),
                **forecast.to_json()}


class TimeService(_Remote):
    """Local time in any gazetteer city from the IANA zone database; ``now_utc`` is injected."""

    def __init__(self, options: ServiceOptions | None = None, *,
                 now_utc: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 sleep_s: Callable[[float], None] = time.sleep) -> None:
        super().__init__(options, sleep_s=sleep_s)
        self._now_utc = now_utc

    def get_time(self, city: str) -> dict[str, Any]:
        self._wait(f"time:{city.lower()}")
        place = resolve_city(city)
        if isinstance(place, dict):
            return place
        try:
            zone = zoneinfo.ZoneInfo(place.timezone)
        except zoneinfo.ZoneInfoNotFoundError:
            raise ServiceError(f"this machine's time-zone database has no {place.timezone}; "
                               "install the tzdata package") from None
        local = self._now_utc().astimezone(zone)
        return {"city": place.name, "country": place.country, "time": local.strftime("%H:%M"),
                "timezone": place.timezone, "utc_offset": local.strftime("%z")}


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
                 now_utc: Callable[[], dt.datetime] | None = None,
                 weather_source: WeatherSource | None = None) -> None:
        options = options or ServiceOptions()
        # The user's "today" and "tomorrow": this machine's zone, at the injected instant.
        now: Now = local_now if now_utc is None else (lambda: now_utc().astimezone())
        self.weather = WeatherService(options, sleep_s=sleep_s, now=now, source=weather_source)
        self.clock = (TimeService(options, sleep_s=sleep_s) if now_utc is None
                      else TimeService(options, sleep_s=sleep_s, now_utc=now_utc))
        self.search = SearchService(options, sleep_s=sleep_s)
        self.handlers: dict[str, Callable[..., dict[str, Any]]] = {
            "get_weather": self.weather.get_weather, "get_time": self.clock.get_time,
            "web_search": self.search.web_search}

    def warm_up(self) -> None:
        """Load the gazetteer and the date parser now, not in the first request."""
        from sim_envs.home.dates import warm_up

        gazetteer()
        warm_up()

    def handle(self, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        try:
            fn = self.handlers[name]
        except KeyError:
            raise ServiceError(f"no service named {name!r}; services: {', '.join(self.handlers)}") from None
        return fn(**arguments)
