"""A decoder in its own process, so the deadline loop's process keeps the GIL to itself.

The simpletool decoder does Python work between llama.cpp passes (the call
grammar, sampling over the logits), so on a thread of the decision process it
held the GIL for milliseconds at a time: the loop's thread, woken for its
release, waited for it (lateness p99 about the 5 ms switch interval).
:class:`DecoderProcess` runs the decoder in a spawned child and speaks to it over
a pipe. It is a :class:`models.decoder.Decoder`: ``decode_stream`` sends the
context and tools and yields each call as soon as the child has decoded it, so
the agent's pipeline (first call running while later ones decode) is unchanged;
the thread that waits for a call waits in ``recv``, without the GIL.

One decode at a time (a llama.cpp context is not thread-safe, and the agent
decodes on one thread anyway). The child ends when the pipe closes (its parent
exited or was killed: it also asks the kernel for SIGKILL when the parent dies).
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from control.tools import ToolCall, ToolSpec
from realtime.errors import RtAgentError

__all__ = ["DecodeCounters", "DecoderProcess"]

_PR_SET_PDEATHSIG = 1


@dataclass
class DecodeCounters:
    """What the last decode cost, as the in-process decoders expose it (``stats``)
    and the forward passes so far (``ctx.forward_passes``): the agent's trace
    spans read them."""

    prompt_tokens: int = 0
    prompt_evaluated: int = 0
    sampled: int = 0
    forward_passes: int = 0


class DecoderProcess:
    """A :class:`models.decoder.Decoder` built by ``factory`` in a child process.

    ``factory``: a picklable callable (a module-level function, or a
    ``functools.partial`` of one) returning the decoder; it runs in the child.
    The constructor waits until the child has built it (``start_timeout_s``) and
    raises :class:`RtAgentError` with the child's error if it could not.
    """

    def __init__(self, factory: Callable[[], Any], *, start_timeout_s: float = 600.0) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe(duplex=True)
        self._proc = ctx.Process(target=_serve, args=(child_conn, factory), daemon=True,
                                 name="decoder")
        self._proc.start()
        child_conn.close()  # only the child holds its end: its death reads as EOF here
        self._lock = threading.Lock()
        self._closed = False
        self.stats = DecodeCounters()
        self.ctx = self.stats  # ``ctx.forward_passes``, as LlamaContext has it
        if not self._conn.poll(start_timeout_s):
            self.close()
            raise RtAgentError(f"the decoder process did not start in {start_timeout_s:.0f} s")
        kind, value = self._recv()
        if kind != "ready":
            self.close()
            raise RtAgentError(f"the decoder process could not load the model: {value}")
        self.name: str = value

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def decode(self, context: Any, tools: Sequence[ToolSpec]) -> Any:
        """One whole decode (a :class:`models.decoder.DecodeResult`)."""
        with self._busy():
            self._conn.send(("decode", context, list(tools)))
            kind, value = self._recv()
            if kind == "raise":
                raise value
            result, counters = value
            self._note(counters)
            return result

    def decode_stream(self, context: Any, tools: Sequence[ToolSpec]) -> Iterator[ToolCall]:
        """Each call as soon as the child has decoded it (the request is sent on the
        first ``next``). Closed early, it still reads the rest of the answer, so the
        pipe is ready for the next decode."""
        with self._busy():
            self._conn.send(("stream", context, list(tools)))
            done = False
            try:
                while True:
                    kind, value = self._recv()
                    if kind == "call":
                        yield value
                    elif kind == "end":
                        done = True
                        self._note(value)
                        return
                    else:  # "raise": the child's exception, the stream is over
                        done = True
                        raise value
            finally:
                while not done:
                    kind, value = self._recv()
                    done = kind in ("end", "raise")

    @contextmanager
    def _busy(self) -> Iterator[None]:
        if self._closed:
            raise RtAgentError("the decoder process is closed")
        if not self._lock.acquire(blocking=False):
            raise RtAgentError("the decoder process is decoding already: one decode at a time")
        try:
            yield
        finally:
            self._lock.release()

    def _recv(self) -> tuple[str, Any]:
        try:
            msg: tuple[str, Any] = self._conn.recv()
        except (EOFError, OSError) as exc:
            code = self._proc.exitcode
            raise RtAgentError(f"the decoder process died (exit code {code}); its last "
                               "decode is lost") from exc
        return msg

    def _note(self, counters: Mapping[str, int]) -> None:
        for key, value in counters.items():
            setattr(self.stats, key, value)

    def close(self) -> None:
        """Ask the child to free the model and exit (killed if it does not, in 5 s)."""
        if self._closed:
            return
        self._closed = True
        with suppress(OSError, ValueError):
            self._conn.send(("close", None, None))
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=5)
        self._conn.close()

    def __enter__(self) -> DecoderProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the child -------------------------------------------------------------------------
def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _counters(decoder: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    stats = getattr(decoder, "stats", None)
    for key, attr in (("prompt_tokens", "prompt_tokens"), ("prompt_evaluated", "prompt_evaluated"),
                      ("sampled", "sampled")):
        v = getattr(stats, attr, None)
        if isinstance(v, int):
            out[key] = v
    passes = getattr(getattr(decoder, "ctx", None), "forward_passes", None)
    if isinstance(passes, int):
        out["forward_passes"] = passes
    return out


def _picklable(exc: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RtAgentError(f"{type(exc).__name__}: {exc}")
    return exc


def _serve(conn: Any, factory: Callable[[], Any]) -> None:
    """The child: build the decoder, then answer requests until ``close`` or EOF."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        decoder = factory()
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", str(getattr(decoder, "name", type(decoder).__name__))))
    try:
        while True:
            try:
                kind, context, tools = conn.recv()
            except (EOFError, OSError):
                return
            if kind == "close":
                return
            try:
                if kind == "stream":
                    for call in decoder.decode_stream(context, tools):
                        conn.send(("call", call))
                    conn.send(("end", _counters(decoder)))
                else:
                    conn.send(("result", (decoder.decode(context, tools), _counters(decoder))))
            except (BrokenPipeError, EOFError):
                return
            except Exception as exc:  # the decode failed: the parent raises it
                conn.send(("raise", _picklable(exc)))
    finally:
        close = getattr(decoder, "close", None)
        if close is not None:
            close()
