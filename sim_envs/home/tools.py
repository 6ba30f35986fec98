"""The voice assistant's tools: ``voice_tools.json`` specs bound to real backends.

``build_voice_tools(store, services)`` returns a :class:`control.tools.ToolRegistry`
with every tool of the shared contract: home tools run against the SQLite
:class:`sim_envs.home.store.HomeStore`; weather, time and search go through
:class:`sim_envs.home.services.Services` (simulated remote latency). Reads are
speculatable and writes are not, as the specs say; the registry refuses a spec
without a backend and a backend without a spec. Tools marked ``x-confirm`` (a
message, a call: what cannot be taken back) are run only once the user has said
yes (:func:`confirm_tools`; the decision asks).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from control.tools import ToolRegistry, ToolSpec, load_tool_specs
from sim_envs.home.dates import Now, local_now, parse_date
from sim_envs.home.errors import HomeError
from sim_envs.home.names import best_name
from sim_envs.home.services import Services
from sim_envs.home.store import CONTACTS, HomeStore

__all__ = ["HOME_TOOLS", "STT_PROMPT", "build_voice_tools", "canonical_call", "confirm_tools",
           "voice_tool_specs"]

#: The tools the home store serves (the rest are remote services).
HOME_TOOLS = ("get_light_state", "list_timers", "get_shopping_list", "get_calendar", "set_light",
              "set_thermostat", "set_timer", "add_to_shopping_list", "send_message", "call_contact")

# Whisper's "previous text": the home's vocabulary (rooms, devices, contacts, services)
# biases tiny.en toward it (WER on the request set 16.5% -> 13.2%, measured with espeak-ng).
STT_PROMPT = ("Turn the kitchen, living room, bedroom, bathroom, office or hallway lights on or "
              "off. Set the thermostat to 21 degrees. Set a timer for 10 minutes. Add milk to the "
              "shopping list. What is the weather in London? Send a message to Anna.")


def _raw_specs() -> list[dict[str, Any]]:
    raw: list[dict[str, Any]] = json.loads(resources.files("audio").joinpath("voice_tools.json")
                                           .read_text())
    return raw


def voice_tool_specs() -> list[ToolSpec]:
    """The shared voice tool contract (``audio/voice_tools.json``)."""
    return load_tool_specs(_raw_specs())


def confirm_tools() -> frozenset[str]:
    """The tools marked ``"x-confirm": true``: run only after the user says yes."""
    fns = (s.get("function", s) for s in _raw_specs())
    return frozenset(f["name"] for f in fns if f.get("x-confirm") is True)


def _backends(store: HomeStore, services: Services) -> dict[str, Callable[..., Any]]:
    return {
        "get_weather": services.weather.get_weather,
        "get_time": services.clock.get_time,
        "web_search": services.search.web_search,
        "get_light_state": store.get_light_state,
        "list_timers": store.list_timers,
        "get_shopping_list": store.get_shopping_list,
        "get_calendar": store.get_calendar,
        "set_light": store.set_light,
        "set_thermostat": store.set_thermostat,
        "set_timer": store.set_timer,
        "add_to_shopping_list": store.add_to_shopping_list,
        "send_message": store.send_message,
        "call_contact": store.call_contact,
    }


def build_voice_tools(store: HomeStore | None = None, services: Services | None = None,
                      specs: list[ToolSpec] | None = None) -> ToolRegistry:
    """A registry of every voice tool, bound to ``store`` and ``services`` (fresh ones if None)."""
    store = store or HomeStore()
    services = services or Services()
    specs = voice_tool_specs() if specs is None else specs
    backends = _backends(store, services)
    names = {s.name for s in specs}
    missing = sorted(names - backends.keys())
    extra = sorted(backends.keys() - names)
    if missing or extra:
        raise HomeError(f"voice tools and backends differ: specs without a backend {missing}, "
                         f"backends without a spec {extra}")
    registry = ToolRegistry()
    for spec in specs:
        registry.register(spec, backends[spec.name])
    return registry


def canonical_call(call: Mapping[str, Any], now: Now = local_now) -> dict[str, Any]:
    """A call as what it does (for scoring): a city as the gazetteer city it resolves to,
    a date as an ISO date (none for today), a contact as the home's contact, an item or
    a room in lower case. Two calls that do the same are equal after this."""
    from sim_envs.home.places import Place, gazetteer

    args = dict(call.get("arguments") or {})
    at = now()
    if isinstance(args.get("city"), str):
        try:
            place = gazetteer().resolve(args["city"])
            if isinstance(place, Place):
                args["city"] = place.qualified()
        except HomeError:
            pass
    if "date" in args:
        try:
            day = parse_date(str(args["date"]), at)
            args.pop("date")
            if day != at.date():
                args["date"] = day.isoformat()
        except HomeError:
            pass
    if isinstance(args.get("contact"), str):
        args["contact"] = best_name(args["contact"], CONTACTS) or args["contact"]
    for key in ("item", "room", "label"):
        if isinstance(args.get(key), str):
            args[key] = " ".join(args[key].lower().replace("_", " ").split())
    return {"name": call.get("name"), "arguments": args}
