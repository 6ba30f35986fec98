"""Regenerate robot.jsonl, voice.jsonl (fixed seed) and compound.jsonl (hand-written:
:mod:`models.evalsets.compound`): `python -m models.evalsets.build`.

Each line: ``{"id", "messages": [{"role": "user", "content"}], "enums"?, "expected":
[{"name", "arguments"}]}`` — directly usable as `rtagent calls --input`. Phrasings are
written by hand per intent and filled with random objects, positions, rooms, cities;
none repeats a few-shot example of models/prompts.py.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from models.prompts import render_scene, user_content

HERE = Path(__file__).resolve().parent
SEED = 20261125
COLORS = ["red", "green", "blue", "yellow"]


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def _scene(rng: random.Random) -> tuple[str, list[str]]:
    visible = sorted(rng.sample(COLORS, rng.randint(2, 4)), key=COLORS.index)
    for _ in visible:  # positions are drawn (the cases stay those of the fixed seed), not written
        rng.uniform(0.3, 0.7), rng.uniform(-0.4, 0.4)
    held = rng.choice([None, None, visible[0]])
    return render_scene([f"{c}_cube" for c in visible], f"{held}_cube" if held else None), visible


def _num(rng: random.Random, lo: float, hi: float) -> float:
    return round(rng.uniform(lo, hi), rng.choice([1, 2, 2]))


ROBOT_ONE = {
    "grasp": ["pick up the {c} cube", "grab the {c} one", "grasp the {c} block",
              "could you pick up the {c} cube please", "lift the {c} cube",
              "get hold of the {c} cube", "pick the {c} block up"],
    "point_at": ["point at the {c} cube", "show me the {c} block", "hover over the {c} cube",
                 "point to the {c} one"],
    "locate_object": ["where is the {c} cube?", "find the {c} block",
                      "give me the position of the {c} cube", "locate the {c} cube"],
    "plan_grasp": ["plan how to grasp the {c} cube, don't move yet",
                   "work out a grasp for the {c} block without moving",
                   "how would you pick up the {c} cube? just plan it"],
}
ROBOT_XYZ = {
    "move_to": ["move to x {x}, y {y}, z {z}", "go to ({x}, {y}, {z})",
                "move the gripper to {x} {y} {z}", "position the gripper at x={x} y={y} z={z}",
                "bring the arm to x {x} y {y} height {z}"],
    "plan_path": ["plan a path to x {x}, y {y}, z {z} without moving",
                  "how would you get to ({x}, {y}, {z})? only plan it",
                  "plan a collision-free path to x={x} y={y} z={z}"],
}
ROBOT_FIXED = {
    "release": ["let go", "open the gripper", "release it", "let go of the cube"],
    "go_home": ["go home", "return to the home position", "reset the arm",
                "back to your rest pose"],
    "detect_objects": ["what's on the table?", "list the objects you see", "scan the table",
                       "which objects are there?"],
}
ROBOT_NONE = ["what's your name?", "how are you today?", "sing me a song",
              "what's two plus two?"]
PLACE_BIN = ["put it in the bin", "drop it into the bin", "throw it in the bin",
             "place the cube in the bin"]
PLACE_ON = ["place it on the {c} cube", "stack it on top of the {c} block",
            "set it down on the {c} cube", "put it on the {c} one"]
# With an empty gripper "it" means nothing: these name the cube to move.
PLACE_BIN_NAMED = ["put the {c} cube in the bin", "drop the {c} block into the bin",
                   "the {c} one goes in the bin", "throw the {c} cube away"]
PLACE_ON_NAMED = ["place the {o} cube on the {c} cube", "stack the {o} block on top of the {c} one",
                  "put the {o} one onto the {c} cube", "move the {o} cube onto the {c} block"]


def _held(scene: str, visible: list[str]) -> str | None:
    """The held cube's colour (``_scene`` only ever holds the first visible one)."""
    return visible[0] if "holding" in scene else None


def robot_cases(rng: random.Random, n: int) -> list[dict[str, Any]]:
    kinds = (["one"] * 30 + ["xyz"] * 22 + ["fixed"] * 14 + ["bin"] * 6 + ["on"] * 8
             + ["none"] * 6 + ["multi"] * 14)
    out = []
    for i in range(n):
        scene, visible = _scene(rng)
        kind = kinds[i % len(kinds)]
        if kind == "one":
            name = rng.choice(sorted(ROBOT_ONE))
            c = rng.choice(visible)
            req = rng.choice(ROBOT_ONE[name]).format(c=c)
            expected = [_call(name, object=f"{c}_cube")]
        elif kind == "xyz":
            name = rng.choice(sorted(ROBOT_XYZ))
            x, y, z = _num(rng, 0.2, 0.8), _num(rng, -0.5, 0.5), _num(rng, 0.05, 0.6)
            req = rng.choice(ROBOT_XYZ[name]).format(x=x, y=y, z=z)
            expected = [_call(name, x=x, y=y, z=z)]
        elif kind == "fixed":
            name = sorted(ROBOT_FIXED)[i % len(ROBOT_FIXED)]
            req = rng.choice(ROBOT_FIXED[name])
            expected = [_call(name)]
        elif kind == "bin":
            held = _held(scene, visible)
            req = rng.choice(PLACE_BIN if held else PLACE_BIN_NAMED).format(c=visible[-1])
            expected = [_call("place_on", object=f"{held or visible[-1]}_cube", target="bin")]
        elif kind == "on":
            held, c = _held(scene, visible), rng.choice(visible[1:])
            obj = held or visible[0]
            req = rng.choice(PLACE_ON if held else PLACE_ON_NAMED).format(c=c, o=obj)
            expected = [_call("place_on", object=f"{obj}_cube", target=f"{c}_cube")]
        elif kind == "none":
            req, expected = rng.choice(ROBOT_NONE), []
        else:
            a, b = rng.sample(visible, 2)
            form = rng.randrange(3)
            if form == 0:
                req = f"pick up the {a} cube and go back home"
                expected = [_call("grasp", object=f"{a}_cube"), _call("go_home")]
            elif form == 1:
                req = f"get rid of the {a} and the {b} blocks, both into the bin"
                expected = [_call("place_on", object=f"{a}_cube", target="bin"),
                            _call("place_on", object=f"{b}_cube", target="bin")]
            else:
                req = f"where are the {a} and the {b} cubes?"
                expected = [_call("locate_object", object=f"{a}_cube"),
                            _call("locate_object", object=f"{b}_cube")]
        out.append({
            "id": f"robot-{i + 1:03d}",
            "messages": [{"role": "user", "content": user_content(req, scene)}],
            "enums": {"object": [f"{c}_cube" for c in visible],
                      "target": [f"{c}_cube" for c in visible] + ["bin"]},
            "expected": expected,
        })
    return out


ROOMS = {"kitchen": "kitchen", "living_room": "living room", "bedroom": "bedroom",
         "bathroom": "bathroom", "office": "office", "hallway": "hallway"}
CITIES = ["Paris", "Rome", "Tokyo", "Berlin", "Madrid", "Oslo", "Cairo", "Sydney", "Toronto",
          "Chicago", "Mumbai", "Seoul", "Vienna", "Dublin", "Nairobi", "Lima", "Boston"]
ITEMS = ["eggs", "bread", "coffee", "bananas", "rice", "olive oil", "butter", "apples",
         "toothpaste", "milk"]
CONTACTS = ["Anna", "mom", "Ben", "Sara", "dad", "Tom"]
TEXTS = ["I'm running late", "see you at six", "call me back", "dinner is ready",
         "happy birthday"]
QUERIES = ["best pizza near me", "how tall is Mount Everest", "who wrote Hamlet",
           "train times to Leeds", "how to boil an egg", "population of Canada"]
LABELS = ["pasta", "tea", "laundry", "eggs", "pizza"]

VOICE = {
    "get_weather": ["what's the weather in {city}", "is it cold in {city}?",
                    "weather forecast for {city}", "will it rain in {city} today?"],
    "get_time": ["what time is it in {city}", "current time in {city}?",
                 "tell me the local time in {city}"],
    "get_light_state": ["are the lights on in the {room}?", "is the {room} light on?",
                        "check the {room} lights"],
    "list_timers": ["what timers are running?", "how long is left on my timers?",
                    "list my timers"],
    "get_shopping_list": ["what's on my shopping list?", "read me the shopping list"],
    "get_calendar": ["what's on my calendar today?", "do I have any meetings today?"],
    "light_on": ["turn on the {room} lights", "switch the light on in the {room}",
                 "lights on in the {room} please"],
    "light_off": ["turn off the {room} lights", "switch off the light in the {room}",
                  "{room} lights off"],
    "light_level": ["set the {room} lights to {b} percent", "{room} lights at {b} percent"],
    "set_thermostat": ["set the {room} to {t} degrees", "make the {room} {t} degrees",
                       "heat the {room} to {t} degrees celsius"],
    "timer": ["set a timer for {m} minutes", "start a {m} minute timer",
              "timer for {m} minutes please"],
    "timer_label": ["set a {m} minute timer for the {label}",
                    "start a timer for {m} minutes called {label}"],
    "add_to_shopping_list": ["add {item} to my shopping list", "put {item} on the list",
                             "we need {item}, add it to the shopping list"],
    "send_message": ["text {contact} saying {text}", "send a message to {contact}: {text}",
                     "tell {contact} that {text}"],
    "web_search": ["search the web for {q}", "look up {q}", "search for {q}"],
}
VOICE_NONE = ["thank you", "never mind", "good night", "that's it"]


def voice_cases(rng: random.Random, n: int) -> list[dict[str, Any]]:
    keys = sorted(VOICE)
    out = []
    for i in range(n):
        r = i % 20
        if r < 15:
            key = keys[(i // 20 * 7 + r) % len(keys)]
            room = rng.choice(sorted(ROOMS))
            f = {"city": rng.choice(CITIES), "room": ROOMS[room], "b": rng.choice([10, 25, 40,
                 50, 75, 80]), "t": rng.choice([18, 19.5, 20, 21, 22.5, 23]),
                 "m": rng.choice([3, 5, 10, 12, 15, 25, 45]), "label": rng.choice(LABELS),
                 "item": rng.choice(ITEMS), "contact": rng.choice(CONTACTS),
                 "text": rng.choice(TEXTS), "q": rng.choice(QUERIES)}
            req = rng.choice(VOICE[key]).format(**f)
            expected = {
                "get_weather": [_call("get_weather", city=f["city"])],
                "get_time": [_call("get_time", city=f["city"])],
                "get_light_state": [_call("get_light_state", room=room)],
                "list_timers": [_call("list_timers")],
                "get_shopping_list": [_call("get_shopping_list")],
                "get_calendar": [_call("get_calendar")],
                "light_on": [_call("set_light", room=room, on=True)],
                "light_off": [_call("set_light", room=room, on=False)],
                "light_level": [_call("set_light", room=room, on=True, brightness=f["b"])],
                "set_thermostat": [_call("set_thermostat", room=room, celsius=f["t"])],
                "timer": [_call("set_timer", minutes=f["m"])],
                "timer_label": [_call("set_timer", minutes=f["m"], label=f["label"])],
                "add_to_shopping_list": [_call("add_to_shopping_list", item=f["item"])],
                "send_message": [_call("send_message", contact=f["contact"], text=f["text"])],
                "web_search": [_call("web_search", query=f["q"])],
            }[key]
        elif r < 17:
            req, expected = rng.choice(VOICE_NONE), []
        else:
            a, b = rng.sample(CITIES, 2)
            room = rng.choice(sorted(ROOMS))
            item, m = rng.choice(ITEMS), rng.choice([5, 10, 20])
            req, expected = rng.choice([
                (f"what's the weather in {a} and in {b}?",
                 [_call("get_weather", city=a), _call("get_weather", city=b)]),
                (f"turn off the {ROOMS[room]} lights and set a timer for {m} minutes",
                 [_call("set_light", room=room, on=False), _call("set_timer", minutes=m)]),
                (f"add {item} to the shopping list and what time is it in {a}?",
                 [_call("add_to_shopping_list", item=item), _call("get_time", city=a)]),
            ])
        out.append({"id": f"voice-{i + 1:03d}",
                    "messages": [{"role": "user", "content": req}], "expected": expected})
    return out


def compound_cases() -> list[dict[str, Any]]:
    """The hand-written compound requests, robot first (one prompt prefix after another)."""
    from models.evalsets.compound import ROBOT, VOICE, robot_case, voice_case

    return ([robot_case(i, *case) for i, case in enumerate(ROBOT, start=1)]
            + [voice_case(i, *case) for i, case in enumerate(VOICE, start=1)])


def main() -> None:
    rng = random.Random(SEED)
    sets = (("robot", robot_cases(rng, 120)), ("voice", voice_cases(rng, 120)),
            ("compound", compound_cases()))
    for name, cases in sets:
        path = HERE / f"{name}.jsonl"
        path.write_text("".join(json.dumps(c) + "\n" for c in cases))
        print(f"wrote {len(cases)} cases to {path}")


if __name__ == "__main__":
    main()
