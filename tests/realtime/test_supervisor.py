"""The supervisor with real processes: restarts after kill -9, heartbeat silence,
give-up limits, a clean stop (no orphans, no IPC files) on SIGTERM, and no
orphans or run directory left when the supervisor itself is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from realtime.endpoints import RunDirectory
from realtime.errors import ConfigError
from realtime.supervisor import ProcessSpec, ProcState, Supervisor, SupervisorOptions

NODES = str(Path(__file__).resolve().parents[1] / "helpers" / "bus_nodes.py")
ROOT = str(Path(__file__).resolve().parents[2])


def spec(name: str, role: str, *args: str, **kw: object) -> ProcessSpec:
    kw.setdefault("backoff_initial_ms", 50.0)
    kw.setdefault("heartbeat_timeout_ms", 1500.0)
    return ProcessSpec(name=name, argv=(sys.executable, NODES, role, *args), **kw)  # type: ignore[arg-type]


def step_until(sup: Supervisor, cond: Callable[[], bool], limit_s: float = 60.0) -> None:
    """Drive the supervisor until ``cond()``; the limit only guards against a hang."""
    end = time.monotonic() + limit_s
    while not cond():
        assert time.monotonic() < end, f"condition not reached; events: {sup.report.events}"
        sup.step()
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited: only whoever adopted it (init, here) has not reaped it yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_9_of_a_node_is_restarted_and_the_others_keep_running() -> None:
    sup = Supervisor([spec("ticker", "ticker"), spec("relay", "relay"), spec("sink", "sink")])
    run_dir = sup.run_dir.path
    try:
        sup.start()
        step_until(sup, lambda: all(sup.state(n) is ProcState.RUNNING
                                    for n in ("ticker", "relay", "sink")))

        def sink_counts() -> dict[str, int]:
            hb = sup.last_heartbeat("sink")
            return dict(hb.counters) if hb else {}

        step_until(sup, lambda: sink_counts().get("received", 0) > 5)
        old_relay, ticker_pid, sink_pid = sup.pid("relay"), sup.pid("ticker"), sup.pid("sink")
        assert old_relay and ticker_pid and sink_pid
        assert sink_counts()["relay_pid"] == old_relay

        os.kill(old_relay, signal.SIGKILL)
        step_until(sup, lambda: sup.restarts("relay") == 1 and sup.pid("relay") is not None)
        new_relay = sup.pid("relay")
        assert new_relay != old_relay
        # data flows again through the new incarnation, and the others never stopped
        step_until(sup, lambda: sink_counts().get("relay_pid") == new_relay)
        assert sup.pid("ticker") == ticker_pid and sup.pid("sink") == sink_pid
        assert sup.restarts("ticker") == sup.restarts("sink") == 0
    finally:
        report = sup.stop()
    assert "killed by SIGKILL" in report.processes["relay"]["exits"][0]
    assert report.processes["relay"]["restarts"] == 1
    assert not any(alive(p) for p in (new_relay, ticker_pid, sink_pid))
    assert not run_dir.exists()


def test_a_silent_node_is_killed_and_restarted_then_given_up() -> None:
    sup = Supervisor([spec("mute", "mute", "3", heartbeat_timeout_ms=300.0, max_restarts=1)])
    try:
        sup.start()
        step_until(sup, lambda: sup.state("mute") is ProcState.FAILED)
    finally:
        report = sup.stop()
    proc = report.processes["mute"]
    assert proc["starts"] == 2 and proc["restarts"] == 1
    assert proc["exits"] == ["no heartbeat for 300 ms"] * 2
    assert report.stopped_because.startswith("mute failed")


def test_crash_exit_status_is_reported_and_non_critical_failure_keeps_others() -> None:
    sup = Supervisor([
        spec("crasher", "crash", "2", max_restarts=2, critical=False),
        spec("ticker", "ticker"),
    ])
    try:
        sup.start()
        step_until(sup, lambda: sup.state("crasher") is ProcState.FAILED)
        assert sup.stop_requested == ""
        assert sup.state("ticker") is ProcState.RUNNING
    finally:
        report = sup.stop()
    assert report.processes["crasher"]["exits"][:3] == ["exit 3"] * 3
    assert report.processes["ticker"]["state"] == "stopped"
    assert "crasher" in report.format()


def test_sigterm_to_the_supervisor_stops_everything_cleanly(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, json
        sys.path.insert(0, {ROOT!r})
        from realtime.supervisor import ProcessSpec, Supervisor
        specs = [ProcessSpec(name=n, argv=(sys.executable, {NODES!r}, n)) for n in
                 ("ticker", "relay", "sink")]
        sup = Supervisor(specs)
        print(sup.run_dir.path, flush=True)
        def ready():
            pids = [sup.pid(n) for n in ("ticker", "relay", "sink")]
            hb = sup.last_heartbeat("sink")
            if hb and hb.counters.get("received", 0) > 3 and not ready.done:
                print(json.dumps(pids), flush=True)
                ready.done = True
            return False
        ready.done = False
        report = sup.run(until=ready)
        print(report.stopped_because, flush=True)
    """)
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as proc:
        run_dir, pids, rest = _run_then_sigterm(proc)
    assert proc.returncode == 0
    assert "got SIGTERM" in rest
    assert not any(alive(p) for p in pids)
    assert not run_dir.exists()


def _run_then_sigterm(proc: subprocess.Popen[str]) -> tuple[Path, list[int], str]:
    assert proc.stdout is not None
    try:
        run_dir = Path(proc.stdout.readline().strip())
        assert run_dir.is_dir()
        pids = json.loads(proc.stdout.readline())
        assert all(alive(p) for p in pids)
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    return run_dir, pids, rest


def test_supervisor_killed_with_sigkill_leaves_no_orphans() -> None:
    script = textwrap.dedent(f"""
        import sys, json
        sys.path.insert(0, {ROOT!r})
        from realtime.supervisor import ProcessSpec, Supervisor
        sup = Supervisor([ProcessSpec(name="ticker", argv=(sys.executable, {NODES!r}, "ticker"))])
        def ready():
            if sup.last_heartbeat("ticker") and not ready.done:
                print(sup.pid("ticker"), flush=True)
                ready.done = True
            return False
        ready.done = False
        sup.run(until=ready)
    """)
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as proc:
        _kill_supervisor_and_wait_for_child(proc)


def _kill_supervisor_and_wait_for_child(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    try:
        child = int(proc.stdout.readline())
        proc.kill()
        proc.wait(timeout=30)
        end = time.monotonic() + 30
        while alive(child) and time.monotonic() < end:  # PDEATHSIG -> SIGTERM -> clean exit
            time.sleep(0.05)
        assert not alive(child)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_supervisor_killed_with_sigkill_takes_a_hung_child_and_its_run_dir_along() -> None:
    # the child ignores the SIGTERM that PDEATHSIG sends: the supervisor's watcher
    # SIGKILLs it after orphan_grace_ms, then removes the run directory
    script = textwrap.dedent(f"""
        import sys, json
        sys.path.insert(0, {ROOT!r})
        from realtime.supervisor import ProcessSpec, Supervisor, SupervisorOptions
        sup = Supervisor([ProcessSpec(name="deaf", argv=(sys.executable, {NODES!r}, "deaf"))],
                         SupervisorOptions(orphan_grace_ms=300))
        def ready():
            if sup.last_heartbeat("deaf") and not ready.done:
                print(json.dumps([str(sup.run_dir.path), sup.pid("deaf")]), flush=True)
                ready.done = True
            return False
        ready.done = False
        sup.run(until=ready)
    """)
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        try:
            run_dir, child = json.loads(proc.stdout.readline())
            assert Path(run_dir).is_dir() and alive(child)
            proc.kill()
            proc.wait(timeout=30)
            killed = time.monotonic()
            end = killed + 30
            while (alive(child) or Path(run_dir).exists()) and time.monotonic() < end:
                time.sleep(0.02)
            took_s = time.monotonic() - killed
        finally:
            if proc.poll() is None:
                proc.kill()
    assert not alive(child), "the hung child outlived its supervisor"
    assert not Path(run_dir).exists(), "the run directory was left behind"
    print(f"hung child and run dir gone {took_s:.2f} s after the supervisor's kill -9")


def test_a_run_directory_whose_owner_was_killed_is_removed_by_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {ROOT!r})
        from realtime.endpoints import RunDirectory
        print(RunDirectory().path, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == -signal.SIGKILL
    stale = Path(done.stdout.strip())
    assert stale.is_dir() and stale.parent == tmp_path
    with RunDirectory() as live:
        assert not stale.exists()
        with RunDirectory() as second:  # a live owner's directory stays
            assert live.path.exists() and second.path.exists()
    assert list(tmp_path.iterdir()) == []


def test_bad_specs_are_refused() -> None:
    with pytest.raises(ConfigError, match="argv is empty"):
        ProcessSpec(name="x", argv=())
    with pytest.raises(ConfigError, match="expected letters"):
        ProcessSpec(name="a b", argv=("true",))
    with pytest.raises(ConfigError, match="unique"):
        Supervisor([ProcessSpec(name="x", argv=("true",))] * 2)
    with pytest.raises(ConfigError, match="poll_ms"):
        SupervisorOptions(poll_ms=0)
    for name in ("stall_timeout_ms", "turn_timeout_ms", "stable_reset_ms", "startup_grace_ms"):
        with pytest.raises(ConfigError, match=name):
            ProcessSpec(name="x", argv=("true",), **{name: 0.0})  # type: ignore[arg-type]
