"""The compound eval set, written by hand: requests that want several calls (robot, voice).

`python -m models.evalsets.build` writes ``compound.jsonl`` from :data:`ROBOT` and
:data:`VOICE`. Each case is a request as a user would say it ("A and B", "A, then B",
"every X", "both", relative references: "there", "it", "the same"; a few that cancel
or correct themselves), the full set of calls it wants, and the order constraints
that matter: ``(i, j)``, expected call ``i`` must come before call ``j`` (the request
says "then" / "first" / "after that", or the second call acts on what the first left).
Calls without a pair between them may come in any order.

None of these is a few-shot example of :mod:`models.prompts`, and the tune data
generator never emits them (:func:`models.tune.data.eval_requests`) nor their
free-text values (:func:`models.tune.data.eval_values`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ROBOT", "VOICE", "robot_case", "voice_case"]

Call = dict[str, Any]
Order = tuple[tuple[int, int], ...]


def _c(name: str, **arguments: Any) -> Call:
    return {"name": name, "arguments": arguments}


def _put(obj: str, target: str) -> Call:
    return _c("place_on", object=f"{obj}_cube", target="bin" if target == "bin" else f"{target}_cube")


def _cube(tool: str, colour: str) -> Call:
    return _c(tool, object=f"{colour}_cube")


def _after(*pairs: tuple[int, int]) -> Order:
    return tuple(pairs)


def _chain(n: int) -> Order:
    """Each call after the one before it."""
    return tuple((i, i + 1) for i in range(n - 1))


def _before_last(n: int) -> Order:
    """Every call before the last (``..., then go home``)."""
    return tuple((i, n - 1) for i in range(n - 1))


# (colours seen, held colour or None, request, calls, order)
ROBOT: list[tuple[str, str | None, str, list[Call], Order]] = [
    ("red green blue", None, "pick up the blue cube and then go home",
     [_cube("grasp", "blue"), _c("go_home")], _chain(2)),
    ("red green yellow blue", None,
     "stack the green cube on the yellow one, then the red on the green",
     [_put("green", "yellow"), _put("red", "green")], _chain(2)),
    ("red green blue", None, "tidy up: every cube goes in the bin",
     [_put("red", "bin"), _put("green", "bin"), _put("blue", "bin")], ()),
    ("red blue", None, "throw both cubes in the bin",
     [_put("red", "bin"), _put("blue", "bin")], ()),
    ("red green blue yellow", None, "where are the red and the yellow ones?",
     [_cube("locate_object", "red"), _cube("locate_object", "yellow")], ()),
    ("green yellow", None, "point at the green cube, then at the yellow one",
     [_cube("point_at", "green"), _cube("point_at", "yellow")], _chain(2)),
    ("red green blue", "red", "let go of it and go back to your home pose",
     [_c("release"), _c("go_home")], _chain(2)),
    ("red blue yellow", None, "put the blue block on the red one and the yellow one in the bin",
     [_put("blue", "red"), _put("yellow", "bin")], ()),
    ("red green blue yellow", None, "I need all four cubes in the bin",
     [_put("red", "bin"), _put("green", "bin"), _put("blue", "bin"), _put("yellow", "bin")], ()),
    ("red green", None, "what do you see, and where is the green cube exactly?",
     [_c("detect_objects"), _cube("locate_object", "green")], ()),
    ("red green blue", None, "plan a grasp for the red cube and one for the blue cube, but don't move",
     [_cube("plan_grasp", "red"), _cube("plan_grasp", "blue")], ()),
    ("blue yellow", None, "move to x 0.4, y 0.1, z 0.3 and then return home",
     [_c("move_to", x=0.4, y=0.1, z=0.3), _c("go_home")], _chain(2)),
    ("red green blue", None,
     "first put the green cube on the blue one, then put the red cube on the green one",
     [_put("green", "blue"), _put("red", "green")], _chain(2)),
    ("red green blue yellow", None, "build a tower: blue at the bottom, then yellow, then red on top",
     [_put("yellow", "blue"), _put("red", "yellow")], _chain(2)),
    ("red yellow", "yellow", "drop it in the bin, then grab the red one",
     [_put("yellow", "bin"), _cube("grasp", "red")], _chain(2)),
    ("green blue", None, "locate the blue cube and point at the green one",
     [_cube("locate_object", "blue"), _cube("point_at", "green")], ()),
    ("red green blue", None, "get rid of the red and green blocks",
     [_put("red", "bin"), _put("green", "bin")], ()),
    ("red green blue yellow", None, "put every cube except the blue one in the bin",
     [_put("red", "bin"), _put("green", "bin"), _put("yellow", "bin")], ()),
    ("red blue", None, "go to 0.5, -0.2, 0.25, then go to 0.5, 0.2, 0.25",
     [_c("move_to", x=0.5, y=-0.2, z=0.25), _c("move_to", x=0.5, y=0.2, z=0.25)], _chain(2)),
    ("yellow green", None, "point at each cube",
     [_cube("point_at", "yellow"), _cube("point_at", "green")], ()),
    ("red green blue", None, "check where all the cubes are",
     [_cube("locate_object", "red"), _cube("locate_object", "green"),
      _cube("locate_object", "blue")], ()),
    ("red green blue", "blue", "put the blue cube on the red one and go home afterwards",
     [_put("blue", "red"), _c("go_home")], _chain(2)),
    ("red green", None, "put the red cube on the green one, then park the arm",
     [_put("red", "green"), _c("go_home")], _chain(2)),
    ("red green blue yellow", None, "stack red on blue and green on yellow",
     [_put("red", "blue"), _put("green", "yellow")], ()),
    ("green blue yellow", None, "scan the table and then go home",
     [_c("detect_objects"), _c("go_home")], _chain(2)),
    ("red blue", None, "plan a path to x 0.3 y 0 z 0.4 and plan a grasp for the blue cube",
     [_c("plan_path", x=0.3, y=0, z=0.4), _cube("plan_grasp", "blue")], ()),
    ("red green blue", None, "hover over the green cube and then over the blue cube",
     [_cube("point_at", "green"), _cube("point_at", "blue")], _chain(2)),
    ("red green blue", None, "put the red and the blue ones in the bin, then go home",
     [_put("red", "bin"), _put("blue", "bin"), _c("go_home")], _before_last(3)),
    ("green yellow", "green", "release the cube and tell me where the yellow one is",
     [_c("release"), _cube("locate_object", "yellow")], ()),
    ("red green blue", None, "move the green block into the bin and stack the red one on the blue one",
     [_put("green", "bin"), _put("red", "blue")], ()),
    ("red yellow blue", None, "where's the yellow cube? then pick it up",
     [_cube("locate_object", "yellow"), _cube("grasp", "yellow")], _chain(2)),
    ("red green blue yellow", None, "all the cubes into the bin, then home",
     [_put("red", "bin"), _put("green", "bin"), _put("blue", "bin"), _put("yellow", "bin"),
      _c("go_home")], _before_last(5)),
    ("blue green", None, "grab the green cube, then point at the blue one",
     [_cube("grasp", "green"), _cube("point_at", "blue")], _chain(2)),
    ("red green", None, "plan grasps for both cubes",
     [_cube("plan_grasp", "red"), _cube("plan_grasp", "green")], ()),
    ("red green blue", None,
     "put the blue one on the green one, and after that the red one on the blue one",
     [_put("blue", "green"), _put("red", "blue")], _chain(2)),
    ("red green blue yellow", None, "find the red and green cubes, then go home",
     [_cube("locate_object", "red"), _cube("locate_object", "green"), _c("go_home")],
     _before_last(3)),
    ("red green blue", "green",
     "put what you're holding in the bin and then do the same with the red cube",
     [_put("green", "bin"), _put("red", "bin")], _chain(2)),
    ("yellow blue", None, "move to x 0.6 y -0.3 z 0.2, open the gripper, and go home",
     [_c("move_to", x=0.6, y=-0.3, z=0.2), _c("release"), _c("go_home")], _chain(3)),
    ("red green blue", None, "pick up the green cube... actually, forget it", [], ()),
    ("red blue", None, "put the red cube in the bin, no wait, the blue one",
     [_put("blue", "bin")], ()),
]

# (request, calls, order)
VOICE: list[tuple[str, list[Call], Order]] = [
    ("turn on the bedroom lamp and tell me the time in Tokyo",
     [_c("set_light", room="bedroom", on=True), _c("get_time", city="Tokyo")], ()),
    ("add oat milk and bananas",
     [_c("add_to_shopping_list", item="oat milk"), _c("add_to_shopping_list", item="bananas")], ()),
    ("what's the weather in Reykjavik and in Lisbon?",
     [_c("get_weather", city="Reykjavik"), _c("get_weather", city="Lisbon")], ()),
    ("switch off the kitchen and the hallway lights",
     [_c("set_light", room="kitchen", on=False), _c("set_light", room="hallway", on=False)], ()),
    ("set a timer for 10 minutes and turn the office lights off",
     [_c("set_timer", minutes=10), _c("set_light", room="office", on=False)], ()),
    ("text Anna that I'm on my way and add coffee to the list",
     [_c("send_message", contact="Anna", text="I'm on my way"),
      _c("add_to_shopping_list", item="coffee")], ()),
    ("what time is it in Sydney and what's the weather there?",
     [_c("get_time", city="Sydney"), _c("get_weather", city="Sydney")], ()),
    ("make the living room 21 degrees and the bedroom 18",
     [_c("set_thermostat", room="living_room", celsius=21),
      _c("set_thermostat", room="bedroom", celsius=18)], ()),
    ("turn off the lights in the bathroom, then turn them on again at 40 percent",
     [_c("set_light", room="bathroom", on=False),
      _c("set_light", room="bathroom", on=True, brightness=40)], _chain(2)),
    ("check my calendar and my shopping list",
     [_c("get_calendar"), _c("get_shopping_list")], ()),
    ("what's on my calendar today and how many timers are running?",
     [_c("get_calendar"), _c("list_timers")], ()),
    ("add eggs, flour and sugar to the shopping list",
     [_c("add_to_shopping_list", item="eggs"), _c("add_to_shopping_list", item="flour"),
      _c("add_to_shopping_list", item="sugar")], ()),
    ("is it raining in Madrid? also, what time is it in Buenos Aires?",
     [_c("get_weather", city="Madrid"), _c("get_time", city="Buenos Aires")], ()),
    ("turn all the lights off",
     [_c("set_light", room=r, on=False)
      for r in ("kitchen", "living_room", "bedroom", "bathroom", "office", "hallway")], ()),
    ("set a 5 minute timer for the tea and a 12 minute timer for the eggs",
     [_c("set_timer", minutes=5, label="tea"), _c("set_timer", minutes=12, label="eggs")], ()),
    ("search the web for the opening times of the Louvre and tell me the weather in Paris",
     [_c("web_search", query="the opening times of the Louvre"),
      _c("get_weather", city="Paris")], ()),
    ("message Ben saying dinner is at eight and switch on the kitchen light",
     [_c("send_message", contact="Ben", text="dinner is at eight"),
      _c("set_light", room="kitchen", on=True)], ()),
    ("how warm is it in Nairobi and in Cairo",
     [_c("get_weather", city="Nairobi"), _c("get_weather", city="Cairo")], ()),
    ("put the heating in the office to 20 and dim the office lights to 60 percent",
     [_c("set_thermostat", room="office", celsius=20),
      _c("set_light", room="office", on=True, brightness=60)], ()),
    ("is the hallway light on? and the kitchen one?",
     [_c("get_light_state", room="hallway"), _c("get_light_state", room="kitchen")], ()),
    ("what's the weather in Kyoto, and set a timer for 25 minutes",
     [_c("get_weather", city="Kyoto"), _c("set_timer", minutes=25)], ()),
    ("add toothpaste to my list and text mom that I'll be late",
     [_c("add_to_shopping_list", item="toothpaste"),
      _c("send_message", contact="mom", text="I'll be late")], ()),
    ("turn the bedroom lights on and set the bedroom to 22 degrees",
     [_c("set_light", room="bedroom", on=True), _c("set_thermostat", room="bedroom", celsius=22)],
     ()),
    ("look up the population of Iceland and the time in Reykjavik",
     [_c("web_search", query="the population of Iceland"), _c("get_time", city="Reykjavik")], ()),
    ("switch on the lights in the kitchen and the living room",
     [_c("set_light", room="kitchen", on=True), _c("set_light", room="living_room", on=True)], ()),
    ("first turn off the office light, then set a timer for 45 minutes",
     [_c("set_light", room="office", on=False), _c("set_timer", minutes=45)], _chain(2)),
    ("what's the time in London and in New York?",
     [_c("get_time", city="London"), _c("get_time", city="New York")], ()),
    ("read me my timers and my calendar", [_c("list_timers"), _c("get_calendar")], ()),
    ("add milk to the shopping list, then read me the list",
     [_c("add_to_shopping_list", item="milk"), _c("get_shopping_list")], _chain(2)),
    ("tell Sara and Tom that the meeting moved to 4",
     [_c("send_message", contact="Sara", text="the meeting moved to 4"),
      _c("send_message", contact="Tom", text="the meeting moved to 4")], ()),
    ("set the kitchen lights to 70 percent and the hallway lights to 20 percent",
     [_c("set_light", room="kitchen", on=True, brightness=70),
      _c("set_light", room="hallway", on=True, brightness=20)], ()),
    ("weather in Denver, Santiago and Warsaw please",
     [_c("get_weather", city="Denver"), _c("get_weather", city="Santiago"),
      _c("get_weather", city="Warsaw")], ()),
    ("turn off the bedroom light and turn on the bathroom light",
     [_c("set_light", room="bedroom", on=False), _c("set_light", room="bathroom", on=True)], ()),
    ("how's the weather in Oslo? then search for things to do in Oslo",
     [_c("get_weather", city="Oslo"), _c("web_search", query="things to do in Oslo")],
     _chain(2)),
    ("put bread and butter on the shopping list",
     [_c("add_to_shopping_list", item="bread"), _c("add_to_shopping_list", item="butter")], ()),
    ("call mom, and then text Ben that I'm late",
     [_c("call_contact", contact="mom"), _c("send_message", contact="Ben", text="I'm late")],
     _chain(2)),
    ("ring Sara and put eggs on the shopping list",
     [_c("call_contact", contact="Sara"), _c("add_to_shopping_list", item="eggs")], ()),
    ("set a timer for 8 minutes, no wait, never mind", [], ()),
    ("turn on the kitchen light, sorry, I meant the bathroom light",
     [_c("set_light", room="bathroom", on=True)], ()),
]


def robot_case(i: int, colours: str, held: str | None, request: str, calls: list[Call],
               order: Order) -> dict[str, Any]:
    from models.prompts import render_scene, user_content

    seen = [f"{c}_cube" for c in colours.split()]
    scene = render_scene(seen, f"{held}_cube" if held else None)
    return {"id": f"compound-robot-{i:03d}", "toolset": "robot",
            "messages": [{"role": "user", "content": user_content(request, scene)}],
            "enums": {"object": seen, "target": [*seen, "bin"]},
            "expected": calls, "order": [list(p) for p in order]}


def voice_case(i: int, request: str, calls: list[Call], order: Order) -> dict[str, Any]:
    return {"id": f"compound-voice-{i:03d}", "toolset": "voice",
            "messages": [{"role": "user", "content": request}],
            "expected": calls, "order": [list(p) for p in order]}
