"""Requests that want several calls, or none after all: the compound families.

Each pattern below is a family (:mod:`models.tune.families`), split into training and
held-out families like the single-call templates; a held-out compound uses held-out
families only, its parts included.

- **Joined** (:data:`JOIN2`, :data:`JOIN3`): two or three requests in one ("{a}, then
  {b}"): the calls in the order the requests come. :data:`AFTER` says the second first
  ("{b} after you {a}"): the calls still in the order they are to run.
- **Lists** (:data:`LISTS`): one tool, several values ("add {item}, {item2} and {item3}").
- **Related** (:data:`RELATED`): the second call takes the first one's values ("what time
  is it there?", "do the same with", "on it") or its result (``$1.celsius``, only where
  the tool declares that field: ``x-returns``).
- **Quantified** (:data:`EVERY_CUBE`, :data:`EVERY_ROOM`): "every", "all", "each",
  "both", "all but": one call per cube the scene lists (in its order), or per room.
- **Taken back** (:data:`CANCEL`, :data:`CORRECT`): "{a}... actually, never mind" is no
  call; "{a}, no wait, {b}" is only {b}'s calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from control.tools import ToolCall
from models.callformat import ArgKind
from models.simpletool.refs import reference_options
from models.tune.builder import Builder, Part
from models.tune.families import Family, family_id, split

T = TypeVar("T")
MAX_CALLS = 8  # most calls of one answer (the SimpleTool decoder's default max_calls)

__all__ = ["AFTER", "CANCEL", "CORRECT", "EVERY_CUBE", "EVERY_ROOM", "JOIN2", "JOIN3", "LISTS",
           "RELATED", "cancelled", "joined", "listed", "quantified", "related"]

JOIN2 = ["{a} and {b}", "{a}, then {b}", "first {a}, then {b}", "{a}. After that, {b}",
         "{a} and also {b}", "{a}, and then {b}", "{a}; {b}", "{a}, after that {b}",
         "{a}. Then {b}", "{a} and afterwards {b}", "{a}, plus {b}", "{a}. Also, {b}",
         "{a}, and {b} too", "{a} and right after, {b}", "{a}, next {b}", "{a} - and {b}"]
AFTER = ["{b} after you {a}", "{b}, but first {a}", "before you {b}, {a}",
         "{b} once you {a}", "{b}, but {a} first"]
JOIN3 = ["{a}, {b} and {c}", "{a}, then {b}, then {c}", "first {a}, then {b}, and finally {c}",
         "{a}, {b}, and then {c}", "{a}. Then {b}. After that, {c}"]
CANCEL = ["{a}... actually, never mind", "{a}, no wait, forget it", "{a}. Hmm, cancel that",
          "{a} - no, don't", "{a}, oh never mind", "{a}... no, leave it", "{a}. Scratch that",
          "{a}, actually no", "{a}... on second thought, don't bother", "{a}. wait, stop"]
CORRECT = ["{a}, no wait, {b}", "{a}, sorry, I meant {b}", "{a}... no, {b} instead",
           "{a}. Correction: {b}", "{a}, actually make that {b}", "{a}, no, {b}"]

# (tools in order, template): one tool, several values; slots of tool n end in n
LISTS: list[tuple[tuple[str, ...], str]] = [
    (("add_to_shopping_list",) * 2, "add {item} and {item2} to the shopping list"),
    (("add_to_shopping_list",) * 2, "put {item} and {item2} on my list"),
    (("add_to_shopping_list",) * 3, "add {item}, {item2} and {item3} to the list"),
    (("add_to_shopping_list",) * 2, "we need {item} and {item2}"),
    (("add_to_shopping_list",) * 3, "shopping list: {item}, {item2}, {item3}"),
    (("get_weather",) * 2, "what's the weather in {city} and in {city2}?"),
    (("get_weather",) * 2, "compare the weather in {city} and {city2}"),
    (("get_weather",) * 3, "weather for {city}, {city2} and {city3}"),
    (("get_weather",) * 2, "is it warmer in {city} or in {city2}?"),
    (("get_time",) * 2, "what time is it in {city} and {city2}?"),
    (("get_time",) * 3, "the time in {city}, {city2} and {city3} please"),
    (("set_light",) * 2, "turn off the lights in the {room} and the {room2}|on=false,on2=false"),
    (("set_light",) * 2, "turn on the {room} and {room2} lights|on=true,on2=true"),
    (("set_light",) * 2, "lights off in the {room} and the {room2}|on=false,on2=false"),
    (("set_light",) * 3, "switch on the {room}, {room2} and {room3} lights|on=true,on2=true,on3=true"),
    (("set_light",) * 2,
     "set the {room} lights to {brightness} and the {room2} lights to {brightness2}|on=true,on2=true"),
    (("get_light_state",) * 2, "are the lights on in the {room} and the {room2}?"),
    (("set_thermostat",) * 2, "set the {room} to {celsius} and the {room2} to {celsius2}"),
    (("set_timer",) * 2, "set one timer for {minutes} and another for {minutes2}"),
    (("set_timer",) * 2, "start a {label} timer for {minutes} and a {label2} timer for {minutes2}"),
    (("send_message",) * 2, "tell {contact} and {contact2} that {text}|text2=text"),
    (("call_contact",) * 2, "call {contact}, then {contact2}"),
    (("locate_object",) * 2, "where are {object} and {object2}?"),
    (("locate_object",) * 2, "find {object} and {object2}"),
    (("locate_object",) * 3, "locate {object}, {object2} and {object3}"),
    (("point_at",) * 2, "point at {object} and then at {object2}"),
    (("plan_grasp",) * 2, "plan grasps for {object} and {object2}"),
    (("place_on",) * 2, "put {object} and {object2} {target}|target2=target"),
    (("place_on",) * 2, "move {object} and {object2} {target}|target2=target"),
    (("place_on",) * 3, "throw {object}, {object2} and {object3} in the bin"
     "|target=bin,target2=bin,target3=bin"),
    (("place_on",) * 2, "stack {object} on {cube} and {object2} on top of that"
     "|target=cube,target2=object"),
]

# (tools in order, template): the later calls take earlier values or results
RELATED: list[tuple[tuple[str, ...], str]] = [
    (("get_weather", "get_time"), "what's the weather in {city} and what time is it there?"
     "|city2=city"),
    (("get_time", "get_weather"), "what time is it in {city}, and how's the weather there?"
     "|city2=city"),
    (("get_weather", "get_time"), "tell me the time and the weather in {city}|city2=city"),
    (("set_thermostat", "set_light"), "set the {room} to {celsius} and turn its lights on"
     "|on2=true,room2=room"),
    (("set_light", "set_light"), "turn off the {room} light, then switch it back on at "
     "{brightness2}|on=false,on2=true,room2=room"),
    (("send_message", "send_message"), "text {contact} that {text}, and tell {contact2} the same"
     "|text2=text"),
    (("add_to_shopping_list", "get_shopping_list"), "add {item} to the list, then read it to me"),
    (("locate_object", "grasp"), "where is {object}? then pick it up|object2=object"),
    (("locate_object", "point_at"), "find {object} and point at it|object2=object"),
    (("place_on", "place_on"), "put {object} {target}, then do the same with {object2}"
     "|target2=target"),
    (("place_on", "place_on"), "stack {object} on {cube}, then {object2} on it"
     "|target=cube,target2=object"),
    (("point_at", "point_at"), "point at {object}, then at {object2}"),
    # results: only where the first tool declares the field (x-returns)
    (("get_weather", "set_thermostat"), "set the {room} to the temperature it is in {city}"
     "|celsius=$1.celsius"),
    (("get_weather", "set_thermostat"), "make the {room} as warm as {city} is right now"
     "|celsius=$1.celsius"),
]

# (tool, template, which cubes): one call per cube the scene lists
EVERY_CUBE: list[tuple[str, str, str]] = [
    ("place_on", "put every cube in the bin", "all"),
    ("place_on", "all the cubes go in the bin", "all"),
    ("place_on", "clear the table", "all"),
    ("place_on", "throw all the blocks away", "all"),
    ("place_on", "bin everything", "all"),
    ("place_on", "get rid of all the cubes", "all"),
    ("place_on", "put all of them in the bin", "all"),
    ("place_on", "each block into the bin please", "all"),
    ("place_on", "put both cubes in the bin", "both"),
    ("place_on", "both blocks go in the bin", "both"),
    ("place_on", "put every cube except {object} in the bin", "except"),
    ("place_on", "everything but {object} into the bin", "except"),
    ("point_at", "point at every cube", "all"),
    ("point_at", "point to each block in turn", "all"),
    ("point_at", "point at both cubes", "both"),
    ("point_at", "point at all the cubes except {object}", "except"),
    ("locate_object", "where are all the cubes?", "all"),
    ("locate_object", "locate every block", "all"),
    ("locate_object", "find both cubes", "both"),
    ("locate_object", "find all the blocks apart from {object}", "except"),
    ("plan_grasp", "plan a grasp for every cube", "all"),
    ("plan_grasp", "plan how to pick up each block", "all"),
    ("plan_grasp", "plan grasps for both blocks", "both"),
]

# (tool, template): one call per value of the tool's ``room`` enum
EVERY_ROOM: list[tuple[str, str]] = [
    ("set_light", "turn off all the lights|on=false"),
    ("set_light", "switch every light off|on=false"),
    ("set_light", "lights off everywhere|on=false"),
    ("set_light", "turn on the lights in every room|on=true"),
    ("set_light", "all lights on|on=true"),
    ("set_thermostat", "set every room to {celsius}"),
    ("set_thermostat", "put the heating to {celsius} in all the rooms"),
    ("get_light_state", "check all the lights"),
    ("get_light_state", "which lights are on?"),
]


def _families(kind: str, items: Sequence[T], b: Builder,
              fits: Callable[[T], bool] = lambda _: True) -> list[Family[T]]:
    """The families of ``items`` on ``b``'s side of the split (the split is over the whole
    list, so a family is on one side whatever the scene), those that ``fits``."""
    return [f for f in split([Family(family_id(kind, str(it)), it) for it in items], b.heldout)
            if fits(f.item)]


def _fits(b: Builder, tools: Sequence[str]) -> bool:
    return all(t in b.by_name for t in tools)


def _sane(calls: Sequence[ToolCall]) -> bool:
    """No call twice, and nothing a robot can't do in that order (two grasps, a grasp and
    then a place_on of the same cube: place_on picks it up itself, a cube binned and then used)."""
    keys = [c.key() for c in calls]
    if len(set(keys)) < len(keys):
        return False
    binned: set[str] = set()
    for i, c in enumerate(calls):
        obj, target = c.arguments.get("object"), c.arguments.get("target")
        if obj in binned or target in binned:
            return False
        if c.name == "place_on" and target == "bin":
            binned.add(str(obj))
        if c.name == "grasp" and any(d.name in ("grasp", "place_on") for d in calls[i + 1:]):
            return False
    return True


def _strip(words: str) -> str:
    return words.rstrip(" ?.!")


def joined(b: Builder) -> Part | None:
    """Two or three requests in one (some of them quantified or lists themselves)."""
    kind = b.rng.random()
    if kind < 0.15:
        fam: Family[str] = b.rng.choice(_families("after", AFTER, b))
        a, c = b.single(imperative=True, it_ok=True), b.single(imperative=True, it_ok=False)
        parts = [a, c]
    else:
        pool = JOIN3 if kind < 0.3 else JOIN2
        fam = b.rng.choice(_families("join", pool, b))
        n = str(fam.item).count("{")
        parts = [b.single(it_ok=i == 0) if b.rng.random() < 0.85 or i == 0
                 else (quantified(b) or b.single(it_ok=False)) for i in range(n)]
    if any(p is None or not p.calls for p in parts):
        return None
    got = [p for p in parts if p is not None]
    calls = tuple(c for p in got for c in p.calls)
    if len(calls) > MAX_CALLS or not _sane(calls):
        return None
    text = str(fam.item).format(**{k: _strip(p.words) for k, p in zip("abc", got, strict=False)})
    question = got[-1].question and str(fam.item).endswith("}")
    return Part(text + ("?" if question else ""), calls,
                "+".join([fam.id, *(p.family for p in got)]), question)


def _template_part(b: Builder, kind: str, items: list[tuple[tuple[str, ...], str]]) -> Part | None:
    fams = _families(kind, items, b, lambda it: _fits(b, it[0]) and _refs_ok(b, *it))
    if not fams:
        return None
    fam = b.rng.choice(fams)
    tools, template = fam.item
    words, calls = b.fill(tools, template, it_ok=False)
    if not _sane(calls):
        return None
    return Part(words, calls, fam.id, words.endswith("?"))


def _refs_ok(b: Builder, tools: Sequence[str], template: str) -> bool:
    """A template that fixes ``$k.field`` only where call k's tool returns that field."""
    for kv in template.partition("|")[2].split(","):
        name, _, raw = kv.partition("=")
        if not raw.startswith("$"):
            continue
        arg = next((b.args[t][name] for t in tools[1:] if name in b.args[t]), None)
        earlier = [ToolCall(t, {}, id=str(i + 1)) for i, t in enumerate(tools[:-1])]
        if arg is None or raw not in reference_options(arg, earlier, b.by_name):
            return False
    return True


def listed(b: Builder) -> Part | None:
    return _template_part(b, "list", LISTS)


def related(b: Builder) -> Part | None:
    return _template_part(b, "related", RELATED)


def quantified(b: Builder) -> Part | None:
    """"every" / "all" / "both" / "all but": a call per cube seen, or per room."""
    if b.visible is not None:
        cubes = list(b.visible)
        fams = _families("every", EVERY_CUBE, b, lambda it: it[0] in b.by_name and len(cubes) >= 2
                         and (it[2] != "both" or len(cubes) == 2)
                         and (it[2] != "except" or len(cubes) >= 3))
        if not fams:
            return None
        fam = b.rng.choice(fams)
        tool, text, which = fam.item
        skip = None
        if which == "except":  # the cube left out is named: the template's one slot
            text, (named,) = b.fill([tool], text, it_ok=False)
            skip = named.arguments.get("object")
        extra = {"target": "bin"} if tool == "place_on" else {}
        calls = tuple(ToolCall(tool, {"object": c, **extra}) for c in cubes if c != skip)
        return Part(text, calls, fam.id, text.endswith("?"))
    rooms_fams = _families("every", EVERY_ROOM, b, lambda it: it[0] in b.by_name
                           and "room" in b.args[it[0]] and b.args[it[0]]["room"].kind is ArgKind.ENUM)
    if not rooms_fams:
        return None
    fam = b.rng.choice(rooms_fams)
    tool, template = fam.item
    words, (call,) = b.fill([tool], template, it_ok=False)
    calls = tuple(ToolCall(tool, {**call.arguments, "room": r}) for r in b.args[tool]["room"].enum)
    return Part(words, calls, fam.id, words.endswith("?"))


def cancelled(b: Builder) -> Part | None:
    """A request taken back (no call), or corrected (only the correction's calls)."""
    if b.rng.random() < 0.6:
        fam = b.rng.choice(_families("cancel", CANCEL, b))
        a = b.single(it_ok=False)
        if a is None:
            return None
        return Part(str(fam.item).format(a=_strip(a.words)), (), f"{fam.id}+{a.family}")
    fam = b.rng.choice(_families("correct", CORRECT, b))
    first = b.single(it_ok=False)
    if first is None:
        return None
    second = b.single(first.calls[0].name, it_ok=False)
    if second is None or second.calls == first.calls:
        return None
    words = str(fam.item).format(a=_strip(first.words), b=_strip(second.words))
    return Part(words + ("?" if second.question else ""), second.calls,
                f"{fam.id}+{first.family}+{second.family}", second.question)

