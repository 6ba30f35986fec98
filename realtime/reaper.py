"""The supervisor's watcher: when the supervisor dies, even by SIGKILL, its children go too.

A node asks the kernel for SIGTERM when its supervisor dies (``PR_SET_PDEATHSIG``,
see :mod:`realtime.node`), but SIGTERM only asks: a node hung in its loop (or
one that never checks :attr:`Node.stopping`) would outlive the supervisor, and
nobody would remove the run directory. So the supervisor starts this watcher,
a small separate process (a thread in each node could not run while that node
holds the interpreter lock in a hung C call):

- :class:`Reaper` (the supervisor's side) starts it and tells it, over a pipe to
  its stdin, the process group of each child it starts (``+PGID``) and reaps
  (``-PGID``, so a reused id is never signalled);
- the watcher (``python -I reaper.py RUN_DIR GRACE_MS``, standard library only)
  reads the pipe. End of file means the supervisor is gone: the kernel closes
  the pipe however a process dies. It then SIGTERMs every group it knows,
  waits up to ``GRACE_MS`` for them to go, SIGKILLs what is left and removes
  the run directory. On an orderly stop the supervisor has done all that
  itself and writes ``done`` first: the watcher just exits.

The watcher runs in its own session (Ctrl-C in the terminal does not reach it)
and ignores SIGINT and SIGHUP. If it is killed too (``kill -9`` of both), the
nodes still get PDEATHSIG's SIGTERM, and the next run directory made on the
host removes this one (:class:`realtime.endpoints.RunDirectory`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["Reaper"]


class Reaper:
    """Starts the watcher process for one supervisor and keeps it informed."""

    def __init__(self, run_dir: str | os.PathLike[str], *, grace_ms: float = 500.0) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), str(run_dir), str(grace_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True,
            close_fds=True,
        )

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _say(self, line: str) -> None:
        stdin = self._proc.stdin
        if stdin is None or stdin.closed:
            return
        try:
            stdin.write(line.encode() + b"\n")
            stdin.flush()
        except BrokenPipeError:  # the watcher is gone: nothing more to tell it
            with contextlib.suppress(OSError):
                stdin.close()

    def watch(self, pgid: int) -> None:
        """A child started in process group ``pgid`` (its own pid)."""
        self._say(f"+{pgid}")

    def forget(self, pgid: int) -> None:
        """That child was reaped: never signal its group id again."""
        self._say(f"-{pgid}")

    def close(self) -> None:
        """The supervisor stopped in order: the watcher exits without doing anything."""
        self._say("done")
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


# -- the watcher process ----------------------------------------------------------------


def _signal_groups(groups: set[int], sig: int) -> set[int]:
    """Send ``sig`` to each group; the groups that still exist."""
    alive = set()
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
            alive.add(pgid)
        except ProcessLookupError:
            pass
        except PermissionError:  # the id went to someone else's process: not ours
            pass
    return alive


def _watch(run_dir: str, grace_ms: float) -> int:
    groups: set[int] = set()
    for raw in sys.stdin.buffer:
        line = raw.strip().decode(errors="replace")
        if line == "done":
            return 0
        if line[:1] in "+-" and line[1:].isdigit():
            (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
    # end of file without "done": the supervisor died
    alive = _signal_groups(groups, signal.SIGTERM)
    deadline = time.monotonic() + grace_ms / 1e3
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = _signal_groups(alive, 0)
    _signal_groups(alive, signal.SIGKILL)
    shutil.rmtree(Path(run_dir), ignore_errors=True)
    return 0


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if len(argv) != 2:
        print("usage: reaper.py RUN_DIR GRACE_MS", file=sys.stderr)
        return 2
    return _watch(argv[0], float(argv[1]))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
