"""A base for one rtagent process: its name, run directory, heartbeats, signals, shutdown.

A process started by :class:`realtime.supervisor.Supervisor` finds its name,
run directory and heartbeat endpoint in its environment (``RTAGENT_NODE_NAME``,
``RTAGENT_RUN_DIR``, ``RTAGENT_HEARTBEAT_ENDPOINT``); :meth:`Node.from_env`
reads them. A node:

- publishes :class:`~realtime.messages.Heartbeat` on topic ``hb/NAME`` when its
  loop calls :meth:`Node.beat` (rate-limited to ``heartbeat_period_ms``). Each
  call is one tick of the loop: the heartbeat carries the tick count, so the
  supervisor tells a loop that makes progress from one that only beats (e.g.
  :meth:`Node.beating` beats from a helper thread during slow start-up work but
  advances no ticks). Heartbeats also carry the agent's turn progress
  (:meth:`Node.report_turns`), and whether the node is ready (its state is no
  longer ``starting``);
- turns SIGTERM/SIGINT into :attr:`Node.stopping` (a clean exit from its loop);
- asks the kernel to SIGTERM it when its supervisor dies (``PR_SET_PDEATHSIG``);
  a node that does not exit on it is SIGKILLed a moment later by the
  supervisor's watcher process (:mod:`realtime.reaper`), which also removes
  the run directory;
- owns its sockets: everything registered with :meth:`Node.own` is closed by
  :meth:`Node.close`, also on exceptions (use ``with Node(...) as node:``).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any, Literal, Protocol

from realtime.bus import Publisher
from realtime.endpoints import RunDirectory
from realtime.messages import Heartbeat

__all__ = ["HEARTBEAT_ENV", "NAME_ENV", "SUPERVISOR_PID_ENV", "Node", "StopOnNode", "TurnProgress",
           "node_main"]

NAME_ENV = "RTAGENT_NODE_NAME"
HEARTBEAT_ENV = "RTAGENT_HEARTBEAT_ENDPOINT"
SUPERVISOR_PID_ENV = "RTAGENT_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1

NodeState = Literal["starting", "running", "degraded", "stopping"]
#: ``(turn_started_ns, turns_ended)``: the running turn's start (0: none), turns ended.
TurnProgress = tuple[int, int]


class _Closable(Protocol):
    def close(self) -> None: ...


def _die_with_parent(parent_pid: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class Node:
    def __init__(
        self,
        name: str,
        *,
        run_dir: RunDirectory | None = None,
        heartbeat_endpoint: str | None = None,
        heartbeat_period_ms: float = 200.0,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.name = name
        self.pid = os.getpid()
        self.run_dir = run_dir or RunDirectory.from_env()
        self.clock_ns = clock_ns
        self.heartbeat_period_ns = int(heartbeat_period_ms * 1e6)
        self.counters: dict[str, int] = {}
        self.state: NodeState = "starting"
        self._stop = threading.Event()
        self._owned: list[_Closable] = []
        self._last_beat_ns: int | None = None
        self.ticks = 0
        self._turns: Callable[[], TurnProgress] | None = None
        self._old_handlers: dict[int, Any] = {}
        self._hb: Publisher | None = None
        if heartbeat_endpoint:
            self._hb = self.own(Publisher(heartbeat_endpoint, source=name, bind=False))

    @classmethod
    def from_env(cls, default_name: str = "node", **kw: Any) -> Node:
        """A node configured by its supervisor's environment (works standalone too)."""
        supervisor = os.environ.get(SUPERVISOR_PID_ENV)
        if supervisor and supervisor.isdigit():
            _die_with_parent(int(supervisor))
        return cls(
            os.environ.get(NAME_ENV, default_name),
            heartbeat_endpoint=os.environ.get(HEARTBEAT_ENV) or None,
            **kw,
        )

    # ------------------------------------------------------------ ownership, signals

    def own(self, thing: Any) -> Any:
        """Register something with ``close()``; it is closed (last first) on shutdown."""
        self._owned.append(thing)
        return thing

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT set :attr:`stopping` (main thread only)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        self._stop.set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``, waking early on stop; ``True`` if stopping."""
        return self._stop.wait(timeout_s)

    # ------------------------------------------------------------ heartbeats

    def beat(self, state: NodeState = "running", *, force: bool = False) -> bool:
        """One tick of the node's loop: counts it, and publishes a heartbeat if the
        period has passed (or ``force``); ``True`` if sent."""
        self.state = state
        self.ticks += 1
        if self._hb is None:
            return False
        now = self.clock_ns()
        last = self._last_beat_ns
        if not force and last is not None and now - last < self.heartbeat_period_ns:
            return False
        self._publish(now)
        return True

    def report_turns(self, progress: Callable[[], TurnProgress]) -> None:
        """Put the agent's progress in every heartbeat: ``progress()`` returns
        ``(turn_started_ns, turns_ended)`` on this node's clock (e.g. ``Agent.progress``),
        so the supervisor can restart a node whose turn runs past its timeout."""
        self._turns = progress

    def _publish(self, now: int) -> None:
        assert self._hb is not None
        self._last_beat_ns = now
        started, ended = self._turns() if self._turns is not None else (0, 0)
        hb = Heartbeat(node=self.name, pid=self.pid, state=self.state, t_ns=now,
                       counters=dict(self.counters), ticks=self.ticks,
                       turn_started_ns=started, turns_ended=ended)
        self._hb.publish(hb, topic=f"hb/{self.name}")

    @contextlib.contextmanager
    def beating(self, period_s: float = 0.5) -> Iterator[None]:
        """Heartbeats from a helper thread while the caller does slow start-up work
        (loading a model takes seconds under load). They say the process lives, not
        that it progresses: they advance no ticks and keep the state (``starting``
        until the caller's first ``beat("running")``), so the supervisor still holds
        the node to its start-up grace. The caller must not beat meanwhile: one
        socket, one thread at a time."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(period_s):
                if self._hb is not None:
                    self._publish(self.clock_ns())

        thread = threading.Thread(target=beat, name="load-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        if self._hb is not None and not self._hb.sock.closed:
            self.beat("stopping", force=True)
        while self._owned:
            thing = self._owned.pop()
            with contextlib.suppress(Exception):  # closing the rest matters more
                thing.close()
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()
        self.run_dir.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StopOnNode:
    """Adapts a :class:`Node` to a loop's ``stop_event`` (``is_set``)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def is_set(self) -> bool:
        return self.node.stopping


def node_main(prog: str, runners: Mapping[str, Callable[[Any, Node], None]],
              config_from_json: Callable[[str], Any], argv: list[str] | None = None) -> int:
    """``python -m PROG NAME CONFIG_JSON``: one process of a demo, run as node ``NAME``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in runners:
        print(f"usage: python -m {prog} {{{','.join(runners)}}} CONFIG_JSON", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format=f"[{argv[0]}] %(message)s")
    cfg = config_from_json(argv[1])
    with Node.from_env(argv[0]) as node:
        node.install_signal_handlers()
        node.beat("starting", force=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches every process
            runners[argv[0]](cfg, node)
    return 0
