"""Traces of executed tool calls: episodes in memory, JSONL files and a SQLite store.

An episode is what one task did, one line of JSONL::

    {"id": "ep1", "observation": {...},
     "steps": [{"name": "get_weather", "arguments": {"city": "Oslo"},
                "result": {...}, "tool_ms": 420, "think_ms": 300}, ...]}

``think_ms`` is how long the agent thought before making the call, ``tool_ms``
how long the tool took. A step may carry its own ``observation`` (the world
state or partial transcript when the call was made); otherwise the last one
holds. :class:`TraceStore` keeps every executed call (tool, arguments,
result, start and end, the observation before it, served from speculation or
not) in SQLite in WAL mode, and imports and exports the JSONL form.

Files are read with ``msgspec`` against the shapes below (:class:`StepRecord`,
:class:`EpisodeRecord`): anything else is a :class:`TraceError` naming the file,
the line and the field, never a traceback from inside the reader.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec

from control.tools import canonical_json
from realtime.errors import RtAgentError

__all__ = ["Episode", "Step", "TraceError", "TraceStore", "load_jsonl", "save_jsonl"]


class TraceError(RtAgentError):
    """A trace file or store is missing or malformed."""


Millis = Annotated[float, msgspec.Meta(ge=0.0, le=1e12)]  # finite, >= 0


class StepRecord(msgspec.Struct):
    """One step as a trace file writes it."""

    name: str
    arguments: dict[str, Any] | None = None
    result: Any = None
    tool_ms: Millis = 0.0
    think_ms: Millis = 0.0
    ok: bool = True
    observation: dict[str, Any] | None = None
    cpu_ms: Millis | None = None
    speculative: bool = False


class EpisodeRecord(msgspec.Struct):
    """One episode (one JSONL line) as a trace file writes it."""

    steps: list[StepRecord]
    id: str | int | None = None
    observation: dict[str, Any] | None = None


def _step(r: StepRecord) -> Step:
    return Step(name=r.name, arguments=r.arguments or {}, result=r.result, tool_ms=r.tool_ms,
                think_ms=r.think_ms, ok=r.ok, observation=r.observation, cpu_ms=r.cpu_ms,
                speculative=r.speculative)


def _convert(d: Any, kind: type[msgspec.Struct], where: str, what: str) -> Any:
    try:
        return msgspec.convert(d, kind)
    except msgspec.ValidationError as exc:
        raise TraceError(f"{where}: {exc} (expected {what})") from None
    except RecursionError:
        raise TraceError(f"{where}: nested too deeply (expected {what})") from None


_STEP = ("an object with a string 'name', an 'arguments' object and numbers "
         "tool_ms/think_ms >= 0")
_EPISODE = "an object with a 'steps' list of steps and an 'observation' object"


@dataclass(frozen=True)
class Step:
    """One executed call. ``ok`` is false when the tool failed (``result`` is then the error)."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    result: Any = None
    tool_ms: float = 0.0
    think_ms: float = 0.0
    ok: bool = True
    observation: Mapping[str, Any] | None = None
    cpu_ms: float | None = None
    speculative: bool = False

    def key(self) -> str:
        return f"{self.name}:{canonical_json(self.arguments)}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "arguments": dict(self.arguments),
                               "result": self.result, "tool_ms": self.tool_ms,
                               "think_ms": self.think_ms}
        if not self.ok:
            out["ok"] = False
        if self.observation is not None:
            out["observation"] = dict(self.observation)
        if self.cpu_ms is not None:
            out["cpu_ms"] = self.cpu_ms
        if self.speculative:
            out["speculative"] = True
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any], where: str = "step") -> Step:
        return _step(_convert(d, StepRecord, where, _STEP))


@dataclass(frozen=True)
class Episode:
    """One task: the calls it made, in order, and the observation it started from."""

    id: str
    steps: tuple[Step, ...]
    observation: Mapping[str, Any] = field(default_factory=dict)

    def observation_at(self, i: int) -> Mapping[str, Any]:
        """The observation in force when step ``i`` was decided (the last one given)."""
        obs = self.observation
        for s in self.steps[: i + 1]:
            if s.observation is not None:
                obs = s.observation
        return obs

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "steps": [s.to_json() for s in self.steps]}
        if self.observation:
            out["observation"] = dict(self.observation)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any], where: str = "episode") -> Episode:
        return _episode(_convert(d, EpisodeRecord, where, _EPISODE), where)


def _episode(r: EpisodeRecord, where: str) -> Episode:
    return Episode(id=where if r.id is None else str(r.id), steps=tuple(_step(s) for s in r.steps),
                   observation=r.observation or {})


def load_jsonl(path: str | Path) -> list[Episode]:
    """Episodes from a JSONL file, one per line (blank lines skipped)."""
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"trace file not found: {p}; generate one with "
                         "`rtagent spec replay --workload robot` or record episodes first")
    try:
        lines = p.read_bytes().splitlines()
    except OSError as exc:
        raise TraceError(f"cannot read trace file {p}: {exc}") from exc
    decoder = msgspec.json.Decoder(EpisodeRecord)
    episodes = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{p}:{n}"
        try:
            record = decoder.decode(line)
        except msgspec.ValidationError as exc:
            raise TraceError(f"{where}: {exc} (expected {_EPISODE})") from None
        except msgspec.DecodeError as exc:
            raise TraceError(f"{where}: not a JSON episode ({exc}); each line is one "
                             "episode object") from None
        except RecursionError:
            raise TraceError(f"{where}: nested too deeply (expected {_EPISODE})") from None
        episodes.append(_episode(record, where))
    return episodes


def save_jsonl(episodes: Iterable[Episode], path: str | Path) -> int:
    """Write episodes as JSONL; returns how many were written. Written to a temporary
    file beside ``path``, then renamed over it: a crash or an error while writing
    leaves the old file as it was (and ``episodes`` may be read from ``path`` itself)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    n = 0
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for ep in episodes:
                f.write(json.dumps(ep.to_json(), separators=(",", ":")) + "\n")
                n += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


_SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    id TEXT PRIMARY KEY, source TEXT NOT NULL DEFAULT '', observation TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS calls (
    episode TEXT NOT NULL REFERENCES episodes(id), idx INTEGER NOT NULL,
    name TEXT NOT NULL, arguments TEXT NOT NULL, result TEXT, ok INTEGER NOT NULL,
    started_ns INTEGER NOT NULL DEFAULT 0, ended_ns INTEGER NOT NULL DEFAULT 0,
    tool_ms REAL NOT NULL, think_ms REAL NOT NULL, cpu_ms REAL,
    observation TEXT, speculative INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (episode, idx)
);
"""


class TraceStore:
    """Executed calls in SQLite (WAL mode, so a reader never blocks the recorder)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(str(self.path))
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise TraceError(f"cannot open trace store {self.path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, episode: str, step: Step, *, started_ns: int = 0, ended_ns: int = 0,
               source: str = "") -> int:
        """Append ``step`` to ``episode`` (created if new); returns its index."""
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO episodes (id, source) VALUES (?, ?)",
                             (episode, source))
            row = self._db.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM calls WHERE episode=?",
                                   (episode,)).fetchone()
            idx = int(row[0])
            self._db.execute(
                "INSERT INTO calls VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (episode, idx, step.name, json.dumps(dict(step.arguments)),
                 json.dumps(step.result), int(step.ok), started_ns, ended_ns, step.tool_ms,
                 step.think_ms, step.cpu_ms,
                 None if step.observation is None else json.dumps(dict(step.observation)),
                 int(step.speculative)))
        return idx

    def add_episode(self, episode: Episode, *, source: str = "") -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO episodes VALUES (?,?,?)",
                             (episode.id, source, json.dumps(dict(episode.observation))))
            self._db.execute("DELETE FROM calls WHERE episode=?", (episode.id,))
        for s in episode.steps:
            self.record(episode.id, s, source=source)

    def import_jsonl(self, path: str | Path, *, source: str = "") -> int:
        episodes = load_jsonl(path)
        for ep in episodes:
            self.add_episode(ep, source=source or str(path))
        return len(episodes)

    def export_jsonl(self, path: str | Path) -> int:
        return save_jsonl(self.episodes(), path)

    def episode_ids(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT id FROM episodes ORDER BY rowid")]

    def episodes(self, ids: Sequence[str] | None = None) -> Iterator[Episode]:
        for eid in ids if ids is not None else self.episode_ids():
            row = self._db.execute("SELECT observation FROM episodes WHERE id=?", (eid,)).fetchone()
            if row is None:
                raise TraceError(f"no episode {eid!r} in {self.path}")
            steps = []
            for (name, args, result, ok, tool_ms, think_ms, cpu_ms, obs, spec) in self._db.execute(
                    "SELECT name, arguments, result, ok, tool_ms, think_ms, cpu_ms, observation, "
                    "speculative FROM calls WHERE episode=? ORDER BY idx", (eid,)):
                steps.append(Step(name=name, arguments=json.loads(args), result=json.loads(result),
                                  tool_ms=tool_ms, think_ms=think_ms, ok=bool(ok),
                                  observation=None if obs is None else json.loads(obs),
                                  cpu_ms=cpu_ms, speculative=bool(spec)))
            yield Episode(id=eid, steps=tuple(steps), observation=json.loads(row[0]))

    def count_calls(self, *, speculative: bool | None = None) -> int:
        if speculative is None:
            return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
        return int(self._db.execute("SELECT COUNT(*) FROM calls WHERE speculative=?",
                                    (int(speculative),)).fetchone()[0])
