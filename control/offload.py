"""Work that holds the GIL for long, moved out of the deadline loop's process.

A Python thread that holds the GIL delays the loop's thread however high its
priority: woken for its release, the loop waits until the holder lets go, and a
holder inside a long C call (a pybullet IK solve: up to ~8 ms) or descheduled by
the kernel on a busy machine does not let go for milliseconds. In the robot
demo's decision process two such workers ran beside the loop: the decoder (Python
between llama.cpp passes) and the motion planning of the robot tools (pybullet IK
and FK, called by speculation's dry runs and by the tools themselves). Here each
runs in a spawned child process, behind a proxy with the same methods; the thread
that calls it waits in ``recv`` on a pipe, without the GIL.

- :class:`WorkerProcess`: any object built by a picklable ``factory`` in a child;
  ``call`` runs one of its methods there, ``stream`` a generator method, item by
  item. One request at a time (others wait their turn); the child ends when the
  pipe closes or its parent dies (``PR_SET_PDEATHSIG``).
- :class:`DecoderProcess`: a :class:`models.decoder.Decoder` (``decode``,
  ``decode_stream`` with each call as soon as it is decoded, ``stats``).
- :class:`KinematicsProcess`: :class:`sim_envs.tabletop.kinematics.PandaKinematics`
  (``fk``, ``ik``, joint limits), for :class:`~sim_envs.tabletop.robot_tools.RobotToolBackend`.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from control.tools import ToolCall, ToolSpec
from realtime.errors import RtAgentError

__all__ = ["DecodeCounters", "DecoderProcess", "KinematicsProcess", "WorkerProcess"]

_PR_SET_PDEATHSIG = 1


class WorkerProcess:
    """An object built by ``factory()`` in a spawned child process.

    ``factory``: picklable (a class, a module-level function, a ``functools.partial``
    of one). ``state``: a picklable ``state(obj) -> value`` sent back after every
    request (``self.state``), e.g. counters. The constructor waits for the child to
    build the object (``start_timeout_s``) and raises :class:`RtAgentError` with the
    child's error if it could not. ``label`` names the child in errors.
    """

    def __init__(self, factory: Callable[[], Any], *, label: str,
                 state: Callable[[Any], Any] | None = None,
                 start_timeout_s: float = 600.0) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.label = label
        self._conn, child_conn = ctx.Pipe(duplex=True)
        self._proc = ctx.Process(target=_serve, args=(child_conn, factory, state), daemon=True,
                                 name=label)
        self._proc.start()
        child_conn.close()  # only the child holds its end: its death reads as EOF here
        self._lock = threading.Lock()
        self._closed = False
        self.state: Any = None
        if not self._conn.poll(start_timeout_s):
            self.close()
            raise RtAgentError(f"the {label} process did not start in {start_timeout_s:.0f} s")
        kind, value = self._recv()
        if kind != "ready":
            self.close()
            raise RtAgentError(f"the {label} process could not start: {value}")
        self.name: str = value

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``obj.method(*args, **kwargs)`` in the child; its exception is raised here."""
        with self._turn():
            self._conn.send(("call", method, args, kwargs))
            kind, value = self._recv()
            if kind == "raise":
                raise value
            return value

    def get(self, attribute: str) -> Any:
        """``obj.attribute`` in the child."""
        with self._turn():
            self._conn.send(("get", attribute, (), {}))
            kind, value = self._recv()
            if kind == "raise":
                raise value
            return value

    def stream(self, method: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """The items of the generator ``obj.method(...)``, each as soon as the child has it
        (the request is sent on the first ``next``). Closed early, it still reads the rest,
        so the pipe is ready for the next request."""
        with self._turn():
            self._conn.send(("stream", method, args, kwargs))
            done = False
            try:
                while True:
                    kind, value = self._recv()
                    if kind == "item":
                        yield value
                    elif kind == "end":
                        done = True
                        return
                    else:  # "raise": the child's exception ends the stream
                        done = True
                        raise value
            finally:
                while not done:
                    kind, value = self._recv()
                    done = kind in ("end", "raise")

    def _turn(self) -> Any:
        if self._closed:
            raise RtAgentError(f"the {self.label} process is closed")
        return self._lock

    def _recv(self) -> tuple[str, Any]:
        try:
            msg: tuple[str, Any, Any] = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise RtAgentError(f"the {self.label} process died (exit code "
                               f"{self._proc.exitcode}); its last request is lost") from exc
        kind, value, state = msg
        if kind != "ready":
            self.state = state
        return kind, value

    def close(self) -> None:
        """Ask the child to close the object and exit (killed if it does not, in 5 s)."""
        if self._closed:
            return
        self._closed = True
        with suppress(OSError, ValueError):
            self._conn.send(("close", "", (), {}))
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=5)
        self._conn.close()

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the decoder ------------------------------------------------------------------------
@dataclass
class DecodeCounters:
    """What the last decode cost, as the in-process decoders expose it (``stats``), and
    the forward passes so far (``ctx.forward_passes``): the agent's trace spans read them."""

    prompt_tokens: int = 0
    prompt_evaluated: int = 0
    sampled: int = 0
    forward_passes: int = 0


def _decode_counters(decoder: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    stats = getattr(decoder, "stats", None)
    for key in ("prompt_tokens", "prompt_evaluated", "sampled"):
        v = getattr(stats, key, None)
        if isinstance(v, int):
            out[key] = v
    passes = getattr(getattr(decoder, "ctx", None), "forward_passes", None)
    if isinstance(passes, int):
        out["forward_passes"] = passes
    return out


class DecoderProcess:
    """A :class:`models.decoder.Decoder` built by ``factory`` in a child process."""

    def __init__(self, factory: Callable[[], Any], *, start_timeout_s: float = 600.0) -> None:
        self.worker = WorkerProcess(factory, label="decoder", state=_decode_counters,
                                    start_timeout_s=start_timeout_s)
        self.name = self.worker.name
        self.stats = DecodeCounters()
        self.ctx = self.stats  # ``ctx.forward_passes``, as LlamaContext has it

    @property
    def pid(self) -> int | None:
        return self.worker.pid

    def decode(self, context: Any, tools: Sequence[ToolSpec]) -> Any:
        """One whole decode (a :class:`models.decoder.DecodeResult`)."""
        try:
            return self.worker.call("decode", context, list(tools))
        finally:
            self._note()

    def decode_stream(self, context: Any, tools: Sequence[ToolSpec]) -> Iterator[ToolCall]:
        """Each call as soon as the child has decoded it."""
        try:
            yield from self.worker.stream("decode_stream", context, list(tools))
        finally:
            self._note()

    def _note(self) -> None:
        counters: Mapping[str, int] = self.worker.state or {}
        for key, value in counters.items():
            setattr(self.stats, key, value)

    def close(self) -> None:
        self.worker.close()

    def __enter__(self) -> DecoderProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the robot's kinematics ---------------------------------------------------------------
def _panda_kinematics() -> Any:
    from sim_envs.tabletop.kinematics import PandaKinematics

    return PandaKinematics()


class KinematicsProcess:
    """:class:`~sim_envs.tabletop.kinematics.PandaKinematics` in a child process: ``fk``,
    ``ik`` and the joint limits, as the robot tools' motion planning uses them."""

    def __init__(self, *, start_timeout_s: float = 120.0) -> None:
        self.worker = WorkerProcess(_panda_kinematics, label="kinematics",
                                    start_timeout_s=start_timeout_s)
        self.lower = self.worker.get("lower")
        self.upper = self.worker.get("upper")
        self.max_velocity = self.worker.get("max_velocity")
        self.home = self.worker.get("home")

    def fk(self, q: Any) -> Any:
        return self.worker.call("fk", q)

    def ik(self, position: Any, orientation: Any, seed_q: Any = None, **options: Any) -> Any:
        return self.worker.call("ik", position, orientation, seed_q, **options)

    def close(self) -> None:
        self.worker.close()


# -- the child -------------------------------------------------------------------------
def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _picklable(exc: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RtAgentError(f"{type(exc).__name__}: {exc}")
    return exc


def _serve(conn: Any, factory: Callable[[], Any], state: Callable[[Any], Any] | None) -> None:
    """The child: build the object, then answer requests until ``close`` or EOF."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        obj = factory()
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}", None))
        return

    def send(kind: str, value: Any) -> None:
        conn.send((kind, value, state(obj) if state is not None else None))

    conn.send(("ready", str(getattr(obj, "name", type(obj).__name__)), None))
    try:
        while True:
            try:
                kind, name, args, kwargs = conn.recv()
            except (EOFError, OSError):
                return
            if kind == "close":
                return
            try:
                if kind == "get":
                    send("ok", getattr(obj, name))
                elif kind == "stream":
                    for item in getattr(obj, name)(*args, **kwargs):
                        send("item", item)
                    send("end", None)
                else:
                    send("ok", getattr(obj, name)(*args, **kwargs))
            except (BrokenPipeError, EOFError):
                return
            except Exception as exc:  # the request failed: the parent raises it
                send("raise", _picklable(exc))
    finally:
        close = getattr(obj, "close", None)
        if close is not None:
            close()
