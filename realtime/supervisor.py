"""Start a demo's processes, watch them, restart the ones that crash, stop them all.

:class:`Supervisor` takes one :class:`ProcessSpec` per process and:

- starts each as a subprocess in its own process group, with ``RTAGENT_NODE_NAME``,
  ``RTAGENT_RUN_DIR`` (a private per-run directory for IPC sockets),
  ``RTAGENT_HEARTBEAT_ENDPOINT`` and ``RTAGENT_SUPERVISOR_PID`` in its environment
  (:class:`realtime.node.Node` reads them);
- watches exits and heartbeats (``hb/NAME`` topics; a heartbeat from an earlier
  incarnation of a process does not count). A process that exits with an
  error, is killed, or stops beating for ``heartbeat_timeout_ms`` is killed
  (whole group) and restarted after a back-off (``backoff_initial_ms`` doubling
  up to ``backoff_max_ms``), at most ``max_restarts`` times; then it is marked
  failed and, if ``critical``, everything is stopped;
- on :meth:`Supervisor.stop` (Ctrl-C / SIGTERM in :meth:`Supervisor.run`):
  SIGTERM to every group, SIGKILL after ``stop_grace_ms``, reaps every child,
  and removes the run directory with its IPC files — no orphans, no stale files;
- records what happened in a :class:`SupervisorReport`.

Time comes from an injected ``clock_ns``.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import FrameType
from typing import Any

from realtime.bus import LatestValueSubscriber
from realtime.endpoints import RUN_DIR_ENV, RunDirectory
from realtime.errors import ConfigError, RtAgentError
from realtime.messages import Heartbeat
from realtime.node import HEARTBEAT_ENV, NAME_ENV, SUPERVISOR_PID_ENV

__all__ = [
    "ProcState",
    "ProcessSpec",
    "Supervisor",
    "SupervisorOptions",
    "SupervisorReport",
    "python_module",
]


def python_module(module: str, *args: str) -> tuple[str, ...]:
    """``argv`` running ``python -m module args…`` with this interpreter."""
    return (sys.executable, "-m", module, *args)


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process. ``heartbeat_timeout_ms=None``: watch exits only.
    ``startup_grace_ms``: time allowed before the first heartbeat."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    restart: bool = True
    max_restarts: int = 3
    backoff_initial_ms: float = 200.0
    backoff_max_ms: float = 5000.0
    heartbeat_timeout_ms: float | None = 2000.0
    startup_grace_ms: float = 15000.0
    critical: bool = True

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"ProcessSpec.name: expected letters, digits, -, _; got {self.name!r}")
        if not self.argv:
            raise ConfigError(f"ProcessSpec {self.name!r}: argv is empty")
        if self.max_restarts < 0 or self.backoff_initial_ms < 0 or self.backoff_max_ms < 0:
            raise ConfigError(f"ProcessSpec {self.name!r}: restarts and back-off must be >= 0")
        if self.heartbeat_timeout_ms is not None and self.heartbeat_timeout_ms <= 0:
            raise ConfigError(
                f"ProcessSpec.heartbeat_timeout_ms: expected > 0 or None, "
                f"got {self.heartbeat_timeout_ms!r}"
            )


@dataclass(frozen=True)
class SupervisorOptions:
    stop_grace_ms: float = 3000.0  # SIGTERM -> SIGKILL
    poll_ms: float = 50.0  # how often run() checks its processes

    def __post_init__(self) -> None:
        if self.stop_grace_ms < 0 or self.poll_ms <= 0:
            raise ConfigError(
                f"SupervisorOptions: expected stop_grace_ms >= 0 and poll_ms > 0, "
                f"got {self.stop_grace_ms!r}, {self.poll_ms!r}"
            )


class ProcState(StrEnum):
    STARTING = "starting"  # started, no heartbeat yet
    RUNNING = "running"
    BACKOFF = "backoff"  # crashed, waiting to restart
    EXITED = "exited"  # finished with status 0, not restarted
    FAILED = "failed"  # gave up restarting
    STOPPED = "stopped"  # stopped by the supervisor


@dataclass
class _Proc:
    spec: ProcessSpec
    popen: subprocess.Popen[bytes] | None = None
    state: ProcState = ProcState.STARTING
    starts: int = 0
    restarts: int = 0
    started_ns: int = 0
    last_beat_ns: int | None = None
    restart_at_ns: int = 0
    exits: list[str] = field(default_factory=list)
    last_heartbeat: Heartbeat | None = None


@dataclass
class SupervisorReport:
    """What happened: per-process starts, restarts, exits and final state, plus events."""

    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (t_s, name, what)
    stopped_because: str = ""

    def format(self) -> str:
        lines = [f"supervisor: stopped ({self.stopped_because or 'not stopped'})"]
        for name, p in self.processes.items():
            exits = ", ".join(p["exits"]) or "none"
            lines.append(
                f"  {name:<16} {p['state']:<9} starts={p['starts']} restarts={p['restarts']} "
                f"exits: {exits}"
            )
        return "\n".join(lines)


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        options: SupervisorOptions | None = None,
        *,
        run_dir: RunDirectory | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ConfigError(f"process names must be unique, got {names}")
        self.options = options or SupervisorOptions()
        self.clock_ns = clock_ns
        self.run_dir = run_dir or RunDirectory()
        self.heartbeat_endpoint = self.run_dir.endpoint("heartbeat")
        self._procs = {s.name: _Proc(s) for s in specs}
        self._hb = LatestValueSubscriber(
            self.heartbeat_endpoint, ["hb/"], types=(Heartbeat,), age_from="receive", bind=True
        )
        self._t0 = clock_ns()
        self.report = SupervisorReport()
        self._stopped = False
        self._stop_reason = ""

    # ------------------------------------------------------------ queries

    def pid(self, name: str) -> int | None:
        p = self._procs[name].popen
        return p.pid if p is not None and p.poll() is None else None

    def state(self, name: str) -> ProcState:
        return self._procs[name].state

    def restarts(self, name: str) -> int:
        return self._procs[name].restarts

    def last_heartbeat(self, name: str) -> Heartbeat | None:
        """The newest heartbeat from the current incarnation of ``name``."""
        return self._procs[name].last_heartbeat

    @property
    def stop_requested(self) -> str:
        """Why the supervisor wants to stop ('' while it does not)."""
        return self._stop_reason

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for proc in self._procs.values():
            self._spawn(proc)

    def _event(self, name: str, what: str) -> None:
        self.report.events.append(((self.clock_ns() - self._t0) / 1e9, name, what))

    def _spawn(self, proc: _Proc) -> None:
        spec = proc.spec
        env = dict(os.environ)
        env.update(spec.env)
        env.update({
            NAME_ENV: spec.name,
            RUN_DIR_ENV: str(self.run_dir.path),
            HEARTBEAT_ENV: self.heartbeat_endpoint,
            SUPERVISOR_PID_ENV: str(os.getpid()),
        })
        try:
            proc.popen = subprocess.Popen(
                spec.argv, env=env, cwd=spec.cwd, start_new_session=True, close_fds=True
            )
        except OSError as exc:
            raise RtAgentError(f"cannot start {spec.name!r} ({spec.argv[0]}): {exc}") from exc
        proc.starts += 1
        proc.state = ProcState.STARTING
        proc.started_ns = self.clock_ns()
        proc.last_beat_ns = None
        proc.last_heartbeat = None
        self._event(spec.name, f"started pid {proc.popen.pid}")

    def step(self) -> None:
        """One round: read heartbeats, notice exits and silences, restart what is due."""
        self._read_heartbeats()
        now = self.clock_ns()
        for proc in self._procs.values():
            if proc.state in (ProcState.STARTING, ProcState.RUNNING):
                self._watch(proc, now)
            elif proc.state is ProcState.BACKOFF and now >= proc.restart_at_ns:
                proc.restarts += 1
                self._spawn(proc)

    def _read_heartbeats(self) -> None:
        self._hb.poll()
        for proc in self._procs.values():
            got = self._hb.read_latest(math.inf, topic=f"hb/{proc.spec.name}")
            if got is None or proc.popen is None:
                continue
            hb = got.message
            if isinstance(hb, Heartbeat) and hb.pid == proc.popen.pid:
                proc.last_heartbeat = hb
                if got.new:
                    proc.last_beat_ns = got.received_ns
                    if proc.state is ProcState.STARTING:
                        proc.state = ProcState.RUNNING
                        self._event(proc.spec.name, "first heartbeat")

    def _watch(self, proc: _Proc, now: int) -> None:
        assert proc.popen is not None
        spec = proc.spec
        code = proc.popen.poll()
        if code is not None:
            why = _describe(code)
        elif spec.heartbeat_timeout_ms is None:
            return
        elif proc.last_beat_ns is None:
            if now - proc.started_ns <= spec.startup_grace_ms * 1e6:
                return
            why = f"no heartbeat within {spec.startup_grace_ms:.0f} ms of start"
        elif now - proc.last_beat_ns > spec.heartbeat_timeout_ms * 1e6:
            why = f"no heartbeat for {spec.heartbeat_timeout_ms:.0f} ms"
        else:
            return
        if code is None:
            self._kill_group(proc, signal.SIGKILL)
            proc.popen.wait()
        self._kill_group(proc, signal.SIGKILL)  # grandchildren left in its group
        proc.exits.append(why)
        self._event(spec.name, why)
        if code == 0 and not spec.restart:
            proc.state = ProcState.EXITED
        elif not spec.restart or proc.restarts >= spec.max_restarts:
            proc.state = ProcState.FAILED
            self._event(spec.name, f"gave up after {proc.restarts} restart(s)")
            if spec.critical and not self._stop_reason:
                self._stop_reason = f"{spec.name} failed ({why})"
        else:
            backoff = min(spec.backoff_max_ms, spec.backoff_initial_ms * 2**proc.restarts)
            proc.state = ProcState.BACKOFF
            proc.restart_at_ns = now + int(backoff * 1e6)
            self._event(spec.name, f"restart in {backoff:.0f} ms")

    def _kill_group(self, proc: _Proc, sig: int) -> None:
        if proc.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.popen.pid, sig)

    def stop(self, reason: str = "stopped") -> SupervisorReport:
        """Stop every process (SIGTERM, then SIGKILL), reap them, remove IPC files."""
        if self._stopped:
            return self.report
        self._stopped = True
        self.report.stopped_because = self._stop_reason or reason
        live = [p for p in self._procs.values() if p.popen is not None and p.popen.poll() is None]
        for proc in live:
            self._kill_group(proc, signal.SIGTERM)
        deadline = self.clock_ns() + int(self.options.stop_grace_ms * 1e6)
        for proc in live:
            assert proc.popen is not None
            left_s = max(0.0, (deadline - self.clock_ns()) / 1e9)
            try:
                code = proc.popen.wait(timeout=left_s)
                proc.exits.append(f"{_describe(code)} on stop")
            except subprocess.TimeoutExpired:
                self._kill_group(proc, signal.SIGKILL)
                proc.popen.wait()
                proc.exits.append("killed by SIGKILL on stop (ignored SIGTERM)")
            self._kill_group(proc, signal.SIGKILL)  # anything left in its group
            if proc.state in (ProcState.STARTING, ProcState.RUNNING, ProcState.BACKOFF):
                proc.state = ProcState.STOPPED
            self._event(proc.spec.name, proc.exits[-1])
        for proc in self._procs.values():
            if proc.state is ProcState.BACKOFF:
                proc.state = ProcState.STOPPED
            self.report.processes[proc.spec.name] = {
                "state": str(proc.state),
                "starts": proc.starts,
                "restarts": proc.restarts,
                "exits": list(proc.exits),
                "last_counters": dict(proc.last_heartbeat.counters) if proc.last_heartbeat else {},
            }
        self._hb.close()
        self.run_dir.close()
        return self.report

    def run(
        self, until: Callable[[], bool] | None = None, timeout_s: float | None = None
    ) -> SupervisorReport:
        """Start, watch until ``until()``, a timeout, a critical failure or Ctrl-C/SIGTERM,
        then stop. Installs SIGINT/SIGTERM handlers (main thread) for the duration."""
        got_signal: list[str] = []

        def on_signal(signum: int, frame: FrameType | None) -> None:
            got_signal.append(signal.Signals(signum).name)

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        reason = "stopped"
        try:
            self.start()
            t_end = None if timeout_s is None else self.clock_ns() + int(timeout_s * 1e9)
            while True:
                self.step()
                if got_signal:
                    reason = f"got {got_signal[0]}"
                    break
                if self._stop_reason:
                    break
                if until is not None and until():
                    reason = "done"
                    break
                if all(p.state in (ProcState.EXITED, ProcState.FAILED) for p in self._procs.values()):
                    reason = "every process ended"
                    break
                if t_end is not None and self.clock_ns() >= t_end:
                    reason = f"ran for {timeout_s} s"
                    break
                self._hb.sock.poll(int(self.options.poll_ms))
        finally:
            report = self.stop(reason)
            for s, handler in old.items():
                signal.signal(s, handler)
        return report

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop("left the with block")
