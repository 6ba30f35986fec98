"""Chrome trace files written as events are made, and read back even when cut short.

A :class:`ChromeStream` writes the Chrome "JSON array" form, one event a line,
as events come (``[{...}`` first, then ``,{...}`` lines, ``]`` on close; what
is written reaches the OS at each :meth:`ChromeStream.flush`): a process killed
with SIGKILL leaves a file with every event written before its last flush,
short of the closing ``]``, which :func:`load_chrome` reads as it is. Process and
track names go in ``M`` metadata events before their first event; times are µs
from the stream's opening (``otherData`` of the final file says the same in
``t0_monotonic_ns``; the stream's first line carries it).

:func:`load_chrome` reads either form: the final object (``{"traceEvents": [...],
"otherData": {...}}``), a complete array, or an array cut short (its last,
partial line is dropped).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any

from realtime.messages import TraceEvent

__all__ = ["STREAM_HEADER", "ChromeStream", "chrome_item", "load_chrome", "parse_chrome"]

#: Name of the metadata event that opens a streamed file (``args``: t0 and metadata).
STREAM_HEADER = "rtagent_stream"


def chrome_item(e: TraceEvent, pid: int, tid: int, t0_ns: int) -> dict[str, Any]:
    """One Chrome trace event (µs from ``t0_ns``) for ``e`` on row ``pid``/``tid``."""
    item: dict[str, Any] = {"name": e.name, "ph": e.ph, "ts": (e.ts_ns - t0_ns) / 1e3,
                            "pid": pid, "tid": tid, "args": dict(e.args)}
    if e.cat:
        item["cat"] = e.cat
    if e.ph == "X":
        item["dur"] = e.dur_ns / 1e3
    elif e.ph == "i":
        item["s"] = "t"
    return item


class ChromeStream:
    """Appends trace events to ``path`` as they come (not thread-safe: one writer)."""

    def __init__(self, path: str | os.PathLike[str], *, t0_ns: int | None = None,
                 **metadata: Any) -> None:
        self.path = Path(path)
        self.t0_ns = time.monotonic_ns() if t0_ns is None else t0_ns
        self.written = 0
        self._pids: dict[str, int] = {}
        self._tids: dict[tuple[str, str], int] = {}
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        self._dirty = False
        self._line({"ph": "M", "name": STREAM_HEADER, "pid": 0, "tid": 0,
                    "args": {"t0_monotonic_ns": self.t0_ns, **metadata}}, opening=True)
        self.flush()

    def _line(self, item: dict[str, Any], *, opening: bool = False) -> None:
        assert self._file is not None
        # the separator leads: the file always ends with a whole event or a partial one
        self._file.write(("[" if opening else "\n,") + json.dumps(item))
        self._dirty = True

    def add(self, e: TraceEvent) -> None:
        if self._file is None:
            return
        proc = e.source or "process"
        pid = self._pids.get(proc)
        if pid is None:
            pid = self._pids[proc] = len(self._pids) + 1
            self._line({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                        "args": {"name": proc}})
        key = (proc, e.track or "main")
        tid = self._tids.get(key)
        if tid is None:
            tid = self._tids[key] = sum(k[0] == proc for k in self._tids) + 1
            self._line({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                        "args": {"name": key[1]}})
        self._line(chrome_item(e, pid, tid, self.t0_ns))
        self.written += 1

    def flush(self) -> None:
        """Hand what is written to the OS (it then survives the process being killed)."""
        if self._file is not None and self._dirty:
            self._file.flush()
            self._dirty = False

    def close(self) -> None:
        """End the array (a complete JSON file) and close."""
        if self._file is not None:
            self._file.write("\n]\n")
            self._file.close()
            self._file = None


def load_chrome(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
    """``(events, otherData, complete)`` of a Chrome trace file in either form;
    ``complete`` is False for a streamed file cut short (what was whole is kept).
    Raises ``ValueError`` if the file is not a Chrome trace at all."""
    return parse_chrome(Path(path).read_text(encoding="utf-8"))


def parse_chrome(text: str) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
    """:func:`load_chrome` of a file's text."""
    try:
        data = json.loads(text)
    except ValueError:
        if not text.lstrip().startswith("["):
            raise
        return _load_cut_short(text)
    if isinstance(data, dict):
        events, other = data.get("traceEvents"), data.get("otherData", {})
    else:
        events, other = data, {}
    if not isinstance(events, list) or not isinstance(other, dict):
        raise ValueError("expected a Chrome trace (a traceEvents list)")
    events = [e for e in events if isinstance(e, dict) and e]
    return events, {**_header(events), **other}, True


def _load_cut_short(text: str) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
    events = []
    for line in text.lstrip().splitlines():
        line = line.strip().removeprefix("[").removeprefix(",").removesuffix("]")
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            break  # the line being written when the writer died
        if isinstance(item, dict) and item:
            events.append(item)
    return events, _header(events), False


def _header(events: list[dict[str, Any]]) -> dict[str, Any]:
    for e in events:
        if e.get("ph") == "M" and e.get("name") == STREAM_HEADER:
            return dict(e.get("args", {}))
    return {}
