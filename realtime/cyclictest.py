"""Run cyclictest (rt-tests), the reference for release jitter, and read its report.

It runs at the interval, for the time, at the priority and on the CPUs given, with a
1 µs histogram; its JSON becomes a :class:`realtime.jitter.JitterReport`, so it
compares with the deadline loop's on equal terms.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any

from realtime.jitter import JitterReport, report_from_cyclictest_json

__all__ = ["run_cyclictest"]


def run_cyclictest(period_us: int, seconds: float, prio: int | None, cpus: str | None,
                   hz: float, meta: Mapping[str, Any],
                   on_progress: Callable[[float], None] | None = None) -> JitterReport | str:
    """Run cyclictest; returns its report, or a string saying why there is none.
    ``on_progress`` hears the seconds run so far, every 0.25 s."""
    exe = shutil.which("cyclictest")
    if exe is None:
        return "cyclictest not found: install rt-tests (`apt-get install rt-tests`)"
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cyclictest.json")
        cmd = [exe, "-q", f"-i{period_us}", f"-D{max(1, round(seconds))}s", "-t1", "-m",
               "--histogram=100000", f"--json={out}"]
        if prio is not None:
            cmd.append(f"-p{prio}")
        if cpus:
            cmd.append(f"-a{cpus}")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            while proc.poll() is None:
                if on_progress is not None:
                    on_progress(min(time.monotonic() - t0, seconds))
                time.sleep(0.25)
        finally:
            if proc.poll() is None:
                proc.terminate()
            err = proc.communicate(timeout=10)[1].decode(errors="replace").strip()
        if proc.returncode != 0 or not os.path.exists(out):
            return f"cyclictest failed (exit {proc.returncode}): {err[-300:]}"
        with open(out) as f:
            doc = json.load(f)
    return report_from_cyclictest_json(
        doc, hz=hz, meta={**meta, "command": " ".join(cmd[:-1] + ["--json=..."])})
