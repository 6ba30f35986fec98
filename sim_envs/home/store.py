"""The home the voice assistant controls: a SQLite store of lights, thermostats,
timers, the shopping list, contacts, messages, calls and a weekly calendar.

Every tool in ``audio/voice_tools.json`` that touches the home is a method here;
writes return what they actually did. Each write bumps the version of the
resources it changed (``light:kitchen``, ``timers``, ...), the same names as
the tools' ``x-resources``, so speculation can tell whether a result computed
earlier is still valid (:meth:`HomeStore.version`).

Thread-safe (one connection behind a lock): tools run in worker threads.
Time comes from an injected ``now_s`` (monotonic seconds) for timers and an
injected wall clock ``now`` (an aware local datetime) for the calendar's days.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sim_envs.home.dates import Now, day_phrase, local_now, parse_date
from sim_envs.home.errors import HomeError
from sim_envs.home.names import best_name

__all__ = ["CALENDAR", "CONTACTS", "ROOMS", "HomeStore", "HomeStoreError"]

ROOMS = ("kitchen", "living_room", "bedroom", "bathroom", "office", "hallway")
DEVICES = ("thermostat", "timer")  # besides each room's lights
CONTACTS = {"Anna": "+47 400 00 001", "Ben": "+47 400 00 002", "Carla": "+47 400 00 003",
            "David": "+47 400 00 004", "Mom": "+47 400 00 005", "Dad": "+47 400 00 006"}
# (time, title, weekdays it recurs on: 0 = Monday .. 6 = Sunday)
CALENDAR = (("09:00", "Stand-up meeting", "01234"), ("12:30", "Lunch with Anna", "13"),
            ("15:00", "Dentist", "3"), ("18:30", "Football practice", "03"),
            ("10:00", "Farmers market", "5"), ("11:00", "Brunch with Mom and Dad", "6"))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lights (room TEXT PRIMARY KEY, is_on INTEGER NOT NULL,
                                   brightness INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS thermostats (room TEXT PRIMARY KEY, celsius REAL NOT NULL);
CREATE TABLE IF NOT EXISTS timers (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT,
                                   minutes REAL NOT NULL, ends_s REAL NOT NULL);
CREATE TABLE IF NOT EXISTS shopping (item TEXT PRIMARY KEY COLLATE NOCASE,
                                     seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (name TEXT PRIMARY KEY COLLATE NOCASE, phone TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, contact TEXT NOT NULL,
                                     text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (id INTEGER PRIMARY KEY AUTOINCREMENT, contact TEXT NOT NULL,
                                  phone TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calendar (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,
                                     title TEXT NOT NULL, weekdays TEXT NOT NULL DEFAULT '0123456');
CREATE TABLE IF NOT EXISTS versions (resource TEXT PRIMARY KEY, version INTEGER NOT NULL);
"""


class HomeStoreError(HomeError, ValueError):
    """A home request names something the home does not have."""


def _room(room: str) -> str:
    r = room.strip().lower().replace(" ", "_")
    if r not in ROOMS:
        raise HomeStoreError(f"unknown room {room!r}; rooms: {', '.join(ROOMS)}")
    return r


class HomeStore:
    """A home in SQLite (``path`` or in memory), seeded with a default household."""

    def __init__(self, path: str | Path = ":memory:", *, seed: bool = True,
                 now_s: Callable[[], float] = time.monotonic, now: Now = local_now) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._now_s, self._now = now_s, now
        with self._lock:
            self._db.executescript(_SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(calendar)")}
            if "weekdays" not in columns:  # a home saved before the calendar had days
                self._db.execute("ALTER TABLE calendar ADD COLUMN weekdays TEXT NOT NULL "
                                 "DEFAULT '0123456'")
            if seed and not self._db.execute("SELECT COUNT(*) FROM lights").fetchone()[0]:
                self._seed()

    def _seed(self) -> None:
        db = self._db
        db.executemany("INSERT INTO lights VALUES (?, ?, ?)",
                       [(r, int(r in ("kitchen", "living_room")), 80) for r in ROOMS])
        db.executemany("INSERT INTO thermostats VALUES (?, ?)", [(r, 21.0) for r in ROOMS])
        db.executemany("INSERT INTO shopping VALUES (?, ?)", [("milk", 1), ("eggs", 2)])
        db.executemany("INSERT INTO contacts VALUES (?, ?)", list(CONTACTS.items()))
        db.executemany("INSERT INTO calendar (time, title, weekdays) VALUES (?, ?, ?)", CALENDAR)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- versions -------------------------------------------------------------------------
    def version(self, resource: str) -> int:
        """How many times ``resource`` (e.g. "light:kitchen", "timers") has been written."""
        with self._lock:
            row = self._db.execute("SELECT version FROM versions WHERE resource = ?",
                                   (resource,)).fetchone()
        return int(row[0]) if row else 0

    def _bump(self, resources: Iterable[str]) -> None:
        for r in resources:
            self._db.execute("INSERT INTO versions VALUES (?, 1) ON CONFLICT(resource) "
                             "DO UPDATE SET version = version + 1", (r,))

    # --- lights and thermostats -----------------------------------------------------------
    def get_light_state(self, room: str) -> dict[str, Any]:
        r = _room(room)
        with self._lock:
            on, brightness = self._db.execute(
                "SELECT is_on, brightness FROM lights WHERE room = ?", (r,)).fetchone()
        return {"room": r, "on": bool(on), "brightness": int(brightness)}

    def set_light(self, room: str, on: bool, brightness: int | None = None) -> dict[str, Any]:
        r = _room(room)
        if brightness is not None and not 0 <= brightness <= 100:
            raise HomeStoreError(f"expected brightness 0..100 percent, got {brightness}")
        with self._lock:
            before = self.get_light_state(r)
            level = before["brightness"] if brightness is None else int(brightness)
            self._db.execute("UPDATE lights SET is_on = ?, brightness = ? WHERE room = ?",
                             (int(bool(on)), level, r))
            self._bump([f"light:{r}"])
        return {"room": r, "on": bool(on), "brightness": level,
                "changed": (before["on"], before["brightness"]) != (bool(on), level)}

    def get_thermostat(self, room: str) -> dict[str, Any]:
        r = _room(room)
        with self._lock:
            (c,) = self._db.execute("SELECT celsius FROM thermostats WHERE room = ?", (r,)).fetchone()
        return {"room": r, "celsius": float(c)}

    def set_thermostat(self, room: str, celsius: float) -> dict[str, Any]:
        r = _room(room)
        if not 5 <= celsius <= 30:
            raise HomeStoreError(f"expected a target of 5..30 degrees Celsius, got {celsius}")
        with self._lock:
            before = self.get_thermostat(r)["celsius"]
            self._db.execute("UPDATE thermostats SET celsius = ? WHERE room = ?", (float(celsius), r))
            self._bump([f"thermostat:{r}"])
        return {"room": r, "celsius": float(celsius), "previous_celsius": before}

    # --- timers ---------------------------------------------------------------------------
    def set_timer(self, minutes: float, label: str | None = None) -> dict[str, Any]:
        if not 0.1 <= minutes <= 600:
            raise HomeStoreError(f"expected a timer of 0.1..600 minutes, got {minutes}")
        with self._lock:
            cur = self._db.execute("INSERT INTO timers (label, minutes, ends_s) VALUES (?, ?, ?)",
                                   (label, float(minutes), self._now_s() + 60.0 * minutes))
            self._bump(["timers"])
        return {"id": int(cur.lastrowid or 0), "label": label, "minutes": float(minutes)}

    def list_timers(self) -> dict[str, Any]:
        now = self._now_s()
        with self._lock:
            rows = self._db.execute("SELECT id, label, minutes, ends_s FROM timers "
                                    "WHERE ends_s > ? ORDER BY ends_s", (now,)).fetchall()
        return {"timers": [{"id": i, "label": label, "minutes": m, "remaining_s": round(end - now, 1)}
                           for i, label, m, end in rows]}

    # --- shopping list --------------------------------------------------------------------
    def add_to_shopping_list(self, item: str) -> dict[str, Any]:
        name = " ".join(item.split()).lower()
        if not name:
            raise HomeStoreError("expected an item to add, got an empty name")
        with self._lock:
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM shopping").fetchone()[0]
            cur = self._db.execute("INSERT OR IGNORE INTO shopping VALUES (?, ?)", (name, seq))
            if cur.rowcount:
                self._bump(["shopping_list"])
        return {"item": name, "added": bool(cur.rowcount), "items": self.get_shopping_list()["items"]}

    def get_shopping_list(self) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT item FROM shopping ORDER BY seq").fetchall()
        return {"items": [r[0] for r in rows]}

    # --- contacts, messages, calendar -----------------------------------------------------
    def contacts(self) -> list[str]:
        with self._lock:
            return [n for (n,) in self._db.execute("SELECT name FROM contacts ORDER BY name")]

    def _contact(self, contact: str) -> tuple[str, str]:
        """(name, phone) of the contact ``contact`` names, also as heard ("Mum" for Mom)."""
        names = self.contacts()
        name = best_name(contact, names)
        if name is None:
            raise HomeStoreError(f"unknown contact {contact!r}; contacts: {', '.join(names)}")
        with self._lock:
            (phone,) = self._db.execute("SELECT phone FROM contacts WHERE name = ?",
                                        (name,)).fetchone()
        return name, str(phone)

    def send_message(self, contact: str, text: str) -> dict[str, Any]:
        if not text.strip():
            raise HomeStoreError("expected a message text, got an empty one")
        name, _ = self._contact(contact)
        with self._lock:
            cur = self._db.execute("INSERT INTO messages (contact, text) VALUES (?, ?)",
                                   (name, text.strip()))
            self._bump(["messages"])
        return {"id": int(cur.lastrowid or 0), "contact": name, "text": text.strip(), "sent": True}

    def call_contact(self, contact: str) -> dict[str, Any]:
        """Start a call (the simulated phone dials at once and logs it)."""
        name, phone = self._contact(contact)
        with self._lock:
            cur = self._db.execute("INSERT INTO calls (contact, phone) VALUES (?, ?)", (name, phone))
            self._bump(["calls"])
        return {"id": int(cur.lastrowid or 0), "contact": name, "phone": phone, "calling": True}

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT id, contact, phone FROM calls ORDER BY id").fetchall()
        return [{"id": i, "contact": c, "phone": p} for i, c, p in rows]

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT id, contact, text FROM messages ORDER BY id").fetchall()
        return [{"id": i, "contact": c, "text": t} for i, c, t in rows]

    def get_calendar(self, date: str | None = None) -> dict[str, Any]:
        """The events of ``date`` (any form :func:`~sim_envs.home.dates.parse_date` reads;
        None: today)."""
        now = self._now()
        day = parse_date(date, now)
        with self._lock:
            rows = self._db.execute("SELECT time, title FROM calendar WHERE instr(weekdays, ?) "
                                    "ORDER BY time", (str(day.weekday()),)).fetchall()
        return {"date": day.isoformat(), "when": day_phrase(day, now.date()),
                "events": [{"time": t, "title": title} for t, title in rows]}

    def vocabulary(self) -> dict[str, list[str]]:
        """The words requests to this home use now: rooms, devices, contacts, shopping items
        (for biasing speech recognition, :mod:`audio.vocabulary`)."""
        return {"rooms": [r.replace("_", " ") for r in ROOMS], "devices": list(DEVICES),
                "contacts": self.contacts(), "items": self.get_shopping_list()["items"]}

    def snapshot(self) -> dict[str, Any]:
        """Everything in the home, for checks that a request changed what it should."""
        return {"lights": {r: self.get_light_state(r) for r in ROOMS},
                "thermostats": {r: self.get_thermostat(r)["celsius"] for r in ROOMS},
                "timers": self.list_timers()["timers"],
                "shopping_list": self.get_shopping_list()["items"],
                "messages": self.messages(), "calls": self.calls(),
                "calendar": self.get_calendar()["events"]}
