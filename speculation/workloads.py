"""Realistic robot and voice workloads over the demos' tool sets, for replay benchmarks.

Each generator draws episodes of the kinds the demos run: the robot picks,
places, stacks, points, inspects and clears the table (sim_envs/robot_tools.json,
with scenes of 2-4 cubes, grasps that sometimes fail and are retried); the voice
assistant answers weather, time, lights, timers, shopping, calendar, search and
messaging requests, sometimes several in one utterance (audio/voice_tools.json),
with the partial transcript as the first observation (slots may still be missing)
and the final transcript at the first call. Think times model the decoder on a CPU;
tool times and CPU shares model the simulator's planners, the arm's motion and
web APIs. Deterministic for a seed. Every call's arguments satisfy the tool specs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from control.tools import ToolSpec, load_tool_spec_file
from speculation.traces import Episode, Step

__all__ = ["WORKLOADS", "load_specs", "robot_episodes", "voice_episodes"]

_ROOT = Path(__file__).resolve().parent.parent
SPEC_FILES = {"robot": _ROOT / "sim_envs" / "robot_tools.json",
              "voice": _ROOT / "audio" / "voice_tools.json"}

# tool -> (mean ms, sd ms, CPU share)
_ROBOT_MS = {"detect_objects": (180, 40, 0.9), "locate_object": (45, 10, 0.8),
             "plan_grasp": (320, 80, 1.0), "plan_path": (260, 60, 1.0),
             "move_to": (900, 250, 0.1), "grasp": (1200, 200, 0.1),
             "place_on": (1300, 250, 0.1), "point_at": (800, 200, 0.1),
             "release": (400, 80, 0.1), "go_home": (900, 150, 0.1)}
_VOICE_MS = {"get_weather": (700, 200, 0.02), "get_time": (60, 15, 0.05),
             "web_search": (1100, 300, 0.02), "get_light_state": (120, 30, 0.05),
             "list_timers": (30, 8, 0.1), "get_shopping_list": (150, 40, 0.05),
             "get_calendar": (450, 120, 0.03), "set_light": (200, 50, 0.05),
             "set_thermostat": (250, 60, 0.05), "set_timer": (40, 10, 0.1),
             "add_to_shopping_list": (150, 40, 0.05), "send_message": (400, 100, 0.02)}
CUBES = ["red_cube", "green_cube", "blue_cube", "yellow_cube"]
BIN = (0.3, -0.4, 0.3)
ROOMS = ["kitchen", "living_room", "bedroom", "bathroom", "office", "hallway"]
CITIES = ["Oslo", "Paris", "Tokyo", "Lima", "Cairo", "Berlin", "Austin", "Seoul", "Dublin",
          "Nairobi", "Toronto", "Madrid"]
CONTACTS = ["Alice", "Bob", "Mum", "Sam", "Priya", "Jonas"]
ITEMS = ["milk", "eggs", "bread", "coffee", "apples", "rice", "soap", "butter"]
QUERIES = ["train times to the airport", "best ramen nearby", "opening hours of the pool",
           "how tall is the eiffel tower", "news about the election", "recipe for pancakes"]


def load_specs(name_or_path: str) -> list[ToolSpec]:
    """The specs of a workload (``robot``, ``voice``) or of a spec file; a
    :class:`control.tools.ToolError` names the file and the item when one is wrong."""
    return load_tool_spec_file(SPEC_FILES.get(name_or_path, Path(name_or_path)))


class _Builder:
    def __init__(self, rng: random.Random, table: dict[str, tuple[int, int, float]],
                 think: tuple[float, float]) -> None:
        self.rng, self.table, self.think = rng, table, think
        self.steps: list[Step] = []

    def add(self, name: str, arguments: dict[str, Any], result: Any, *, ok: bool = True,
            think_ms: float | None = None, observation: dict[str, Any] | None = None) -> Any:
        mean, sd, cpu = self.table[name]
        tool_ms = max(5.0, self.rng.gauss(mean, sd))
        if think_ms is None:
            think_ms = max(80.0, self.rng.gauss(*self.think))
        self.steps.append(Step(name, arguments, result, tool_ms=round(tool_ms, 1),
                               think_ms=round(think_ms, 1), ok=ok, observation=observation,
                               cpu_ms=round(tool_ms * cpu, 1)))
        return result


def _r(v: float) -> float:
    return round(v, 3)


def _robot_episode(rng: random.Random, i: int) -> Episode:
    b = _Builder(rng, _ROBOT_MS, (350.0, 80.0))
    cubes = rng.sample(CUBES, rng.randint(2, 4))
    pos = {c: (_r(rng.uniform(0.35, 0.65)), _r(rng.uniform(-0.3, 0.3)), 0.025) for c in cubes}
    verb = rng.choices(["put", "stack", "point", "inspect", "clear"], [35, 25, 15, 10, 15])[0]
    obj = rng.choice(cubes)
    others = [c for c in cubes if c != obj]
    target = "bin" if verb in ("put", "clear") else rng.choice(others) if verb == "stack" else ""
    words = {"put": f"put the {obj} in the bin", "stack": f"stack the {obj} on the {target}",
             "point": f"point at the {obj}", "inspect": "what is on the table",
             "clear": "clear the table"}
    obs: dict[str, Any] = {"instruction": words[verb], "verb": verb}
    if verb in ("put", "stack", "point"):
        obs["object"] = obj
    if target:
        obs["target"] = target
    b.add("detect_objects", {}, {"objects": [
        {"name": c, "color": c.split("_")[0], "x": p[0], "y": p[1], "z": p[2]}
        for c, p in pos.items()]}, think_ms=max(150.0, rng.gauss(450, 100)))

    def pick(c: str) -> None:
        x, y, z = pos[c]
        b.add("locate_object", {"object": c}, {"x": x, "y": y, "z": z})
        b.add("plan_grasp", {"object": c}, {"approach": {"x": x, "y": y, "z": _r(z + 0.1)},
                                            "path_m": _r(rng.uniform(0.2, 0.6))})
        b.add("move_to", {"x": x, "y": y, "z": _r(z + 0.1)}, {"reached": True})
        while rng.random() < 0.12:  # the grasp slips: look again and retry
            b.add("grasp", {"object": c}, {"grasped": False, "object": c})
            b.add("locate_object", {"object": c}, {"x": x, "y": y, "z": z})
            b.add("move_to", {"x": x, "y": y, "z": _r(z + 0.1)}, {"reached": True})
        b.add("grasp", {"object": c}, {"grasped": True, "object": c})

    def place(c: str, on: str) -> None:
        if on == "bin":
            b.add("plan_path", {"x": BIN[0], "y": BIN[1], "z": BIN[2]},
                  {"length_m": _r(rng.uniform(0.3, 0.7)), "collision_free": True})
        else:
            x, y, z = pos[on]
            b.add("locate_object", {"object": on}, {"x": x, "y": y, "z": z})
            b.add("plan_path", {"x": x, "y": y, "z": _r(z + 0.15)},
                  {"length_m": _r(rng.uniform(0.2, 0.5)), "collision_free": True})
        b.add("place_on", {"object": c, "target": on}, {"placed": c, "on": on})

    if verb in ("put", "stack"):
        pick(obj)
        place(obj, target)
        b.add("go_home", {}, {"at_home": True})
    elif verb == "point":
        b.add("locate_object", {"object": obj}, {"x": pos[obj][0], "y": pos[obj][1],
                                                 "z": pos[obj][2]})
        b.add("point_at", {"object": obj}, {"pointing_at": obj})
        if rng.random() < 0.6:
            b.add("go_home", {}, {"at_home": True})
    elif verb == "inspect":
        for c in cubes:
            b.add("locate_object", {"object": c}, {"x": pos[c][0], "y": pos[c][1],
                                                   "z": pos[c][2]})
    else:
        for c in cubes:
            pick(c)
            place(c, "bin")
        b.add("go_home", {}, {"at_home": True})
    return Episode(f"robot-{i:04d}", tuple(b.steps), obs)


def _voice_episode(rng: random.Random, i: int) -> Episode:
    b = _Builder(rng, _VOICE_MS, (260.0, 60.0))
    home = rng.choice(CITIES)
    kind = rng.choices(["weather", "time", "lights", "timer", "shopping", "briefing",
                        "search", "calendar", "thermostat"],
                       [20, 8, 18, 10, 10, 10, 10, 8, 6])[0]
    city, room = rng.choice(CITIES), rng.choice(ROOMS)
    slots: dict[str, Any] = {"topic": kind, "home_city": home}
    if kind in ("weather", "time"):
        slots["city"] = city
    if kind in ("lights", "thermostat"):
        slots["room"] = room
    item, contact, query = rng.choice(ITEMS), rng.choice(CONTACTS), rng.choice(QUERIES)
    minutes = rng.choice([1, 3, 5, 10, 15, 20, 30, 45])
    if kind == "shopping":
        slots["item"] = item
    if kind == "search":
        slots.update(query=query, contact=contact)
    if kind == "timer":
        slots["minutes"] = minutes
    final = dict(slots)
    partial = dict(slots)
    for k in [k for k in slots if k not in ("topic", "home_city")]:
        if rng.random() < 0.2:  # the partial transcript does not have this slot yet
            del partial[k]
    first_think = max(300.0, rng.gauss(900, 250))  # rest of the utterance + endpoint + decode

    def weather(c: str, **kw: Any) -> Any:
        cond = rng.choice(["sun", "rain", "cloud", "snow", "wind"])
        return b.add("get_weather", {"city": c}, {"city": c, "temp_c": rng.randint(-5, 32),
                                                  "condition": cond}, **kw)
    first: dict[str, Any] = {"think_ms": first_think, "observation": final}
    if kind == "weather":
        w = weather(city, **first)
        if rng.random() < 0.35:
            b.add("get_time", {"city": city}, {"city": city, "time": f"{rng.randint(0, 23):02d}:"
                                               f"{rng.randint(0, 59):02d}"})
        if w["condition"] in ("rain", "snow") and rng.random() < 0.5:
            b.add("web_search", {"query": f"umbrella shops {city}"[:80]},
                  {"results": [{"title": "Umbrella Co", "url": "https://example.com/u"}]})
    elif kind == "time":
        b.add("get_time", {"city": city}, {"city": city, "time": "12:00"}, **first)
    elif kind == "lights":
        on = rng.random() < 0.6
        b.add("get_light_state", {"room": room}, {"room": room, "on": on,
                                                  "brightness": 80 if on else 0}, **first)
        b.add("set_light", {"room": room, "on": not on}, {"room": room, "on": not on})
        if rng.random() < 0.3:
            b.add("get_light_state", {"room": room}, {"room": room, "on": not on,
                                                      "brightness": 0 if on else 80})
    elif kind == "thermostat":
        b.add("get_weather", {"city": home}, {"city": home, "temp_c": rng.randint(-5, 32),
                                              "condition": "cloud"}, **first)
        b.add("set_thermostat", {"room": room, "celsius": rng.choice([19, 20, 21, 22])},
              {"room": room, "ok": True})
    elif kind == "timer":
        b.add("list_timers", {}, {"timers": rng.choice([[], [{"label": "tea", "left_s": 90}]])},
              **first)
        b.add("set_timer", {"minutes": minutes, "label": "timer"}, {"set": True})
    elif kind == "shopping":
        lst = rng.sample(ITEMS, rng.randint(0, 4))
        b.add("get_shopping_list", {}, {"items": lst}, **first)
        if item not in lst:
            b.add("add_to_shopping_list", {"item": item}, {"added": item})
    elif kind == "briefing":
        weather(home, **first)
        events = [{"title": rng.choice(["standup", "dentist", "lunch"]),
                   "at": f"{rng.randint(8, 17):02d}:00", "location": rng.choice(CITIES)}
                  for _ in range(rng.randint(0, 3))]
        b.add("get_calendar", {}, {"events": events})
        b.add("list_timers", {}, {"timers": []})
        if rng.random() < 0.5:
            b.add("get_shopping_list", {}, {"items": rng.sample(ITEMS, 2)})
    elif kind == "search":
        title = f"{query.title()} - result"
        b.add("web_search", {"query": query}, {"results": [
            {"title": title[:60], "url": f"https://example.com/{rng.randint(1, 999)}"}]},
            **first)
        b.add("send_message", {"contact": contact, "text": title[:60]}, {"sent": True})
    else:  # calendar, then the weather where the first event is
        events = [{"title": "meeting", "at": "10:00", "location": rng.choice(CITIES)}
                  for _ in range(rng.randint(1, 3))]
        b.add("get_calendar", {}, {"events": events}, **first)
        weather(events[0]["location"])
    return Episode(f"voice-{i:04d}", tuple(b.steps), partial)


def robot_episodes(n: int, seed: int = 0) -> list[Episode]:
    rng = random.Random(seed)
    return [_robot_episode(rng, i) for i in range(n)]


def voice_episodes(n: int, seed: int = 0) -> list[Episode]:
    rng = random.Random(seed)
    return [_voice_episode(rng, i) for i in range(n)]


WORKLOADS: dict[str, Callable[[int, int], list[Episode]]] = {
    "robot": robot_episodes, "voice": voice_episodes}
