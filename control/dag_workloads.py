"""Workloads for measuring parallel tool calls (`rtagent bench dag`): truly I/O-bound
tools, the plans they run, and the sequential baseline the DAG executor is held to.

Every tool call is a real request over loopback TCP to :class:`LocalService`, a
separate process that answers after the call's latency. The plans: fan-outs of k
independent calls, mixed DAGs (:data:`MIXED`: diamond, chains, write conflicts,
map-reduce), voice-demo plans over the real voice tool specs against a simulated
weather/home service (:data:`VOICE_LATENCY_MS`), and zero-latency shapes that
leave only scheduling cost (:func:`overhead_plans`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from control.plan import Plan, substitute
from control.tools import Effect, SpeculationPolicy, ToolCall, ToolRegistry, ToolResult, ToolSpec

__all__ = ["MIXED", "VOICE_LATENCY_MS", "LocalService", "fan_out", "io_calls", "io_registry",
           "overhead_plans", "overhead_registry", "run_sequential", "serve", "voice_plans",
           "voice_registry"]

_ROOT = Path(__file__).resolve().parents[1]

# (tool, resource key, latency in units of --latency-ms, input: a reference or None)
IoStep = tuple[str, str, float, Any]
R, W = "io_read", "io_write"
MIXED: dict[str, list[IoStep]] = {
    "diamond": [(R, "a", 1, None), (R, "b", 2, "$1.value"), (R, "c", 1, "$1"),
                (R, "d", 3, "$1.key"), (R, "e", 1, ["$2.value", "$3.value", "$4.got"])],
    "chains+free": [(R, "a", 1, None), (R, "b", 2, "$1.value"), (R, "c", 1, "$2.value"),
                    (R, "d", 2, None), (R, "e", 2, "$4"), (R, "f", 3, None), (R, "g", 1, None)],
    "write-conflicts": [(W, "x", 1, None), (R, "x", 1, None), (R, "x", 1, None),
                        (W, "x", 1, None), (R, "y", 2, None), (W, "y", 1, None),
                        (R, "z", 3, None)],
    "map-reduce-8": [*[(R, f"m{i}", 1, None) for i in range(8)],
                     (R, "reduce", 1, [f"${i}.value" for i in range(1, 9)])],
}



def fan_out(k: int) -> list[IoStep]:
    """``k`` independent reads of one latency unit each (the bound: k times faster)."""
    return [(R, f"k{i}", 1, None) for i in range(k)]


VOICE_LATENCY_MS = {"get_weather": 120.0, "get_time": 30.0, "web_search": 200.0,
                    "get_light_state": 40.0, "set_light": 60.0, "get_calendar": 80.0,
                    "send_message": 100.0}


class LocalService:
    """A local TCP service in its own process: ``"<ms>\\n"`` is answered after ``ms``.

    Running it in another process keeps its CPU work off the client's event loop,
    as with any real service.
    """

    def __init__(self) -> None:
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> LocalService:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from control.dag_workloads import serve; serve()",
            stdout=asyncio.subprocess.PIPE, cwd=_ROOT)
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), 30)
        if not line.strip().isdigit():
            await self.__aexit__()
            raise ConnectionError("the local benchmark service did not start")
        self.port = int(line)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for _, writer in self._idle:
            writer.close()
            await writer.wait_closed()
        self._idle.clear()
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            await self._proc.wait()

    async def request(self, ms: float) -> None:
        """One request on a kept-alive connection (opened on demand, like an HTTP pool)."""
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(f"{ms}\n".encode())
        await writer.drain()
        if await reader.readline() != b"ok\n":
            writer.close()
            raise ConnectionError("the local service gave no answer")
        self._idle.append((reader, writer))


def serve() -> None:
    """The service process: print the port, answer until terminated."""
    import signal

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                await asyncio.sleep(float(line) / 1000.0)
                writer.write(b"ok\n")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the service is stopping
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
        print(server.sockets[0].getsockname()[1], flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()

    from control.dag_executor import run_sync

    run_sync(main())


def io_registry(service: LocalService) -> ToolRegistry:
    """``io_read`` / ``io_write``: each call waits ``ms`` on the service."""
    params = {"type": "object", "required": ["key", "ms"], "additionalProperties": False,
              "properties": {"key": {"type": "string"}, "ms": {"type": "number", "minimum": 0},
                             "input": {}}}
    reg = ToolRegistry()

    async def io(key: str, ms: float, input: Any = None) -> dict[str, Any]:
        if ms > 0:
            await service.request(ms)
        return {"key": key, "value": f"{key}!", "got": input}

    reg.register(ToolSpec("io_read", "an I/O-bound read", params, Effect.READ,
                          SpeculationPolicy.ALLOW, reads=("res:{key}",)), io)
    reg.register(ToolSpec("io_write", "an I/O-bound write", params, Effect.WRITE,
                          SpeculationPolicy.DENY, writes=("res:{key}",)), io)
    return reg


def io_calls(steps: Sequence[IoStep], unit_ms: float) -> list[ToolCall]:
    """The calls of ``steps``, ids "1", "2", ...; latencies in units of ``unit_ms``."""
    out = []
    for i, (tool, key, units, inp) in enumerate(steps, 1):
        args: dict[str, Any] = {"key": key, "ms": units * unit_ms}
        if inp is not None:
            args["input"] = inp
        out.append(ToolCall(tool, args, str(i)))
    return out


def voice_registry(service: LocalService, specs: Iterable[ToolSpec]) -> ToolRegistry:
    """The voice tool ``specs`` against a simulated service (:data:`VOICE_LATENCY_MS`)."""
    reg = ToolRegistry()
    for spec in specs:
        ms = VOICE_LATENCY_MS.get(spec.name, 50.0)

        async def backend(_name: str = spec.name, _ms: float = ms, **args: Any) -> Any:
            await service.request(_ms)  # the simulated service's latency, over real TCP
            if _name == "get_weather":
                celsius = 8 + sum(map(ord, args["city"])) % 17
                return {"city": args["city"], "celsius": celsius, "sky": "clear"}
            return {"tool": _name, **args}

        reg.register(spec, backend, dry_run=backend)
    return reg


def voice_plans() -> dict[str, list[ToolCall]]:
    C = ToolCall
    return {
        "weather in Paris and in Rome": [
            C("get_weather", {"city": "Paris"}, "1"), C("get_weather", {"city": "Rome"}, "2")],
        "... and text Anna both": [
            C("get_weather", {"city": "Paris"}, "1"), C("get_weather", {"city": "Rome"}, "2"),
            C("send_message", {"contact": "Anna",
                               "text": "Paris ${1.celsius}C, Rome ${2.celsius}C"}, "3")],
        "kitchen light on, is it on, calendar": [
            C("set_light", {"room": "kitchen", "on": True}, "1"),
            C("get_light_state", {"room": "kitchen"}, "2"), C("get_calendar", {}, "3")],
    }


def overhead_registry() -> ToolRegistry:
    """``noop``: a read that returns at once, so only scheduling is left to measure."""
    reg = ToolRegistry()
    params = {"type": "object", "properties": {"key": {"type": "string"}, "input": {}}}

    async def noop(key: str, input: Any = None) -> dict[str, Any]:
        return {"key": key}

    reg.register(ToolSpec("noop", "", params, Effect.READ, SpeculationPolicy.ALLOW,
                          reads=("n:{key}",)), noop)
    return reg


def overhead_plans() -> dict[str, list[ToolCall]]:
    """Zero-latency plans of ``noop`` calls: wide, deep and very wide."""
    return {
        "fan-out 8": [ToolCall("noop", {"key": f"k{i}"}, str(i)) for i in range(1, 9)],
        "chain 8": [ToolCall("noop", {"key": f"k{i}", **({"input": f"${i - 1}.key"} if i > 1
                                                          else {})}, str(i)) for i in range(1, 9)],
        "fan-out 64": [ToolCall("noop", {"key": f"k{i}"}, str(i)) for i in range(1, 65)],
    }


async def run_sequential(calls: list[ToolCall], registry: ToolRegistry,
                         invoke: Callable[[ToolCall], Awaitable[ToolResult]]) -> None:
    """The baseline: one call after another in plan order (ReAct-style), references
    substituted, no executor."""
    plan = Plan.from_calls(calls, registry)
    values: dict[str, Any] = {}
    for planned in plan.topological_order():
        result = await invoke(substitute(planned, values, registry))
        if not result.ok:
            raise RuntimeError(f"sequential baseline failed: {result.error}")
        values[planned.id] = result.value
