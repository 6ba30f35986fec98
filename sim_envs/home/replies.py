"""Short spoken replies from what the tools did.

:func:`reply_text` turns a turn's calls and results (``control.agent.Turn``
JSON: ``calls`` and ``results`` lists) into one or two short sentences for
the TTS: what was done for a write ("Okay, the kitchen lights are off."), the
answer for a read ("In Paris it is 12 degrees and sunny."), an apology naming
the problem for a failed call, and a fallback when no tool fitted. Plain
functions over plain dicts, so the decision process and the tests share them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sim_envs.home.intents import Intent, social_intents

__all__ = ["NOT_UNDERSTOOD", "NO_TOOL", "confirm_question", "declined_text", "reply_text",
           "social_reply"]

NO_TOOL = "Sorry, I can't help with that."
NOT_UNDERSTOOD = "Sorry, I didn't catch that."
# An utterance that asks for nothing, by what it holds (first match wins).
_SOCIAL = ((Intent.GRATITUDE, "You're welcome."), (Intent.FAREWELL, "Goodbye!"),
           (Intent.GREETING, "Hello! What can I do for you?"), (Intent.PRAISE, "Glad I could help."),
           (Intent.CANCEL, "Okay, never mind."), (Intent.STOP, "Okay."), (Intent.DENY, "Okay."),
           (Intent.AFFIRM, "Okay."))


def social_reply(text: str) -> str | None:
    """A short fitting reply to an utterance that asks for nothing ("thanks", "never mind",
    "stop"); None if it asks for something."""
    kinds = social_intents(text)
    return next((say for kind, say in _SOCIAL if kind in kinds), None)


def confirm_question(name: str, arguments: Mapping[str, Any]) -> str:
    """What to ask before an irreversible call runs ("Call Mom?")."""
    if name == "call_contact":
        return f"Call {arguments.get('contact', 'them')}?"
    if name == "send_message":
        return f"Send {arguments.get('contact', 'them')} the message: {arguments.get('text', '')}?"
    return f"Should I {name.replace('_', ' ')}?"


def declined_text(names: Sequence[str], arguments: Sequence[Mapping[str, Any]]) -> str:
    """The reply to a "no" to :func:`confirm_question`."""
    if list(names) == ["call_contact"]:
        return f"Okay, I won't call {arguments[0].get('contact', 'them')}."
    if list(names) == ["send_message"]:
        return "Okay, I won't send it."
    return "Okay, I won't."


def _room(value: Any) -> str:
    return str(value or "").replace("_", " ")


def _num(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def _join(items: Sequence[str]) -> str:
    items = [str(i) for i in items]
    if not items:
        return "nothing"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _weather(v: Mapping[str, Any]) -> str:
    hi, lo = _num(round(v["high_celsius"])), _num(round(v["low_celsius"]))
    if v.get("celsius") is not None:
        return (f"In {v['city']} it is {_num(round(v['celsius']))} degrees and {v['condition']}, "
                f"with a high of {hi}.")
    when = v.get("when", "")
    return f"{when.capitalize()} in {v['city']}: {v['condition']}, from {lo} to {hi} degrees."


def _light_state(v: Mapping[str, Any]) -> str:
    if v["on"]:
        return f"The {_room(v['room'])} lights are on at {v['brightness']} percent."
    return f"The {_room(v['room'])} lights are off."


def _set_light(v: Mapping[str, Any]) -> str:
    state = f"on at {v['brightness']} percent" if v["on"] and v["brightness"] != 100 else (
        "on" if v["on"] else "off")
    return f"Okay, the {_room(v['room'])} lights are {state}."


def _timers(v: Mapping[str, Any]) -> str:
    timers = v.get("timers", [])
    if not timers:
        return "You have no timers running."
    parts = [f"{(t.get('label') or 'a timer')} with {max(1, round(t['remaining_s'] / 60))} "
             f"minutes left" for t in timers[:3]]
    return f"You have {len(timers)} timer{'s' if len(timers) > 1 else ''}: {_join(parts)}."


def _timer(v: Mapping[str, Any]) -> str:
    label = f" for the {v['label']}" if v.get("label") else ""
    minutes = _num(v["minutes"])
    return f"Timer set for {minutes} minute{'' if minutes == '1' else 's'}{label}."


def _calendar(v: Mapping[str, Any]) -> str:
    events, when = v.get("events", []), v.get("when", "today")
    if not events:
        return f"Your calendar is free {when}."
    parts = [f"{e['title']} at {e['time']}" for e in events]
    count = "one event" if len(events) == 1 else f"{len(events)} events"
    return f"You have {count} {when}: {_join(parts)}."


def _search(v: Mapping[str, Any]) -> str:
    results = v.get("results", [])
    if not results:
        return f"I found nothing for {v.get('query', 'that')}."
    return str(results[0]["snippet"])


_SAY: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "get_weather": _weather,
    "get_time": lambda v: f"It is {v['time']} in {v['city']}.",
    "web_search": _search,
    "get_light_state": _light_state,
    "list_timers": _timers,
    "get_shopping_list": lambda v: f"Your shopping list has {_join(v.get('items', []))}.",
    "get_calendar": _calendar,
    "set_light": _set_light,
    "set_thermostat": lambda v: f"Okay, the {_room(v['room'])} is set to {_num(v['celsius'])} degrees.",
    "set_timer": _timer,
    "add_to_shopping_list": lambda v: (f"Added {v['item']} to the shopping list." if v.get("added")
                                       else f"{v['item'].capitalize()} is already on the list."),
    "send_message": lambda v: f"Message sent to {v['contact']}.",
    "call_contact": lambda v: f"Calling {v['contact']}.",
}


def _failure(name: str, error: str | None) -> str:
    detail = (error or "it failed").split(": ", 1)[-1].split(";")[0].rstrip(".")
    return f"Sorry, {name.replace('_', ' ')} did not work: {detail}."


def reply_text(turn: Mapping[str, Any]) -> str:
    """The reply to speak for a finished turn (``Turn.to_json()``)."""
    results = list(turn.get("results") or [])
    if not results:
        if turn.get("error"):
            return _failure("that", str(turn["error"]))
        return social_reply(str(turn.get("text") or "")) or NO_TOOL
    sentences = []
    for r in results:
        name = str(r.get("name", ""))
        if not r.get("ok"):
            sentences.append(_failure(name, r.get("error")))
            continue
        if isinstance(r.get("value"), Mapping) and r["value"].get("question"):
            sentences.append(str(r["value"]["question"]))  # unsure of an argument: ask back
            continue
        say = _SAY.get(name)
        try:
            sentences.append(say(r["value"]) if say else "Done.")
        except (KeyError, TypeError, AttributeError):  # an odd result: still answer
            sentences.append("Done.")
    return " ".join(sentences)
