"""The live demos' trace store: every call a demo made, on disk, append-only.

Each decision process appends one JSON line per committed tool call (its
episode, index, tool, arguments, result, whether it was served from
speculation, timings, and the observation it was decided on) to a JSONL file in
the user's cache dir, ``<cache>/speculation/<demo>/`` (``$RTAGENT_SPEC_DIR/<demo>``
where set: tests and benchmarks keep their own). Files rotate by size and the
oldest go past a bound, so the store never grows without limit. Each line
carries the schema version; a reader skips lines it cannot read (a torn last
line after a crash, another version) and says how many.

Beside the traces lives the latest mined pattern library (``patterns.json``):
the demos load it at start and save it after every turn, and
``rtagent spec mine --recorded`` mines it again from the traces.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from control.tools import canonical_json
from realtime.errors import ConfigError
from speculation.patterns import PatternLibrary
from speculation.traces import Episode, Step, TraceError

__all__ = ["SCHEMA", "JsonlTraceStore", "TraceRead", "library_path", "load_library",
           "mine_recorded", "read_traces", "save_library", "spec_dir"]

SCHEMA = "rtagent-trace/1"
ENV_DIR = "RTAGENT_SPEC_DIR"
LIBRARY_FILE = "patterns.json"
_PREFIX = "traces-"
MAX_RESULT_CHARS = 4000  # a bigger result (a dense plan) keeps only its small fields
_SMALL_FIELD_CHARS = 200


def spec_dir(demo: str) -> Path:
    """Where ``demo``'s traces and library live: ``$RTAGENT_SPEC_DIR/<demo>``, else
    ``<cache>/speculation/<demo>`` (the cache of :func:`models.artifacts.cache_dir`)."""
    if not demo or "/" in demo or demo.startswith("."):
        raise ConfigError(f"demo: expected a plain name like 'robot', got {demo!r}")
    root = os.environ.get(ENV_DIR)
    if root:
        return Path(root) / demo
    from models.artifacts import cache_dir

    return cache_dir() / "speculation" / demo


def compact_result(result: Any) -> Any:
    """``result`` as recorded: whole when small, else its small fields (and the names of
    those left out), so a dense plan does not fill the store."""
    text = canonical_json(result)
    if len(text) <= MAX_RESULT_CHARS:
        return result
    if not isinstance(result, Mapping):
        return {"_omitted": f"a result of {len(text)} characters"}
    small = {k: v for k, v in result.items() if len(canonical_json(v)) <= _SMALL_FIELD_CHARS}
    return {**small, "_omitted": sorted(str(k) for k in result if k not in small)}


class JsonlTraceStore:
    """Appends a run's calls to ``directory`` (see the module doc). Thread-safe."""

    def __init__(self, directory: Path, run_id: str, *, max_file_bytes: int = 4 << 20,
                 max_files: int = 16) -> None:
        if max_file_bytes < 1024 or max_files < 1:
            raise ConfigError(f"expected max_file_bytes >= 1024 and max_files >= 1, got "
                              f"{max_file_bytes} and {max_files}")
        self.directory = Path(directory)
        self.run_id = run_id
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.recorded = 0
        self._lock = threading.Lock()
        self._idx: dict[str, int] = {}
        self._part = 0
        self._file: IO[str] | None = None
        self._stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TraceError(f"cannot create the trace store {self.directory}: {exc}; set "
                             f"{ENV_DIR} to a writable directory") from exc

    @property
    def path(self) -> Path:
        """The file being appended to now."""
        return self.directory / f"{_PREFIX}{self._stamp}-{self._part:03d}.jsonl"

    def record(self, episode: str, step: Step, *, started_ns: int = 0, ended_ns: int = 0) -> int:
        """Append ``step`` to ``episode``; returns its index in the episode."""
        with self._lock:
            idx = self._idx.get(episode, 0)
            self._idx[episode] = idx + 1
            line = {"schema": SCHEMA, "run": self.run_id, "episode": episode, "idx": idx,
                    "t": round(time.time(), 3), "started_ns": started_ns, "ended_ns": ended_ns,
                    **step.to_json()}
            line["result"] = compact_result(step.result)
            f = self._open()
            f.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
            f.flush()
            self.recorded += 1
            if f.tell() >= self.max_file_bytes:
                self._rotate()
            return idx

    def _open(self) -> IO[str]:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
            self._prune()
        return self._file

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._part += 1

    def _prune(self) -> None:
        files = trace_files(self.directory)
        for old in files[: max(0, len(files) - self.max_files)]:
            if old != self.path:
                old.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def trace_files(directory: Path) -> list[Path]:
    """The store's files, oldest first (their names start with the run's start time)."""
    return sorted(Path(directory).glob(f"{_PREFIX}*.jsonl"))


@dataclass
class TraceRead:
    """What :func:`read_traces` found."""

    episodes: list[Episode] = field(default_factory=list)
    calls: int = 0
    files: int = 0
    skipped_lines: int = 0  # unreadable, torn or of another schema version


def read_traces(directory: Path, *, max_calls: int = 20_000) -> TraceRead:
    """The store's episodes in the order they were recorded, from its newest
    ``max_calls`` calls (an episode cut by that bound keeps its later steps)."""
    out = TraceRead()
    chunks: list[list[dict[str, Any]]] = []
    for path in reversed(trace_files(directory)):
        if out.calls >= max_calls:
            break
        lines: list[dict[str, Any]] = []
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # pruned by another process meanwhile
        out.files += 1
        for raw in text.splitlines():
            try:
                d = json.loads(raw)
            except json.JSONDecodeError:
                out.skipped_lines += 1
                continue
            if not isinstance(d, dict) or d.get("schema") != SCHEMA:
                out.skipped_lines += 1
                continue
            lines.append(d)
        keep = lines[-(max_calls - out.calls):]
        out.calls += len(keep)
        chunks.append(keep)
    steps: dict[str, list[tuple[int, Step]]] = {}
    for chunk in reversed(chunks):
        for d in chunk:
            try:
                step = Step.from_json(d, "recorded call")
                key = f"{d.get('run', '')}/{d.get('episode', '')}"
                steps.setdefault(key, []).append((int(d.get("idx", 0)), step))
            except (TraceError, TypeError, ValueError):
                out.skipped_lines += 1
    for key, got in steps.items():
        out.episodes.append(Episode(key, tuple(s for _, s in sorted(got, key=lambda t: t[0]))))
    out.calls = sum(len(e.steps) for e in out.episodes)
    return out


def library_path(directory: Path) -> Path:
    return Path(directory) / LIBRARY_FILE


def save_library(library: PatternLibrary, directory: Path) -> Path:
    """Write ``library`` as the store's latest (atomically: a reader never sees half)."""
    target = library_path(directory)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        library.save(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def load_library(directory: Path) -> PatternLibrary | None:
    """The store's latest mined library, or None when there is none (or it cannot be read:
    then it is mined again from the traces)."""
    path = library_path(directory)
    if not path.is_file():
        return None
    try:
        return PatternLibrary.load(path)
    except (TraceError, KeyError, TypeError, ValueError):
        return None


def mine_recorded(directory: Path, *, min_support: int = 1,
                  max_calls: int = 20_000) -> tuple[PatternLibrary, TraceRead]:
    """A library mined from the store's recorded calls (the newest ``max_calls``)."""
    read = read_traces(directory, max_calls=max_calls)
    library = PatternLibrary(min_support=min_support)
    library.update(read.episodes)
    return library, read
