"""Objects in child processes (control.offload): calls, streams, errors, a dead child,
and the decoder proxy as the agent uses it (no model: a scripted decoder)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial

import pytest

from control.offload import DecoderProcess, WorkerProcess
from control.tools import ToolCall
from realtime.errors import ConfigError, RtAgentError


class Echo:
    """Lives in the child."""

    name = "echo"

    def __init__(self, base: int = 0) -> None:
        self.base = base
        self.pid = os.getpid()

    def add(self, a: int, b: int = 0) -> int:
        return self.base + a + b

    def count(self, n: int) -> Iterator[int]:
        yield from range(n)

    def fail(self) -> None:
        raise ConfigError("asked to fail: try another value")

    def die(self) -> None:
        os._exit(3)


class ScriptedDecoder:
    """Answers every decode with the same calls, counting like SimpleToolDecoder does."""

    name = "scripted"

    def __init__(self) -> None:
        self.stats = type("Stats", (), {"prompt_tokens": 0, "prompt_evaluated": 0, "sampled": 0})()

    def decode_stream(self, context: object, tools: object) -> Iterator[ToolCall]:
        self.stats.prompt_tokens += 10
        yield ToolCall("point_at", {"object": "red_cube"})
        yield ToolCall("go_home", {})

    def close(self) -> None:
        pass


def _base(obj: Echo) -> int:
    return obj.base


def _broken() -> Echo:
    raise ValueError("no model here")


@pytest.fixture
def echo() -> Iterator[WorkerProcess]:
    w = WorkerProcess(partial(Echo, 5), label="echo", state=_base)
    yield w
    w.close()


def test_calls_run_in_the_child_and_return_their_values(echo: WorkerProcess) -> None:
    assert echo.name == "echo"
    assert echo.call("add", 1, b=2) == 8
    assert echo.get("pid") == echo.pid != os.getpid()
    assert echo.state == 5


def test_a_stream_yields_items_and_one_closed_early_leaves_the_pipe_usable(
        echo: WorkerProcess) -> None:
    assert list(echo.stream("count", 3)) == [0, 1, 2]
    it = echo.stream("count", 100)
    assert next(it) == 0
    it.close()  # the other 99 are read and dropped
    assert echo.call("add", 1) == 6


def test_the_childs_exception_is_raised_here(echo: WorkerProcess) -> None:
    with pytest.raises(ConfigError, match="asked to fail"):
        echo.call("fail")
    assert echo.call("add", 0) == 5  # still serving


def test_a_dead_child_is_an_error_not_a_hang(echo: WorkerProcess) -> None:
    with pytest.raises(RtAgentError, match="echo process died"):
        echo.call("die")


def test_a_factory_that_fails_says_why() -> None:
    with pytest.raises(RtAgentError, match="could not start: ValueError: no model here"):
        WorkerProcess(_broken, label="broken")


def test_the_decoder_proxy_streams_calls_and_reports_counters() -> None:
    with DecoderProcess(ScriptedDecoder) as decoder:
        assert decoder.name == "scripted" and decoder.pid != os.getpid()
        calls = list(decoder.decode_stream("context", []))
        assert [c.name for c in calls] == ["point_at", "go_home"]
        assert decoder.stats.prompt_tokens == 10
        list(decoder.decode_stream("context", []))
        assert decoder.stats.prompt_tokens == 20
    with pytest.raises(RtAgentError, match="closed"):
        list(decoder.decode_stream("context", []))
