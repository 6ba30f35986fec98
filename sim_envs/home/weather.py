"""Weather for a place and a day: the real Open-Meteo client, and an offline stand-in.

Both are a :class:`WeatherSource`: ``forecast(place, day, today) -> Forecast``.

- :class:`OpenMeteoWeather` asks Open-Meteo's forecast API (no key) through
  ``openmeteo-requests`` (FlatBuffers answers): the current temperature and
  today's range, or a day's range, with the WMO weather code in words. A slow,
  failing or refusing server becomes a :class:`WeatherUnavailable` that says
  what happened; an unreachable one a :class:`WeatherOffline`.
- :class:`OfflineWeather` makes up plausible weather for any coordinates and
  day, deterministically (latitude and season set the temperature, a hash of
  place and day the rest), so every gazetteer city has an answer without a
  network.
- :class:`FallbackWeather` asks the first and, once it is unreachable, the
  second (said once in the log), trying the network again after a while.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sim_envs.home.errors import HomeError
from sim_envs.home.places import Place

__all__ = ["OPEN_METEO_URL", "FallbackWeather", "Forecast", "OfflineWeather", "OpenMeteoWeather",
           "WeatherOffline", "WeatherSource", "WeatherUnavailable", "condition_words"]

OPEN_METEO_URL = "https://api.open-meteo.com/v1/forecast"
FORECAST_DAYS = 16  # Open-Meteo forecasts this many days, today included
PAST_DAYS = 92  # and keeps this many days back

log = logging.getLogger("rtagent.weather")


class WeatherUnavailable(HomeError, RuntimeError):
    """The weather service answered with an error, or not in time; ``detail`` is for logs."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class WeatherOffline(WeatherUnavailable):
    """The weather service cannot be reached (no network, no such host)."""


@dataclass(frozen=True)
class Forecast:
    """A day's weather; ``celsius`` (now) only for today."""

    day: dt.date
    condition: str
    high_celsius: float
    low_celsius: float
    celsius: float | None
    source: str

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"date": self.day.isoformat(), "condition": self.condition,
                               "high_celsius": self.high_celsius, "low_celsius": self.low_celsius,
                               "source": self.source}
        if self.celsius is not None:
            out["celsius"] = self.celsius
        return out


class WeatherSource(Protocol):
    name: str

    def forecast(self, place: Place, day: dt.date, today: dt.date) -> Forecast: ...


# WMO weather interpretation codes (Open-Meteo's weather_code)
_WMO = {0: "clear", 1: "mainly clear", 2: "partly cloudy", 3: "overcast", 45: "foggy",
        48: "foggy with rime", 51: "light drizzle", 53: "drizzle", 55: "heavy drizzle",
        56: "freezing drizzle", 57: "freezing drizzle", 61: "light rain", 63: "rain",
        65: "heavy rain", 66: "freezing rain", 67: "freezing rain", 71: "light snow", 73: "snow",
        75: "heavy snow", 77: "snow grains", 80: "rain showers", 81: "rain showers",
        82: "heavy rain showers", 85: "snow showers", 86: "heavy snow showers",
        95: "thunderstorms", 96: "thunderstorms with hail", 99: "thunderstorms with hail"}


def condition_words(code: int) -> str:
    """A WMO weather code in words ("light rain")."""
    return _WMO.get(int(code), "mixed weather")


def _check_range(day: dt.date, today: dt.date) -> None:
    ahead = (day - today).days
    if ahead >= FORECAST_DAYS:
        raise WeatherUnavailable(f"forecasts reach {FORECAST_DAYS - 1} days ahead, and "
                                 f"{day:%A %d %B} is {ahead} days away")
    if ahead < -PAST_DAYS:
        raise WeatherUnavailable(f"the weather is kept for {PAST_DAYS} days back only")


class OpenMeteoWeather:
    """Open-Meteo's forecast API; ``url`` is the endpoint (a local server in tests)."""

    name = "open-meteo"

    def __init__(self, url: str = OPEN_METEO_URL, *, timeout_s: float = 3.0) -> None:
        import niquests
        import openmeteo_requests

        self.url, self.timeout_s = url, timeout_s
        self._session = niquests.Session(retries=0)
        self._client = openmeteo_requests.Client(session=self._session)

    def close(self) -> None:
        self._session.close()

    def forecast(self, place: Place, day: dt.date, today: dt.date) -> Forecast:
        _check_range(day, today)
        params: dict[str, Any] = {
            "latitude": place.latitude, "longitude": place.longitude, "timezone": place.timezone,
            "daily": "weather_code,temperature_2m_max,temperature_2m_min",
            "start_date": day.isoformat(), "end_date": day.isoformat()}
        if day == today:
            params["current"] = "temperature_2m,weather_code"
        answer = self._ask(params)
        try:
            daily = answer.Daily()
            code, high, low = (float(daily.Variables(i).ValuesAsNumpy()[0]) for i in range(3))
            now = None
            current = answer.Current() if day == today else None
            if current is not None and current.VariablesLength() >= 2:
                now = round(float(current.Variables(0).Value()), 1)
                code = float(current.Variables(1).Value())
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise WeatherUnavailable(f"the weather service sent an answer I could not read "
                                     f"({type(exc).__name__})") from exc
        if any(math.isnan(v) for v in (code, high, low)):
            raise WeatherUnavailable(f"the weather service has no forecast for {day:%A %d %B}")
        return Forecast(day, condition_words(int(code)), round(high, 1), round(low, 1), now,
                        self.name)

    def _ask(self, params: dict[str, Any]) -> Any:
        import niquests
        from openmeteo_requests.Client import OpenMeteoRequestsError

        try:
            answers = self._client.weather_api(self.url, params=params, timeout=self.timeout_s)
        except OpenMeteoRequestsError as exc:
            cause = exc.__cause__
            if isinstance(cause, niquests.exceptions.ConnectionError):  # connect timeouts too
                raise WeatherOffline("the weather service cannot be reached",
                                     detail=_short(cause)) from exc
            if isinstance(cause, niquests.exceptions.Timeout):
                raise WeatherUnavailable(f"the weather service did not answer within "
                                         f"{self.timeout_s:g} seconds") from exc
            if isinstance(cause, niquests.exceptions.HTTPError) and cause.response is not None:
                raise WeatherUnavailable(f"the weather service answered with an error (HTTP "
                                         f"{cause.response.status_code})") from exc
            if isinstance(cause, OpenMeteoRequestsError):  # a 400 or 429 with its reason
                body = cause.args[0] if cause.args else None
                reason = body.get("reason") if isinstance(body, dict) else None
                raise WeatherUnavailable("the weather service refused the request"
                                         + (f": {reason}" if reason else "")) from exc
            raise WeatherUnavailable("the weather service sent an answer I could not read") \
                from exc
        if not answers:
            raise WeatherUnavailable("the weather service sent an empty answer")
        return answers[0]


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _unit(*parts: Any) -> float:
    """A number in [0, 1) fixed by ``parts``."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


class OfflineWeather:
    """Plausible, deterministic weather for any place and day (no network)."""

    name = "offline"
    _DRY = ("clear", "mainly clear", "partly cloudy", "overcast")
    _WET = ("light rain", "rain showers", "drizzle", "thunderstorms")
    _COLD = ("light snow", "snow showers", "snow")

    def forecast(self, place: Place, day: dt.date, today: dt.date) -> Forecast:
        lat = place.latitude
        # Warm at the equator, colder toward the poles; seasons swing more far from it,
        # opposite in the south (coldest around 15 January in the north).
        season = math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365.25)
        mean = 27.0 - 0.45 * abs(lat) - 0.3 * abs(lat) * season * (1 if lat >= 0 else -1)
        where = (round(lat, 2), round(place.longitude, 2), day.isoformat())
        mean += 6 * (_unit("t", *where) - 0.5)
        spread = 4 + 6 * _unit("s", *where)
        high, low = round(mean + spread / 2, 1), round(mean - spread / 2, 1)
        wet = _unit("w", *where) < 0.35
        pool = (self._COLD if mean < 1 else self._WET) if wet else self._DRY
        condition = pool[int(_unit("c", *where) * len(pool))]
        now = round(low + (high - low) * 0.7, 1) if day == today else None
        return Forecast(day, condition, high, low, now, self.name)


class FallbackWeather:
    """``primary`` while it can be reached, else ``stand_in`` (said once in the log);
    the network is tried again ``retry_s`` after it was last found unreachable."""

    def __init__(self, primary: WeatherSource, stand_in: WeatherSource, *, retry_s: float = 300.0,
                 now_s: Callable[[], float] = time.monotonic) -> None:
        self.primary, self.stand_in = primary, stand_in
        self.retry_s, self._now_s = retry_s, now_s
        self.offline_since: float | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.stand_in.name if self.offline_since is not None else self.primary.name

    def forecast(self, place: Place, day: dt.date, today: dt.date) -> Forecast:
        with self._lock:
            offline = (self.offline_since is not None
                       and self._now_s() - self.offline_since < self.retry_s)
        if not offline:
            try:
                got = self.primary.forecast(place, day, today)
            except WeatherOffline as exc:
                with self._lock:
                    first = self.offline_since is None
                    self.offline_since = self._now_s()
                if first:
                    log.warning("weather: %s (%s); answering from the offline stand-in (trying "
                                "again every %.0f s)", exc, exc.detail, self.retry_s)
            else:
                with self._lock:
                    if self.offline_since is not None:
                        log.warning("weather: %s reachable again", self.primary.name)
                    self.offline_since = None
                return got
        return self.stand_in.forecast(place, day, today)
