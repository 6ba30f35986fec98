"""Start a demo's processes, watch them, restart the ones that crash or hang, stop them all.

:class:`Supervisor` takes one :class:`ProcessSpec` per process and:

- starts each as a subprocess in its own process group, with ``RTAGENT_NODE_NAME``,
  ``RTAGENT_RUN_DIR`` (a private per-run directory for IPC sockets),
  ``RTAGENT_HEARTBEAT_ENDPOINT`` and ``RTAGENT_SUPERVISOR_PID`` in its environment
  (:class:`realtime.node.Node` reads them);
- watches exits and heartbeats (``hb/NAME`` topics; a heartbeat from an earlier
  incarnation of a process does not count) for progress, not just life. A
  process is killed (whole group) and restarted when it exits with an error or
  is killed, stops beating for ``heartbeat_timeout_ms``, is not ready (still
  ``starting``) ``startup_grace_ms`` after its start, beats while its loop's
  tick count stands still for ``stall_timeout_ms``, or runs one agent turn for
  longer than ``turn_timeout_ms``. Restarts come after a back-off
  (``backoff_initial_ms`` doubling up to ``backoff_max_ms``), at most
  ``max_restarts`` in a row: a process that ran ``stable_reset_ms`` since it
  was ready gets its count (and back-off) reset. Past the limit it is marked
  failed and, if ``critical``, everything is stopped;
- on :meth:`Supervisor.stop` (Ctrl-C / SIGTERM in :meth:`Supervisor.run`):
  SIGTERM to every group, SIGKILL after ``stop_grace_ms``, reaps every child,
  and removes the run directory with its IPC files — no orphans, no stale files;
- if the supervisor itself dies (even by SIGKILL), a small watcher process
  (:mod:`realtime.reaper`) SIGTERMs every group, SIGKILLs them after
  ``orphan_grace_ms`` and removes the run directory;
- records what happened in a :class:`SupervisorReport`.

Time comes from an injected ``clock_ns`` (heartbeats are timed on it when read).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

from realtime.bus import LatestValueSubscriber
from realtime.endpoints import RUN_DIR_ENV, RunDirectory
from realtime.errors import ConfigError, RtAgentError
from realtime.messages import Heartbeat
from realtime.node import HEARTBEAT_ENV, NAME_ENV, SUPERVISOR_PID_ENV
from realtime.reaper import Reaper
from realtime.supervisor_spec import (
    ProcessSpec,
    ProcState,
    SupervisorOptions,
    SupervisorReport,
    describe_exit,
    python_module,
)

__all__ = [
    "ProcState",
    "ProcessSpec",
    "Supervisor",
    "SupervisorOptions",
    "SupervisorReport",
    "python_module",
]


@dataclass
class _Proc:
    spec: ProcessSpec
    popen: subprocess.Popen[bytes] | None = None
    state: ProcState = ProcState.STARTING
    starts: int = 0
    restarts: int = 0  # over its whole life
    recent_restarts: int = 0  # since it last ran stable_reset_ms (the limit counts these)
    started_ns: int = 0
    ready_ns: int | None = None
    last_beat_ns: int | None = None
    ticks: int | None = None  # the tick count last seen, and since when (ns)
    ticks_since_ns: int = 0
    restart_at_ns: int = 0
    exits: list[str] = field(default_factory=list)
    last_heartbeat: Heartbeat | None = None


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
        self._reaper: Reaper | None = None

    # ------------------------------------------------------------ queries

    def pid(self, name: str) -> int | None:
        p = self._procs[name].popen
        return p.pid if p is not None and p.poll() is None else None

    def state(self, name: str) -> ProcState:
        return self._procs[name].state

    def restarts(self, name: str) -> int:
        return self._procs[name].restarts

    @property
    def names(self) -> list[str]:
        return list(self._procs)

    def restarts_left(self, name: str) -> int:
        """How many crashes in a row ``name`` would still be restarted after (0: the next
        one ends it)."""
        proc = self._procs[name]
        return max(0, proc.spec.max_restarts - proc.recent_restarts) if proc.spec.restart else 0

    def last_heartbeat(self, name: str) -> Heartbeat | None:
        """The newest heartbeat from the current incarnation of ``name``."""
        return self._procs[name].last_heartbeat

    @property
    def stop_requested(self) -> str:
        """Why the supervisor wants to stop ('' while it does not)."""
        return self._stop_reason

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._reaper is None:  # first: it must know every child from its start
            self._reaper = Reaper(self.run_dir.path, grace_ms=self.options.orphan_grace_ms)
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
        if self._reaper is not None:
            self._reaper.watch(proc.popen.pid)
        proc.starts += 1
        proc.state = ProcState.STARTING
        proc.started_ns = self.clock_ns()
        proc.ready_ns = proc.last_beat_ns = proc.ticks = None
        proc.last_heartbeat = None
        self._event(spec.name, f"started pid {proc.popen.pid}")

    def step(self) -> None:
        """One round: read heartbeats, notice exits, silences and stalls, restart what is due."""
        now = self.clock_ns()
        self._read_heartbeats(now)
        for proc in self._procs.values():
            if proc.state in (ProcState.STARTING, ProcState.RUNNING):
                self._forgive(proc, now)
                self._watch(proc, now)
            elif proc.state is ProcState.BACKOFF and now >= proc.restart_at_ns:
                proc.restarts += 1
                proc.recent_restarts += 1
                self._spawn(proc)

    def _read_heartbeats(self, now: int) -> None:
        self._hb.poll()
        for proc in self._procs.values():
            got = self._hb.read_latest(math.inf, topic=f"hb/{proc.spec.name}")
            if got is None or proc.popen is None or not got.new:
                continue
            hb = got.message
            if not isinstance(hb, Heartbeat) or hb.pid != proc.popen.pid:
                continue
            if proc.last_beat_ns is None:
                self._event(proc.spec.name, "first heartbeat")
            proc.last_heartbeat = hb
            proc.last_beat_ns = now  # the supervisor's clock: the one its timeouts use
            if hb.ticks != proc.ticks:
                proc.ticks, proc.ticks_since_ns = hb.ticks, now
            if proc.state is ProcState.STARTING and hb.state != "starting":
                proc.state, proc.ready_ns, proc.ticks_since_ns = ProcState.RUNNING, now, now
                self._event(proc.spec.name, "ready")

    def _forgive(self, proc: _Proc, now: int) -> None:
        """A process that has run stable for ``stable_reset_ms`` starts its restart count afresh."""
        stable = proc.spec.stable_reset_ms
        if (proc.recent_restarts and stable is not None and proc.ready_ns is not None
                and now - proc.ready_ns >= stable * 1e6):
            self._event(proc.spec.name, f"stable for {stable:.0f} ms: restart count reset "
                                        f"(was {proc.recent_restarts})")
            proc.recent_restarts = 0

    def _unhealthy(self, proc: _Proc, now: int) -> str | None:
        """Why a live process must be restarted (None: it is healthy)."""
        spec = proc.spec
        if spec.heartbeat_timeout_ms is None:
            return None
        if proc.last_beat_ns is None:
            if now - proc.started_ns > spec.startup_grace_ms * 1e6:
                return f"no heartbeat within {spec.startup_grace_ms:.0f} ms of start"
            return None
        if now - proc.last_beat_ns > spec.heartbeat_timeout_ms * 1e6:
            return f"no heartbeat for {spec.heartbeat_timeout_ms:.0f} ms"
        if proc.ready_ns is None:
            if now - proc.started_ns > spec.startup_grace_ms * 1e6:
                return (f"not ready within {spec.startup_grace_ms:.0f} ms of start "
                        "(beating, still starting)")
            return None
        stall = spec.stall_ms
        if stall is not None and proc.ticks is not None and now - proc.ticks_since_ns > stall * 1e6:
            return f"loop stalled: beating, but ticks stuck at {proc.ticks} for {stall:.0f} ms"
        hb = proc.last_heartbeat
        if spec.turn_timeout_ms is not None and hb is not None and hb.turn_started_ns:
            # the turn's age when it was sent (the sender's clock), plus the time since
            age_ms = ((hb.t_ns - hb.turn_started_ns) + (now - proc.last_beat_ns)) / 1e6
            if age_ms > spec.turn_timeout_ms:
                return (f"turn running for {age_ms:.0f} ms (turn_timeout_ms="
                        f"{spec.turn_timeout_ms:.0f}; turns ended: {hb.turns_ended})")
        return None

    def _watch(self, proc: _Proc, now: int) -> None:
        assert proc.popen is not None
        spec = proc.spec
        code = proc.popen.poll()
        if code is not None:
            why = describe_exit(code)
        else:
            unhealthy = self._unhealthy(proc, now)
            if unhealthy is None:
                return
            why = unhealthy
            self._kill_group(proc, signal.SIGKILL)
            proc.popen.wait()
        self._kill_group(proc, signal.SIGKILL)  # grandchildren left in its group
        if self._reaper is not None:
            self._reaper.forget(proc.popen.pid)
        proc.exits.append(why)
        self._event(spec.name, why)
        if code == 0 and not spec.restart:
            proc.state = ProcState.EXITED
        elif not spec.restart or proc.recent_restarts >= spec.max_restarts:
            proc.state = ProcState.FAILED
            self._event(spec.name, f"gave up after {proc.recent_restarts} restart(s) in a row")
            if spec.critical and not self._stop_reason:
                self._stop_reason = f"{spec.name} failed ({why})"
        else:
            backoff = min(spec.backoff_max_ms, spec.backoff_initial_ms * 2**proc.recent_restarts)
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
                proc.exits.append(f"{describe_exit(code)} on stop")
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
        if self._reaper is not None:
            self._reaper.close()  # after the orderly stop: nothing left for it to do
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
