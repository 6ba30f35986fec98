"""Voice tool backends: the SQLite home store, the read-only services (with
their simulated latency), and the registry built from voice_tools.json."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from pathlib import Path

import pytest

from audio.utterances import load_requests
from control.tools import Effect, SpeculationPolicy, ToolCall
from sim_envs.home.dates import DateError
from sim_envs.home.services import ServiceError, ServiceOptions, Services
from sim_envs.home.store import ROOMS, HomeStore, HomeStoreError
from sim_envs.home.tools import build_voice_tools, confirm_tools, voice_tool_specs

NOON_UTC = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


def _services(slept: list[float] | None = None) -> Services:
    return Services(sleep_s=(slept.append if slept is not None else lambda s: None),
                    now_utc=lambda: NOON_UTC)


def test_lights_and_thermostats_change_and_report_what_they_did(tmp_path):
    store = HomeStore(tmp_path / "home.db")
    assert store.get_light_state("kitchen") == {"room": "kitchen", "on": True, "brightness": 80}
    did = store.set_light("kitchen", False)
    assert did == {"room": "kitchen", "on": False, "brightness": 80, "changed": True}
    assert store.set_light("kitchen", False)["changed"] is False
    assert store.set_light("living room", True, 30)["brightness"] == 30
    assert store.version("light:kitchen") == 2 and store.version("light:bedroom") == 0
    assert store.set_thermostat("bedroom", 19)["previous_celsius"] == 21.0
    with pytest.raises(HomeStoreError, match="unknown room 'garage'; rooms: kitchen"):
        store.set_light("garage", True)
    with pytest.raises(HomeStoreError, match="expected a target of 5..30"):
        store.set_thermostat("office", 40)
    store.close()
    reopened = HomeStore(tmp_path / "home.db")  # persisted, not re-seeded
    assert reopened.get_light_state("kitchen")["on"] is False
    assert reopened.get_thermostat("bedroom")["celsius"] == 19.0


def test_timers_count_down_on_the_injected_clock():
    now = [100.0]
    store = HomeStore(now_s=lambda: now[0])
    store.set_timer(5, "pasta")
    store.set_timer(1)
    now[0] += 30
    timers = store.list_timers()["timers"]
    assert [(t["label"], t["remaining_s"]) for t in timers] == [(None, 30.0), ("pasta", 270.0)]
    now[0] += 60
    assert [t["label"] for t in store.list_timers()["timers"]] == ["pasta"]
    with pytest.raises(HomeStoreError, match="0.1..600 minutes"):
        store.set_timer(0)


THURSDAY_NOON = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


def test_shopping_messages_calendar():
    store = HomeStore(now=lambda: THURSDAY_NOON)
    assert store.add_to_shopping_list("Bread")["added"] is True
    assert store.add_to_shopping_list("bread ")["added"] is False  # no duplicates
    assert store.get_shopping_list()["items"] == ["milk", "eggs", "bread"]
    sent = store.send_message("anna", "running late")
    assert sent["contact"] == "Anna" and store.messages()[0]["text"] == "running late"
    assert store.send_message("Mum", "home soon")["contact"] == "Mom"  # heard the other way
    with pytest.raises(HomeStoreError, match="unknown contact 'Zed'; contacts: Anna"):
        store.send_message("Zed", "hi")
    today = store.get_calendar()
    assert today["date"] == "2026-01-15" and today["when"] == "today"
    assert [e["title"] for e in today["events"]] == [
        "Stand-up meeting", "Lunch with Anna", "Dentist", "Football practice"]
    saturday = store.get_calendar("on Saturday")
    assert saturday["date"] == "2026-01-17" and saturday["when"] == "on Saturday"
    assert [e["title"] for e in saturday["events"]] == ["Farmers market"]
    assert store.get_calendar("tomorrow")["date"] == "2026-01-16"
    assert store.get_calendar("2026-01-18")["events"][0]["title"] == "Brunch with Mom and Dad"
    with pytest.raises(DateError, match="expected a date like"):
        store.get_calendar("the purple one")
    snap = store.snapshot()
    assert set(snap["lights"]) == set(ROOMS) and snap["shopping_list"][-1] == "bread"


def test_calls_reach_a_contact_and_are_logged():
    store = HomeStore()
    call = store.call_contact("mom")
    assert call == {"id": 1, "contact": "Mom", "phone": "+47 400 00 005", "calling": True}
    assert store.version("calls") == 1 and store.snapshot()["calls"][0]["contact"] == "Mom"
    with pytest.raises(HomeStoreError, match="unknown contact 'the plumber'"):
        store.call_contact("the plumber")


def test_a_calendar_saved_before_days_existed_still_opens(tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "old.db")
    db.execute("CREATE TABLE calendar (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, "
               "title TEXT NOT NULL)")
    db.execute("INSERT INTO calendar (time, title) VALUES ('08:00', 'Gym')")
    db.commit()
    db.close()
    store = HomeStore(tmp_path / "old.db", seed=False)
    assert store.get_calendar()["events"] == [{"time": "08:00", "title": "Gym"}]  # every day


def test_store_is_safe_from_many_threads():
    store = HomeStore()
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(20):
                store.set_light(ROOMS[i % len(ROOMS)], bool(i % 2))
                store.add_to_shopping_list(f"item {i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.get_shopping_list()["items"]) == 2 + 8
    assert sum(store.version(f"light:{r}") for r in ROOMS) == 8 * 20


def test_services_answer_deterministically_with_bounded_latency():
    slept: list[float] = []
    s = _services(slept)
    w = s.handle("get_weather", {"city": "oslo"})
    assert w["city"] == "Oslo" and isinstance(w["celsius"], int | float)
    assert s.handle("get_weather", {"city": "Oslo"}) == w
    t = s.handle("get_time", {"city": "Tokyo"})
    assert t["time"] == "21:00" and t["timezone"] == "Asia/Tokyo"  # real tz database
    assert s.handle("get_time", {"city": "New York"})["time"] == "07:00"
    r = s.handle("web_search", {"query": "how long to boil an egg"})
    assert r["results"][0]["url"].endswith("boil-egg")
    assert all(0.150 <= x <= 0.400 for x in slept) and len(set(slept)) > 1
    with pytest.raises(ServiceError, match="I don't know a city called Xqzzyville"):
        s.handle("get_weather", {"city": "Xqzzyville"})
    with pytest.raises(ServiceError, match="no service named"):
        s.handle("order_pizza", {})
    assert ServiceOptions(100, 100).latency_s("x") == pytest.approx(0.1)


def test_registry_matches_the_shared_contract():
    specs = voice_tool_specs()
    raw = json.loads((Path(__file__).resolve().parents[3] / "audio" / "voice_tools.json").read_text())
    reg = build_voice_tools(HomeStore(), _services())
    assert len(reg) == len(specs) == len(raw)
    for spec in reg.specs():
        if spec.effect is Effect.READ:
            assert spec.speculation is SpeculationPolicy.ALLOW
        else:
            assert spec.speculation is not SpeculationPolicy.ALLOW
    assert confirm_tools() == {"send_message", "call_contact"}  # what cannot be taken back
    assert all(reg.get(n).spec.speculation is SpeculationPolicy.DENY for n in confirm_tools())
    for name in ("get_weather", "get_calendar"):  # a day other than today, optionally
        assert "date" in reg.get(name).spec.properties and "date" not in reg.get(name).spec.required
    for name in ("get_weather", "get_time"):  # any city: the service resolves the name
        assert "enum" not in reg.get(name).spec.properties["city"]


def test_registry_invokes_real_backends_in_parallel():
    store = HomeStore()
    reg = build_voice_tools(store, Services(ServiceOptions(150, 400), now_utc=lambda: NOON_UTC))

    async def go():
        return await asyncio.gather(
            reg.invoke(ToolCall("set_light", {"room": "kitchen", "on": False})),
            reg.invoke(ToolCall("get_weather", {"city": "Oslo"})),
            reg.invoke(ToolCall("get_time", {"city": "Tokyo"})),
            reg.invoke(ToolCall("send_message", {"contact": "Nobody", "text": "hi"})),
            reg.invoke(ToolCall("set_light", {"room": "attic", "on": True})))

    light, weather, clock, bad_contact, bad_room = asyncio.run(go())
    assert light.ok and light.value["changed"] and not store.get_light_state("kitchen")["on"]
    assert weather.ok and weather.value["city"] == "Oslo" and weather.duration_ms >= 150
    assert clock.ok and clock.value["time"] == "21:00"
    assert not bad_contact.ok and "unknown contact" in (bad_contact.error or "")
    assert not bad_room.ok and "room" in (bad_room.error or "")  # schema enum refuses it


def test_request_set_covers_every_tool_with_valid_calls():
    reqs = load_requests()
    reg = build_voice_tools(HomeStore(), _services())
    assert len(reqs) >= 50 and len({r.id for r in reqs}) == len(reqs)
    assert len({r.voice for r in reqs}) >= 4 and len({r.words_per_min for r in reqs}) >= 3
    used = set()
    for r in reqs:
        assert r.expected, r.id
        for call in r.expected:
            reg.validate(ToolCall(call["name"], call["arguments"]))
            used.add(call["name"])
    # call_contact came after this set was recorded (the bench compares runs on it);
    # the open request set covers it
    assert used == {s.name for s in reg.specs()} - {"call_contact"}
    assert sum(len(r.expected) > 1 for r in reqs) >= 8  # multi-part requests


def test_heldout_stt_requests_are_other_words_in_the_same_voices():
    from importlib import resources

    held = load_requests(str(resources.files("audio").joinpath("stt_heldout_requests.jsonl")))
    main = load_requests()
    assert len(held) == 50 and not {r.text for r in held} & {r.text for r in main}
    assert not {r.id for r in held} & {r.id for r in main}  # they share a WAV folder
    assert {(r.voice, r.words_per_min) for r in held} == {(r.voice, r.words_per_min) for r in main}


def test_the_open_request_set_names_places_and_items_no_list_in_the_code_has():
    """audio/voice_open_requests.jsonl: other voices, speeds and words than every list here
    (the tuning pools, the eval-set builders, the other request sets, the prompts)."""
    from importlib import resources

    from models.evalsets import build
    from models.tune.values import POOLS
    from sim_envs.home.places import Place, gazetteer

    open_set = load_requests(str(resources.files("audio").joinpath("voice_open_requests.jsonl")))
    others = load_requests() + load_requests(
        str(resources.files("audio").joinpath("stt_heldout_requests.jsonl")))
    assert len(open_set) >= 40 and len({r.id for r in open_set}) == len(open_set)
    assert not {r.voice for r in open_set} & {r.voice for r in others}
    assert not {r.words_per_min for r in open_set} & {r.words_per_min for r in others}
    listed = {w.lower() for pool in ("city", "item") for part in POOLS[pool] for w in part}
    listed |= {w.lower() for w in build.CITIES + build.ITEMS}
    seen_text = " ".join(r.text.lower() for r in others)
    reg = build_voice_tools(HomeStore(), _services())
    names = set()
    for r in open_set:
        for call in r.expected:
            reg.validate(ToolCall(call["name"], call["arguments"]))
            names.add(call["name"])
            for key in ("city", "item"):
                value = call["arguments"].get(key)
                if value is not None:
                    assert value.lower() not in listed and value.lower() not in seen_text, value
                if key == "city" and value is not None:
                    assert isinstance(gazetteer().resolve(value), Place), value
    assert {"call_contact", "send_message", "get_calendar"} <= names
    assert sum(not r.expected for r in open_set) >= 4  # turns that need no tool
