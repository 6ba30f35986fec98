"""The actuation watchdog: virtual-time logic, and a real decision process that dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from realtime.bus import CommandServer
from realtime.clock import FakeClock
from realtime.endpoints import RunDirectory
from realtime.errors import ConfigError
from realtime.messages import Command
from realtime.watchdog import Watchdog, WatchdogOptions, WatchdogState

NODES = str(Path(__file__).resolve().parents[1] / "helpers" / "bus_nodes.py")
MS = 1_000_000


def test_holds_until_the_first_command_then_trips_on_silence() -> None:
    clock = FakeClock()
    wd = Watchdog(WatchdogOptions(timeout_ms=100, resume_after=2), clock.now_ns)
    assert not wd.check() and wd.state is WatchdogState.WAITING and wd.age_ms() is None
    wd.feed(1, "dec")
    assert wd.check()
    clock.advance(100 * MS)
    assert wd.check()  # exactly at the limit: still fresh
    clock.advance(1)
    assert not wd.check() and wd.state is WatchdogState.TRIPPED and wd.trips == 1
    assert wd.events[-1] == (100 * MS + 1, "trip")


def test_resumes_only_after_enough_fresh_newer_commands() -> None:
    clock = FakeClock()
    wd = Watchdog(WatchdogOptions(timeout_ms=100, resume_after=2), clock.now_ns)
    wd.feed(1, "dec")
    clock.advance(500 * MS)
    assert not wd.check()
    assert not wd.feed(1, "dec")  # an old command re-delivered: ignored
    assert wd.stale_feeds == 1 and not wd.check()
    wd.feed(2, "dec")
    assert not wd.check()  # one fresh command is not enough
    clock.advance(200 * MS)
    wd.feed(3, "dec")  # too long after the previous one: the streak restarts
    assert not wd.check()
    clock.advance(50 * MS)
    wd.feed(4, "dec")
    assert wd.check() and wd.resumes == 1
    wd.feed(1, "dec-restarted")  # a new source may start its seq again
    assert wd.check()


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="timeout_ms"):
        WatchdogOptions(timeout_ms=0)
    with pytest.raises(ConfigError, match="resume_after"):
        WatchdogOptions(resume_after=0)


def actuation_steps(srv: CommandServer, wd: Watchdog, until: WatchdogState) -> None:
    """Run the actuation side (receive, feed, check) until the watchdog reaches ``until``."""
    end = time.monotonic() + 60
    while wd.state is not until:
        assert time.monotonic() < end, f"watchdog stayed {wd.state}"
        got = srv.recv(timeout_ms=10)
        if got is not None and isinstance(got.message, Command):
            wd.feed(got.message.seq, got.message.source)
            srv.ack(got)
        wd.check()


def test_actuation_holds_when_the_decision_process_is_killed() -> None:
    with RunDirectory() as run_dir, \
            CommandServer(run_dir.endpoint("cmd"), source="actuation") as srv:
        env = {**os.environ, "RTAGENT_RUN_DIR": str(run_dir.path)}
        wd = Watchdog(WatchdogOptions(timeout_ms=200, resume_after=3))
        for incarnation in (1, 2):
            env["RTAGENT_NODE_NAME"] = f"decision{incarnation}"
            with subprocess.Popen([sys.executable, NODES, "decider"], env=env) as decider:
                try:
                    actuation_steps(srv, wd, WatchdogState.OK)
                finally:
                    os.kill(decider.pid, signal.SIGKILL)
                assert decider.wait(timeout=30) == -signal.SIGKILL
            actuation_steps(srv, wd, WatchdogState.TRIPPED)
            assert wd.trips == incarnation
        assert wd.resumes == 1  # the second decision process resumed actuation cleanly
        assert srv.stats.received > 0 and srv.stats.dropped == {}
