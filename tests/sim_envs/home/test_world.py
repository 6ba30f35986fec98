"""The voice assistant's world: the gazetteer (any city, heard names matched by spelling
and sound, asking back when unsure), dates in requests, and the weather sources: the
real Open-Meteo client against a local server that speaks its format, the offline
stand-in for every city, and the fallback from one to the other."""

from __future__ import annotations

import datetime as dt
import logging
import time

import pytest

from sim_envs.home.dates import date_in_text, day_phrase, parse_date
from sim_envs.home.names import best_name, normalize
from sim_envs.home.places import Ambiguous, Place, UnknownPlace, gazetteer
from sim_envs.home.replies import reply_text
from sim_envs.home.services import ServiceError, ServiceOptions, Services
from sim_envs.home.weather import (
    FallbackWeather,
    OfflineWeather,
    OpenMeteoWeather,
    WeatherOffline,
    WeatherUnavailable,
)
from tests.helpers.open_meteo_server import OpenMeteoServer

THURSDAY = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
TODAY = THURSDAY.date()


def _place(name: str) -> Place:
    got = gazetteer().resolve(name)
    assert isinstance(got, Place), got
    return got


# -- names and places -------------------------------------------------------------------------
def test_names_match_by_spelling_and_by_sound():
    assert normalize("  São-Paulo! ") == "sao paulo"
    contacts = ["Anna", "Ben", "Mom", "Dad"]
    assert best_name("mum", contacts) == "Mom"  # sounds the same
    assert best_name("ana", contacts) == "Anna"
    assert best_name("Zed", contacts) is None
    assert best_name("Dan", ["Dad", "Dan Smith"]) is None  # nothing clearly closest


def test_any_city_resolves_whatever_its_spelling():
    g = gazetteer()
    assert len(g) > 20_000
    reykjavik = _place("Reykjavik")
    assert (reykjavik.country, reykjavik.timezone) == ("Iceland", "Atlantic/Reykjavik")
    assert _place("reykjavík") == reykjavik  # accents and case aside
    assert _place("Raykjavik") == reykjavik  # misspelt, still clearly it
    assert _place("Bombay").name == "Mumbai"  # another name of it
    assert _place("Paris").country == "France"  # the bigger one of the same name
    assert _place("Paris, Texas").region == "Texas"  # unless narrowed down
    assert _place("Cambridge in England").country == "United Kingdom"


def test_unsure_names_are_asked_back():
    g = gazetteer()
    same = g.resolve("Springfield")  # two cities of the name, about as big
    assert isinstance(same, Ambiguous) and len(same.candidates) == 2
    assert same.question.startswith("Did you mean Springfield in ")
    assert " or Springfield in " in same.question
    with pytest.raises(UnknownPlace, match="I don't know a city called Xqzzyville"):
        g.resolve("Xqzzyville")
    with pytest.raises(UnknownPlace):
        g.resolve("LA")  # too short to guess


def test_a_weak_match_offers_the_city_and_yes_means_it():
    s = Services(sleep_s=lambda s: None, now_utc=lambda: THURSDAY)
    got = s.handle("get_weather", {"city": "Edinborough"})
    assert got["question"] == "Did you mean Edinburgh?"
    assert got["retry"] == {"city": "Edinburgh, United Kingdom"}
    assert s.handle("get_weather", got["retry"])["city"] == "Edinburgh"
    reply = reply_text({"results": [{"name": "get_weather", "ok": True, "value": got}]})
    assert reply == "Did you mean Edinburgh?"
    two = s.handle("get_time", {"city": "Springfield"})
    assert "retry" not in two and len(two["choices"]) == 2  # "yes" would not say which


# -- dates --------------------------------------------------------------------------------------
def test_dates_in_any_form_the_decoder_writes():
    assert parse_date(None, THURSDAY) == TODAY
    assert parse_date("tomorrow", THURSDAY) == dt.date(2026, 1, 16)
    assert parse_date("on Friday", THURSDAY) == dt.date(2026, 1, 16)
    assert parse_date("Monday", THURSDAY) == dt.date(2026, 1, 19)  # the coming one
    assert parse_date("2026-02-03", THURSDAY) == dt.date(2026, 2, 3)
    assert parse_date("in two hours", THURSDAY.replace(hour=23)) == dt.date(2026, 1, 16)


def test_the_date_a_request_speaks_of():
    assert date_in_text("what's on my calendar tomorrow", THURSDAY) == dt.date(2026, 1, 16)
    assert date_in_text("will it rain in Lisbon on Saturday", THURSDAY) == dt.date(2026, 1, 17)
    assert date_in_text("what's the weather in Paris", THURSDAY) is None
    assert date_in_text("may I have the weather in Rome", THURSDAY) is None  # not a month
    assert date_in_text("set a timer for 10 minutes", THURSDAY) is None  # not a date
    assert [day_phrase(TODAY + dt.timedelta(d), TODAY) for d in (0, 1, 2, 9)] == [
        "today", "tomorrow", "on Saturday", "on Saturday 24 January"]


# -- weather sources ----------------------------------------------------------------------------
def test_the_offline_stand_in_answers_for_every_city_deterministically():
    stand_in = OfflineWeather()
    for place in gazetteer().places:
        f = stand_in.forecast(place, TODAY, TODAY)
        assert -45 < f.low_celsius <= f.high_celsius < 50 and f.celsius is not None
        assert f.condition
    oslo, singapore = _place("Oslo"), _place("Singapore")
    assert stand_in.forecast(oslo, TODAY, TODAY) == stand_in.forecast(oslo, TODAY, TODAY)
    assert (stand_in.forecast(singapore, TODAY, TODAY).high_celsius
            > stand_in.forecast(oslo, TODAY, TODAY).high_celsius)  # January
    later = stand_in.forecast(oslo, dt.date(2026, 1, 20), TODAY)
    assert later.celsius is None and later.day == dt.date(2026, 1, 20)


def test_the_real_client_reads_open_meteo_answers():
    oslo = _place("Oslo")
    with OpenMeteoServer() as srv:
        client = OpenMeteoWeather(srv.url, timeout_s=2.0)
        now = client.forecast(oslo, TODAY, TODAY)
        assert (now.celsius, now.high_celsius, now.low_celsius) == (3.4, 5.2, -1.6)
        assert now.condition == "light rain" and now.source == "open-meteo"
        friday = client.forecast(oslo, TODAY + dt.timedelta(days=1), TODAY)
        assert friday.celsius is None and friday.day == dt.date(2026, 1, 16)
        client.close()
    first, second = srv.requests
    assert first["format"] == "flatbuffers" and first["timezone"] == "Europe/Oslo"
    assert float(first["latitude"]) == pytest.approx(oslo.latitude)
    assert first["start_date"] == first["end_date"] == "2026-01-15" and "current" in first
    assert second["start_date"] == "2026-01-16" and "current" not in second


@pytest.mark.parametrize(("mode", "said"), [
    ("slow", "did not answer within 0.3 seconds"),
    ("http500", r"answered with an error \(HTTP 500\)"),
    ("http400", "refused the request: Latitude must be in range"),
    ("garbage", "sent an answer I could not read")])
def test_service_failures_become_a_clear_reply_without_hanging(mode, said):
    oslo = _place("Oslo")
    with OpenMeteoServer(mode, slow_s=1.5) as srv:
        client = OpenMeteoWeather(srv.url, timeout_s=0.3)
        t0 = time.monotonic()
        with pytest.raises(WeatherUnavailable, match=said) as err:
            client.forecast(oslo, TODAY, TODAY)
        assert time.monotonic() - t0 < 1.4  # gave up before the slow server answered
        assert not isinstance(err.value, WeatherOffline)  # the service is there
        client.close()
    s = Services(ServiceOptions(0, 0), now_utc=lambda: THURSDAY,
                 weather_source=FallbackWeather(client, OfflineWeather()))
    with OpenMeteoServer(mode, slow_s=1.5) as srv:
        client.url = srv.url
        with pytest.raises(ServiceError) as err2:
            s.handle("get_weather", {"city": "Oslo"})
    reply = reply_text({"results": [{"name": "get_weather", "ok": False,
                                     "error": f"ServiceError: {err2.value}"}]})
    assert reply.startswith("Sorry, get weather did not work: the weather service ")


def test_forecasts_only_reach_sixteen_days():
    with OpenMeteoServer() as srv:
        client = OpenMeteoWeather(srv.url)
        with pytest.raises(WeatherUnavailable, match="forecasts reach 15 days ahead"):
            client.forecast(_place("Oslo"), TODAY + dt.timedelta(days=20), TODAY)
        assert not srv.requests


def test_unreachable_service_falls_back_to_the_stand_in_said_once(caplog):
    clock = [0.0]
    dead = OpenMeteoWeather("http://127.0.0.1:9/v1/forecast", timeout_s=0.5)
    weather = FallbackWeather(dead, OfflineWeather(), retry_s=60, now_s=lambda: clock[0])
    oslo = _place("Oslo")
    with caplog.at_level(logging.WARNING, logger="rtagent.weather"):
        for _ in range(3):
            f = weather.forecast(oslo, TODAY, TODAY)
            assert f.source == "offline"
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "answering from the offline stand-in" in said[0]
    assert weather.name == "offline"
    with OpenMeteoServer() as srv:  # the network is back: used once retry_s has passed
        dead.url = srv.url
        assert weather.forecast(oslo, TODAY, TODAY).source == "offline"
        clock[0] = 61.0
        assert weather.forecast(oslo, TODAY, TODAY).source == "open-meteo"
        assert weather.name == "open-meteo"


def test_weather_and_time_answer_for_any_city_and_day():
    s = Services(sleep_s=lambda s: None, now_utc=lambda: THURSDAY)
    w = s.handle("get_weather", {"city": "Ulaanbaatar", "date": "tomorrow"})
    assert w["date"] == "2026-01-16" and w["when"] == "tomorrow" and w["source"] == "offline"
    assert "celsius" not in w  # no "now" for another day
    reply = reply_text({"results": [{"name": "get_weather", "ok": True, "value": w}]})
    assert reply.startswith(f"Tomorrow in {w['city']}: {w['condition']}, from ")
    t = s.handle("get_time", {"city": "Reykjavik"})
    assert (t["time"], t["timezone"]) == ("12:00", "Atlantic/Reykjavik")
    assert s.handle("get_time", {"city": "Kathmandu"})["time"] == "17:45"  # UTC+5:45
    with pytest.raises(ValueError, match="expected a date like"):
        s.handle("get_weather", {"city": "Oslo", "date": "the purple one"})


def test_weather_options_are_checked():
    with pytest.raises(ValueError, match="weather: expected one of offline, online"):
        ServiceOptions(weather="sometimes")
    with pytest.raises(ValueError, match="weather_url: expected an http"):
        ServiceOptions(weather_url="ftp://x")
    assert ServiceOptions(weather="online").weather_source().name == "open-meteo"
