"""A link down between the decision's host and the actuation's: the actuation's watchdog
holds the arm one watchdog period after the last command got through, the commands
queued during the partition arrive stale after it and are not acted on, and fresh
ones resume motion by the watchdog's rules. Two network namespaces joined by a veth
pair (root needed, see tests/realtime/test_multihost.py), CurveZMQ over TCP."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from demos.cli import main as cli_main
from tests.realtime.test_multihost import ip, two_hosts  # noqa: F401 (the fixture)

NODES = str(Path(__file__).resolve().parents[1] / "helpers" / "partition_nodes.py")
WATCHDOG_MS = 300.0
TICK_MS = 12.5


class Lines:
    """JSON lines of a process's stdout, with their receive times, read on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.got: list[tuple[int, dict]] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.got.append((time.monotonic_ns(), json.loads(line)))

    def join(self) -> None:
        self._thread.join(30)

    def wait(self, acting: bool, after_ns: int, timeout_s: float) -> tuple[int, dict]:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            for t, event in list(self.got):
                if t > after_ns and event["acting"] is acting:
                    return t, event
            time.sleep(0.01)
        raise AssertionError(f"the actuator never {'acted' if acting else 'held'}: {self.got}")


def _link(ns: str) -> str:
    """The veth end in ``ns`` (its one link besides lo)."""
    names = [line.split(":")[1].strip().split("@")[0]
             for line in ip("-n", ns, "-o", "link", "show").stdout.splitlines()]
    (link,) = [n for n in names if n != "lo"]
    return link


@pytest.mark.netns
def test_link_down_holds_the_arm_and_recovery_resumes_it(
        two_hosts: tuple[str, str, str, str], tmp_path: Path) -> None:  # noqa: F811
    ns_a, addr_a, ns_b, _ = two_hosts
    assert cli_main(["keys", "--name", "server", "--name", "client", "--dir", str(tmp_path)]) == 0
    env = {**os.environ, "RTAGENT_RUN_DIR": str(tmp_path / "run")}
    with contextlib.ExitStack() as stack:
        actuator = stack.enter_context(subprocess.Popen(
            ["ip", "netns", "exec", ns_a, sys.executable, NODES, "actuator", addr_a,
             str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True))
        assert actuator.stdout is not None
        ready, port = actuator.stdout.readline().split()
        assert ready == "ready"
        lines = Lines(actuator)
        stack.callback(lines.join)  # (after the terminate below: its output ends)
        stack.callback(actuator.terminate)
        commander = stack.enter_context(subprocess.Popen(
            ["ip", "netns", "exec", ns_b, sys.executable, NODES, "commander", addr_a,
             str(tmp_path), port], env=env))
        stack.callback(commander.terminate)
        lines.wait(True, 0, 120)  # commands get through: the arm moves
        time.sleep(1.0)
        link = _link(ns_b)
        down_ns = time.monotonic_ns()
        assert ip("-n", ns_b, "link", "set", link, "down").returncode == 0
        held_ns, held = lines.wait(False, down_ns, 10)
        time.sleep(2.0)  # the partition lasts
        up_ns = time.monotonic_ns()
        assert ip("-n", ns_b, "link", "set", link, "up").returncode == 0
        back_ns, back = lines.wait(True, up_ns, 60)  # TCP retransmits, ZMQ reconnects
    # Held one watchdog period (and a tick) after the last command got through; a command
    # in flight at the cut may have landed up to 125 ms (its deadline) after it.
    assert held["trips"] == 1
    assert (held_ns - down_ns) / 1e6 <= WATCHDOG_MS + TICK_MS + 125 + 50, held
    assert not [e for t, e in lines.got if held_ns < t < up_ns and e["acting"]]  # held throughout
    # Moving again only after the link came back (two fresh commands in a row: what the
    # link had queued is past its deadline, or collapsed into the newest by the subscriber).
    assert back["resumes"] == 1 and back["trips"] == 1, back
    assert back_ns > up_ns
    print(f"partition: held {(held_ns - down_ns) / 1e6:.0f} ms after the link went down, "
          f"moving again {(back_ns - up_ns) / 1e6:.0f} ms after it came back; {back}")
