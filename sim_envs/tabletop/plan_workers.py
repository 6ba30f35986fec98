"""Path checks in worker processes: off the decision's GIL, and run ahead on spare CPU only.

A path check is a hundred-odd IK solves in PyBullet, which holds the GIL all the
while; in the decision process it would slow the decoder and the deadline loop
that share that GIL. So checks run in worker processes of their own, spawned at
start, each with its own :class:`~sim_envs.tabletop.path_check.PathChecker`:

- the *normal* worker checks the motion the agent is about to make;
- the *idle* worker (``SCHED_IDLE``, else nice 19) checks paths run ahead of the
  agent (:func:`control.tools.running_ahead`): they use only CPU nobody else wants,
  so speculation never slows the decode it overlaps.

When a motion needs a check still running on the idle worker
(:meth:`PathWorkers.hurry`), the same check starts on the normal worker too and
the first answer wins: both are the same, a pure function of the job. Jobs and
answers are JSON lines over the worker's stdin and stdout; a worker exits when its
stdin closes (its parent ended) and is started again if it died.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict
from typing import Any

from realtime.errors import RtAgentError
from sim_envs.tabletop.path_check import PathCheckOptions
from sim_envs.tabletop.perception import GripperState, ObjectState, WorldState
from sim_envs.tabletop.planning import Waypoint

__all__ = ["PathWorkers", "SupersededError", "waypoints_from_json", "waypoints_to_json", "world_from_json",
           "world_to_json"]

START_TIMEOUT_S = 120.0  # a busy machine takes a while to import PyBullet and load models
JOB_TIMEOUT_S = 120.0


def waypoints_to_json(waypoints: Sequence[Waypoint]) -> list[dict[str, Any]]:
    """Waypoints at full precision (a plan served later must be the one computed)."""
    return [{"name": w.name, "gripper": w.gripper, "yaw": w.yaw_rad,
             "position": None if w.position_m is None else list(w.position_m),
             "joints": None if w.joint_target is None else list(w.joint_target)}
            for w in waypoints]


def waypoints_from_json(data: Sequence[Mapping[str, Any]]) -> list[Waypoint]:
    out = []
    for d in data:
        pos, joints = d.get("position"), d.get("joints")
        out.append(Waypoint(str(d["name"]),
                            None if pos is None else (float(pos[0]), float(pos[1]), float(pos[2])),
                            float(d.get("yaw", 0.0)), str(d.get("gripper", "keep")),
                            None if joints is None else tuple(float(v) for v in joints)))
    return out


def world_to_json(w: WorldState) -> dict[str, Any]:
    """Everything a check reads of a world state, at full precision."""
    return {"objects": [[o.name, o.colour, list(o.position_m), o.yaw_rad, o.visible, o.pixels,
                         o.seen_s, o.held] for o in w.objects.values()],
            "gripper": [list(w.gripper.position_m), w.gripper.width_m, w.gripper.holding],
            "arm_q": list(w.arm_q), "t": w.sim_time_s, "seq": w.seq, "version": w.version}


def world_from_json(d: Mapping[str, Any]) -> WorldState:
    objects = {o[0]: ObjectState(str(o[0]), str(o[1]), tuple(o[2]), float(o[3]), bool(o[4]),
                                 int(o[5]), float(o[6]), bool(o[7])) for o in d["objects"]}
    pos, width, holding = d["gripper"]
    return WorldState(objects, GripperState(tuple(pos), float(width), holding),
                      tuple(float(q) for q in d["arm_q"]), float(d["t"]), int(d["seq"]),
                      int(d["version"]))


def worker_main(idle: bool) -> int:
    """A worker (``python -m sim_envs.tabletop.plan_workers [--idle]``): one JSON job per
    line on stdin, one JSON answer per line on the stdout it started with, until stdin
    closes (its parent ended)."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what the libraries print goes to stderr, never into the answers
    with contextlib.suppress(Exception):  # Linux: end with the parent, whatever kills it
        import ctypes

        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    if idle:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError):
            os.nice(19)
    from sim_envs.tabletop.path_check import PathChecker

    options = json.loads(sys.stdin.readline() or "{}")
    checker = PathChecker(PathCheckOptions(**options))
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            job = json.loads(line)
            check = checker.check(world_from_json(job["world"]),
                                  waypoints_from_json(job["waypoints"]),
                                  grasps=job.get("grasps"),
                                  handled=frozenset(job.get("handled", ())))
            reply: dict[str, Any] = {"check": check.to_json()}
        except Exception as exc:  # reported to the caller, never a dead worker
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()
    return 0


class _Worker:
    """One worker process and its pipes; one job at a time."""

    def __init__(self, idle: bool, options: PathCheckOptions) -> None:
        self.idle, self.options = idle, options
        self.lock = threading.Lock()
        self._start()

    def _start(self) -> None:
        cmd = [sys.executable, "-m", "sim_envs.tabletop.plan_workers", *(["--idle"] if self.idle
                                                                         else [])]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        self._in.write(json.dumps(asdict(self.options)).encode() + b"\n")
        self._in.flush()
        self._ready = False  # it says so when its models are loaded (read before the 1st job)

    def _read(self, timeout_s: float, what: str) -> dict[str, Any]:
        ready, _, _ = select.select([self._out], [], [], timeout_s)
        if not ready:
            raise RtAgentError(f"the path-check worker did not {what} within {timeout_s:.0f} s; "
                               "is the machine overloaded?")
        line = self._out.readline()
        if not line:
            raise RtAgentError(f"the path-check worker ended (exit code {self.proc.poll()}); the "
                               "next motion starts a new one")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def run(self, job: bytes) -> dict[str, Any]:
        with self.lock:
            if self.proc.poll() is not None:
                self._start()  # it died (killed?): a new one
            try:
                self._in.write(job + b"\n")
                self._in.flush()
            except OSError as exc:
                raise RtAgentError(f"the path-check worker stopped ({exc}); the next motion "
                                   "starts a new one") from exc
            if not self._ready:
                self._read(START_TIMEOUT_S, "start")
                self._ready = True
            return self._read(JOB_TIMEOUT_S, "answer")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._in.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._out.close()


class SupersededError(RtAgentError):
    """A check run ahead was dropped before it started (a newer one took its place), or its
    world changed while it waited (its answer would be stale)."""


class PathWorkers:
    """The normal and the idle worker (see the module doc). Thread-safe.

    Checks run ahead wait in a one-place mailbox for the idle worker: a newer one takes
    the place of one not yet started, and a waiter gives up once its world is no longer
    current (``still_current``), so no thread waits long on a starved idle worker.
    """

    def __init__(self, options: PathCheckOptions | None = None) -> None:
        self.options = options or PathCheckOptions()
        self.normal = _Worker(False, self.options)
        self.idle = _Worker(True, self.options)
        self._lock = threading.Condition()
        self._ahead: dict[str, tuple[Future[dict[str, Any]], bytes]] = {}  # key -> its check
        self._mailbox: str | None = None
        self._closed = False
        self.hurried = 0  # checks run ahead that a motion needed before they were done
        self.superseded = 0
        self._runner = threading.Thread(target=self._run_ahead, name="path-check-ahead",
                                        daemon=True)
        self._runner.start()

    def check(self, key: str, job: Mapping[str, Any], *, ahead: bool,
              still_current: Callable[[], bool] = lambda: True) -> dict[str, Any]:
        """The check of ``job`` (``key`` names it: tool, arguments, world version), run
        ahead on the idle worker, else on the normal one."""
        data = json.dumps(job).encode()
        if not ahead:
            return self._answer(self.normal.run(data))
        fut: Future[dict[str, Any]] = Future()
        with self._lock:
            if self._mailbox is not None:  # not started yet: this one is newer
                old = self._ahead.pop(self._mailbox, None)
                if old is not None and not old[0].done():
                    with contextlib.suppress(InvalidStateError):
                        old[0].set_exception(SupersededError("a newer check took its place"))
                    self.superseded += 1
            self._ahead[key] = (fut, data)
            self._mailbox = key
            self._lock.notify_all()
        try:
            while True:
                try:
                    return self._answer(fut.result(0.05))
                except FutureTimeout:
                    if not still_current():
                        raise SupersededError("the world changed while the check "
                                              "waited") from None
        finally:
            with self._lock:
                mine = self._ahead.get(key)
                if mine is not None and mine[0] is fut:
                    del self._ahead[key]
                if self._mailbox == key:
                    self._mailbox = None

    def _run_ahead(self) -> None:
        while True:
            with self._lock:
                while self._mailbox is None and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                key, self._mailbox = self._mailbox, None
                got = self._ahead.get(key) if key is not None else None
            if got is not None and not got[0].done():
                self._settle(got[0], self.idle, got[1])

    def hurry(self, key: str) -> None:
        """A motion needs ``key`` now: if it is waiting or running ahead (idle priority),
        run it on the normal worker too, in the background; the first answer serves both."""
        with self._lock:
            got = self._ahead.get(key)
        if got is None or got[0].done():
            return
        self.hurried += 1
        threading.Thread(target=self._settle, args=(*got[:1], self.normal, got[1]), daemon=True,
                         name="path-check-hurry").start()

    @staticmethod
    def _settle(fut: Future[dict[str, Any]], worker: _Worker, data: bytes) -> None:
        try:
            reply = worker.run(data)
        except Exception as exc:
            with contextlib.suppress(InvalidStateError):  # the other worker answered
                fut.set_exception(exc)
            return
        with contextlib.suppress(InvalidStateError):
            fut.set_result(reply)

    @staticmethod
    def _answer(reply: Mapping[str, Any]) -> dict[str, Any]:
        if "error" in reply:
            raise RtAgentError(f"the path check failed: {reply['error']}")
        check: dict[str, Any] = reply["check"]
        return check

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        for w in (self.normal, self.idle):
            w.close()


if __name__ == "__main__":
    raise SystemExit(worker_main("--idle" in sys.argv[1:]))
