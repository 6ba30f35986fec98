"""Did the home keep what it acknowledged? Every write a turn reported as done must be in
the home's file afterwards, however often its process was killed meanwhile (the voice
bench's chaos run checks this).

A timer, a message, a call has an id the home answered with: it must still be there; an
item added must be on the list. A light or a thermostat is checked by its version (each
write bumps it, in the same transaction): fewer writes than were acknowledged means one
was lost; as many means the last acknowledged one must be what the home holds now (more
means later writes, acknowledged to nobody, e.g. by a turn whose process died).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sim_envs.home.store import HomeStore

__all__ = ["WRITES", "lost_actions"]

WRITES = ("set_light", "set_thermostat", "set_timer", "add_to_shopping_list", "send_message",
          "call_contact")


def lost_actions(store: HomeStore, done: Iterable[Mapping[str, Any]]) -> list[str]:
    """What of ``done`` (the results of acknowledged writes, ``{"name", "value"}``, in the
    order they were done) the home no longer holds, one line each."""
    lost: list[str] = []
    settings: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    timers, messages, calls = (set(store.timer_ids()), {m["id"] for m in store.messages()},
                               {c["id"] for c in store.calls()})
    items = set(store.get_shopping_list()["items"])
    for r in done:
        name, value = r["name"], r.get("value") or {}
        if name == "set_light":
            settings[f"light:{value['room']}"].append(value)
        elif name == "set_thermostat":
            settings[f"thermostat:{value['room']}"].append(value)
        elif name == "set_timer" and value["id"] not in timers:
            lost.append(f"timer {value['id']} ({value['minutes']} min)")
        elif name == "send_message" and value["id"] not in messages:
            lost.append(f"message {value['id']} to {value['contact']}")
        elif name == "call_contact" and value["id"] not in calls:
            lost.append(f"call {value['id']} to {value['contact']}")
        elif name == "add_to_shopping_list" and value["item"] not in items:
            lost.append(f"shopping item {value['item']!r}")
    for resource, writes in settings.items():
        version, last = store.version(resource), writes[-1]
        if resource.startswith("light:"):
            now = store.get_light_state(last["room"])
            kept = (now["on"], now["brightness"]) == (last["on"], last["brightness"])
        else:
            kept = store.get_thermostat(last["room"])["celsius"] == last["celsius"]
        if version < len(writes) or (version == len(writes) and not kept):
            lost.append(f"{resource}: {len(writes)} writes acknowledged, {version} kept, "
                        f"the last {'kept' if kept else 'lost'}")
    return lost
