"""Liveness that means progress, with real processes: a node that beats while its loop
is stuck, one stuck in start-up past its grace and one whose turn never ends are
restarted; a healthy slow loader is not. The restart limit resets after a stable
period (virtual time)."""

from __future__ import annotations

import os
import signal

from realtime.supervisor import ProcState, Supervisor
from tests.realtime.test_supervisor import spec, step_until


def test_a_node_that_beats_while_its_loop_is_stuck_is_restarted() -> None:
    sup = Supervisor([spec("stuck", "stuck", stall_timeout_ms=500.0, max_restarts=1)])
    try:
        sup.start()
        step_until(sup, lambda: sup.state("stuck") is ProcState.FAILED)
    finally:
        report = sup.stop()
    proc = report.processes["stuck"]
    assert proc["starts"] == 2 and proc["restarts"] == 1
    # heartbeats kept coming (else the exit would say "no heartbeat"): the ticks stood still
    assert [e.split(" at ")[0] for e in proc["exits"]] == ["loop stalled: beating, but ticks stuck"] * 2
    assert all(e.endswith("for 500 ms") for e in proc["exits"])


def test_a_node_stuck_in_start_up_past_its_grace_is_restarted() -> None:
    # (the grace covers the interpreter's start too: seconds on a busy machine)
    sup = Supervisor([spec("loader", "loader", "1000", startup_grace_ms=4000.0,
                           heartbeat_timeout_ms=500.0, max_restarts=1)])
    try:
        sup.start()
        step_until(sup, lambda: sup.state("loader") is ProcState.FAILED)
    finally:
        report = sup.stop()
    proc = report.processes["loader"]
    assert proc["exits"] == ["not ready within 4000 ms of start (beating, still starting)"] * 2
    events = [what for _, name, what in report.events if name == "loader"]
    assert "first heartbeat" in events and "ready" not in events


def test_a_healthy_slow_loader_is_not_restarted() -> None:
    # loading (2 s) outlasts the heartbeat timeout (0.5 s): the helper thread's beats
    # keep it alive, and it is ready well within its grace
    sup = Supervisor([spec("loader", "loader", "2", startup_grace_ms=60_000.0,
                           heartbeat_timeout_ms=500.0)])
    try:
        sup.start()
        step_until(sup, lambda: sup.state("loader") is ProcState.RUNNING)

        def ticks() -> int:
            hb = sup.last_heartbeat("loader")
            return hb.ticks or 0 if hb is not None else 0

        step_until(sup, lambda: ticks() > 20)
        assert sup.restarts("loader") == 0
    finally:
        report = sup.stop()
    assert report.processes["loader"]["exits"] == ["exit 0 on stop"]


def test_a_node_whose_turn_runs_past_its_timeout_is_restarted() -> None:
    sup = Supervisor([spec("agent", "long_turn", turn_timeout_ms=800.0, max_restarts=0)])
    try:
        sup.start()
        step_until(sup, lambda: sup.state("agent") is ProcState.FAILED)
    finally:
        report = sup.stop()
    (why,) = report.processes["agent"]["exits"]
    assert why.startswith("turn running for ") and "turn_timeout_ms=800" in why
    assert report.stopped_because.startswith("agent failed (turn running for")


def test_the_restart_limit_resets_after_a_stable_period() -> None:
    now = [0]
    sup = Supervisor([spec("ticker", "ticker", max_restarts=1, backoff_initial_ms=0.0,
                           heartbeat_timeout_ms=10_000_000.0, stable_reset_ms=60_000.0)],
                     clock_ns=lambda: now[0])

    def kill_and_wait_restart(restarts: int) -> None:
        pid = sup.pid("ticker")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        step_until(sup, lambda: sup.restarts("ticker") == restarts
                   and sup.state("ticker") is ProcState.RUNNING)

    try:
        sup.start()
        step_until(sup, lambda: sup.state("ticker") is ProcState.RUNNING)
        kill_and_wait_restart(1)
        now[0] += 61 * 10**9  # a minute of (virtual) stable running
        sup.step()
        kill_and_wait_restart(2)  # allowed again: the count was reset
        now[0] += 10 * 10**9  # not stable long enough this time
        pid = sup.pid("ticker")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        step_until(sup, lambda: sup.state("ticker") is ProcState.FAILED)
    finally:
        report = sup.stop()
    assert report.processes["ticker"]["restarts"] == 2  # over its whole life
    assert any("restart count reset (was 1)" in what for _, _, what in report.events)
    assert report.stopped_because.startswith("ticker failed (killed by SIGKILL)")
