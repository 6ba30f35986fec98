"""Background load for jitter measurements (`rtagent jitter --load`).

- ``cpu``: one busy process per usable CPU;
- ``decoder``: a real llama.cpp model decoding continuously in another process
  (2 threads), its token rate counted;
- ``gil``: a pure-Python busy thread inside this process (GIL contention);
- ``none``: nothing.

Loads run in spawned processes, so this module's top level stays import-light.
Start a load before hardening the measuring thread: children stay SCHED_OTHER.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from realtime.errors import ConfigError, RtAgentError

__all__ = ["LOADS", "Load"]

LOADS = ("none", "cpu", "decoder", "gil")
_DECODER_THREADS = 2
_PROMPT = "Write a long story about a robot arm that sorts coloured blocks on a table."


def _cpu_burn(stop: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while not stop.is_set():
        for _ in range(200_000):
            pass


def _gil_burn(stop: Any) -> None:
    while not stop.is_set():
        sum(i * i for i in range(1000))


def _decoder_load(model_path: str, stop: Any, ready: Any, tokens: Any, error: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import llama_cpp

        llm = llama_cpp.Llama(model_path=model_path, n_threads=_DECODER_THREADS, verbose=False)
    except Exception as exc:  # reported by the parent
        error.value = f"{type(exc).__name__}: {exc}"[:255].encode()
        ready.set()
        return
    ready.set()
    while not stop.is_set():
        for _ in llm.create_completion(_PROMPT, max_tokens=256, stream=True, temperature=0.9):
            with tokens.get_lock():
                tokens.value += 1
            if stop.is_set():
                break


class Load:
    """A background load of ``kind`` (one of :data:`LOADS`); ``decoder`` needs the GGUF
    ``model_path``. ``start()`` returns what runs; ``stop()`` ends it (also on error)."""

    def __init__(self, kind: str, model_path: str | None = None) -> None:
        import multiprocessing as mp

        if kind not in LOADS:
            raise ConfigError(f"--load: expected one of {LOADS}, got {kind!r}")
        if kind == "decoder" and not model_path:
            raise ConfigError("--load decoder needs a GGUF model path")
        self.kind = kind
        self.ctx = mp.get_context("spawn")
        self.stop_event = self.ctx.Event()
        self.tokens = self.ctx.Value("q", 0)
        self.procs: list[Any] = []
        self.model_path = model_path
        self._t_start = 0.0
        self._tok_start = 0

    def start(self, waiting: Callable[[str], AbstractContextManager[Any]] | None = None) -> str:
        """Start the load; ``waiting(text)`` shows progress while the decoder loads."""
        if self.kind == "none":
            return "no load"
        if self.kind == "gil":
            t = threading.Thread(target=_gil_burn, args=(self.stop_event,), daemon=True)
            t.start()
            self.procs.append(t)
            return "a pure-Python busy thread in this process (holds the GIL)"
        if self.kind == "cpu":
            n = len(os.sched_getaffinity(0))
            for _ in range(n):
                p = self.ctx.Process(target=_cpu_burn, args=(self.stop_event,), daemon=True)
                p.start()
                self.procs.append(p)
            return f"{n} busy processes (one per CPU)"
        return self._start_decoder(waiting or (lambda _text: nullcontext()))

    def _start_decoder(self, waiting: Callable[[str], AbstractContextManager[Any]]) -> str:
        path = str(self.model_path)
        ready = self.ctx.Event()
        error: Any = self.ctx.Array("c", 256)  # a char array: .value is its bytes
        p = self.ctx.Process(target=_decoder_load, daemon=True,
                             args=(path, self.stop_event, ready, self.tokens, error))
        p.start()
        self.procs.append(p)
        with waiting("loading the decoder load (llama.cpp)..."):
            ok = ready.wait(timeout=120)
            deadline = time.monotonic() + 60  # wait for the first tokens too
            while ok and not error.value and self.tokens.value < 8:
                if time.monotonic() > deadline or not p.is_alive():
                    break
                time.sleep(0.05)
        if not ok or error.value or self.tokens.value == 0:
            why = error.value.decode(errors="replace") or "it produced no tokens"
            self.stop()
            raise RtAgentError(f"--load decoder could not start llama.cpp ({why}); "
                               "run `rtagent doctor`, or use --load cpu")
        self._t_start, self._tok_start = time.monotonic(), self.tokens.value
        return (f"llama.cpp decoding {os.path.basename(path)} continuously "
                f"({_DECODER_THREADS} threads)")

    def rate(self) -> str:
        if self.kind != "decoder" or not self._t_start:
            return ""
        dt = time.monotonic() - self._t_start
        return f"{(self.tokens.value - self._tok_start) / dt:.1f} tok/s during the run"

    def stop(self) -> None:
        self.stop_event.set()
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive() and hasattr(p, "terminate"):
                p.terminate()
                p.join(timeout=5)
        self.procs.clear()
