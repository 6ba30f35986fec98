"""The chaos monkey: its schedule in virtual time, then SIGKILLs to real supervised
processes (restarted each time, the restart budget kept, nothing left after the run)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from realtime.chaos import ChaosMonkey, ChaosOptions, ChaosSchedule, leftover_processes, started_pids
from realtime.clock import FakeClock
from realtime.errors import ConfigError
from realtime.supervisor import ProcessSpec, ProcState, Supervisor

NODES = str(Path(__file__).resolve().parents[1] / "helpers" / "bus_nodes.py")
S = 1_000_000_000


def test_the_schedule_kills_every_n_seconds_a_victim_drawn_from_the_candidates() -> None:
    clock = FakeClock()
    sched = ChaosSchedule(ChaosOptions(every_s=10, first_after_s=3, seed=1), clock.now_ns)
    assert not sched.due()
    clock.advance(3 * S)
    assert sched.due()
    picks = [sched.choose(["sim", "decision", "perception"]) for _ in range(30)]
    assert set(picks) == {"sim", "decision", "perception"}  # each may be hit
    again = ChaosSchedule(ChaosOptions(every_s=10, first_after_s=3, seed=1), clock.now_ns)
    assert [again.choose(["perception", "sim", "decision"]) for _ in range(30)] == picks
    sched.killed()
    clock.advance(10 * S - 1)
    assert not sched.due()  # every_s after the last kill
    clock.advance(1)
    assert sched.due()
    only = ChaosSchedule(ChaosOptions(every_s=1, victims=("decision",)), clock.now_ns)
    assert only.choose(["sim", "perception"]) is None and only.choose(["sim", "decision"]) == "decision"


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="every_s"):
        ChaosOptions(every_s=0)
    with pytest.raises(ConfigError, match="first_after_s"):
        ChaosOptions(every_s=1, first_after_s=-1)


def _spec(name: str, **kw: object) -> ProcessSpec:
    return ProcessSpec(name=name, argv=(sys.executable, NODES, "ticker"), backoff_initial_ms=50,
                       **kw)  # type: ignore[arg-type]


def test_real_processes_killed_at_random_are_restarted_within_their_budget() -> None:
    clock = FakeClock()
    sup = Supervisor([_spec("a", max_restarts=2, stable_reset_ms=None),
                      _spec("b", max_restarts=9, stable_reset_ms=None)])
    monkey = ChaosMonkey(lambda: sup, ChaosOptions(every_s=1, first_after_s=0, seed=3),
                         clock_ns=clock.now_ns)
    sup.start()
    try:
        end = time.monotonic() + 120
        while len(monkey.kills) < 6:
            assert time.monotonic() < end, (monkey.kills, sup.report.events)
            sup.step()
            if monkey.step() is not None and len(monkey.kills) < 6:
                clock.advance(S)  # the next kill is due at once: as soon as one is ready
            time.sleep(0.02)
        while sum(map(sup.restarts, sup.names)) < 6 or any(
                sup.state(n) is not ProcState.RUNNING for n in sup.names):  # all back
            assert time.monotonic() < end, sup.report.events
            sup.step()
            assert monkey.step() is None  # (its clock stands still: no kill is due)
            time.sleep(0.02)
        monkey.step()
    finally:
        report = sup.stop()
    assert monkey.kills_of("a") == 2  # its budget: a third kill in a row would end it
    assert monkey.kills_of("b") == 4
    assert all(p["state"] == "stopped" for p in report.processes.values()), report.processes
    assert report.processes["a"]["restarts"] == 2 and report.processes["b"]["restarts"] == 4
    assert sum("SIGKILL" in e for p in report.processes.values() for e in p["exits"]) == 6
    pids = started_pids(report)
    assert len(pids) == 8 and {k.pid for k in monkey.kills} <= set(pids)
    assert leftover_processes(pids) == []  # no process of the run outlived it
    assert len(monkey.counters["b"]) == 5  # heartbeat counters noted for each incarnation
    assert monkey.counter_total("b", "sent") > monkey.counter_max("b", "sent") > 0
