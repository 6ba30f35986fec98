"""Run cyclictest (rt-tests), the reference for release jitter, in the background.

One measuring thread (``-t1``) at the interval, for a number of loops, at the
priority and on the CPUs given, memory locked (``-m``), with a 1 µs histogram.
``--secaligned`` puts its first release one interval after the next whole second
of CLOCK_MONOTONIC, so another measurement can line its own releases up with
cyclictest's (see :func:`realtime.jitter_run.run_concurrent`). Like our loop, it
waits with ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``. Its JSON becomes a
:class:`realtime.jitter.JitterReport`, so both compare on equal terms.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from realtime.jitter import JitterReport, report_from_cyclictest_json

__all__ = ["Cyclictest"]

_HOW_TO_INSTALL = "cyclictest not found: install rt-tests (`apt-get install rt-tests`)"


class Cyclictest:
    """cyclictest at ``period_us``, SCHED_FIFO ``prio`` (None: SCHED_OTHER), on ``cpus``
    (e.g. ``"1"`` or ``"0,1"``; None: any). ``start(loops)``, then ``result(...)``."""

    def __init__(self, period_us: int, prio: int | None = None, cpus: str | None = None) -> None:
        self.period_us = period_us
        self.prio = prio
        self.cpus = cpus
        self.exe = shutil.which("cyclictest")
        self.command: list[str] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def unavailable(self) -> str | None:
        """Why cyclictest cannot run here (with what to do), or None."""
        return _HOW_TO_INSTALL if self.exe is None else None

    def start(self, loops: int) -> None:
        """Start it (returns at once): ``loops`` releases after the next whole second."""
        if self.exe is None:
            raise FileNotFoundError(_HOW_TO_INSTALL)
        self._tmp = tempfile.TemporaryDirectory()
        out = os.path.join(self._tmp.name, "cyclictest.json")
        cmd = [self.exe, "-q", f"-i{self.period_us}", f"-l{loops}", "--secaligned", "-t1", "-m",
               "--histogram=100000", f"--json={out}"]
        if self.prio is not None:
            cmd.append(f"-p{self.prio}")
        if self.cpus:
            cmd.append(f"-a{self.cpus}")
        self.command = cmd
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def result(self, hz: float, meta: Mapping[str, Any], timeout_s: float) -> JitterReport | str:
        """Wait for it to finish; its report, or a string saying why there is none."""
        proc, tmp = self._proc, self._tmp
        if proc is None or tmp is None:
            return "cyclictest was not started"
        deadline = time.monotonic() + timeout_s
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if proc.poll() is None:
                proc.terminate()
            err = proc.communicate(timeout=10)[1].decode(errors="replace").strip()
            out = os.path.join(tmp.name, "cyclictest.json")
            if proc.returncode != 0 or not os.path.exists(out):
                return f"cyclictest failed (exit {proc.returncode}): {err[-300:]}"
            with open(out) as f:
                doc = json.load(f)
        finally:
            tmp.cleanup()
            self._tmp = self._proc = None
        shown = " ".join(c for c in self.command if not c.startswith("--json="))
        return report_from_cyclictest_json(doc, hz=hz, meta={**meta, "command": shown})

    def stop(self) -> None:
        """End it early (safe to call when it is not running)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()
        self._tmp = self._proc = None
