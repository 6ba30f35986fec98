"""The asyncio side of the bus on uvloop and on the default loop, over real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from realtime.bus import Publisher, RequestTimeoutError
from realtime.bus_async import (
    AsyncLatestValueSubscriber,
    AsyncReplyServer,
    AsyncRequestClient,
    AsyncSubscriber,
)
from realtime.endpoints import RunDirectory
from realtime.messages import ToolReply, ToolRequest, Transcript, WorldState

NODES = str(Path(__file__).resolve().parents[1] / "helpers" / "bus_nodes.py")
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        with asyncio.Runner(loop_factory=LOOPS[request.param]) as r:
            return r.run(asyncio.wait_for(coro, 60))
    return runner


@pytest.fixture
def run_dir() -> Iterator[RunDirectory]:
    with RunDirectory() as d:
        yield d


async def publish_until(pub: Publisher, make: Callable[[], Any], done: asyncio.Event) -> None:
    while not done.is_set():
        pub.publish(make())
        await asyncio.sleep(0.01)


def test_subscribers(run: Any, run_dir: RunDirectory) -> None:
    async def main() -> None:
        with Publisher(run_dir.endpoint("t"), source="stt") as pub, \
                AsyncSubscriber(run_dir.endpoint("t"), ["Transcript"]) as sub, \
                AsyncLatestValueSubscriber(run_dir.endpoint("t"), ["WorldState"]) as latest:
            assert await sub.arecv(timeout_ms=20) is None
            done = asyncio.Event()
            texts = iter(f"word {i}" for i in range(10_000))
            feeder = asyncio.create_task(publish_until(
                pub, lambda: Transcript(text=next(texts), utterance_id=1), done))
            feeder2 = asyncio.create_task(publish_until(pub, lambda: WorldState(version=1), done))
            try:
                first = await sub.arecv(timeout_ms=30_000)
                second = await sub.arecv(timeout_ms=30_000)
                got = await latest.await_latest(max_age_ms=30_000, timeout_ms=30_000)
            finally:
                done.set()
                await asyncio.gather(feeder, feeder2)
            assert first is not None and second is not None and got is not None
            assert isinstance(first.message, Transcript) and isinstance(second.message, Transcript)
            assert second.message.seq > first.message.seq  # every message, in order
            assert isinstance(got.message, WorldState) and got.new
    run(main())


def test_concurrent_calls_are_served_concurrently(run: Any, run_dir: RunDirectory) -> None:
    async def main() -> None:
        in_flight, most = 0, 0
        release = asyncio.Event()

        async def handler(req: ToolRequest) -> ToolReply:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            if most == 5:
                release.set()
            await release.wait()  # every call waits until all five run at once
            in_flight -= 1
            if req.name == "boom":
                raise ValueError("bad argument")
            return ToolReply(value_json=req.arguments_json)

        with AsyncReplyServer(run_dir.endpoint("tools"), source="tools") as srv, \
                AsyncRequestClient(run_dir.endpoint("tools"), source="dec") as cli:
            server = asyncio.create_task(srv.aserve(handler, max_concurrency=5))
            try:
                names = ["echo"] * 4 + ["boom"]
                replies = await asyncio.gather(*(
                    cli.acall(ToolRequest(name=n, arguments_json=str(i)), timeout_ms=30_000)
                    for i, n in enumerate(names)))
            finally:
                server.cancel()
                await asyncio.gather(server, return_exceptions=True)
            assert most == 5
            assert [r.value_json for r in replies[:4]] == ["0", "1", "2", "3"]
            assert not replies[4].ok and replies[4].error == "ValueError: bad argument"
            with pytest.raises(RequestTimeoutError):  # nobody serves any more
                await cli.acall(ToolRequest(name="echo"), timeout_ms=50)
    run(main())


def test_async_client_against_a_server_process(run: Any, run_dir: RunDirectory) -> None:
    env = {**os.environ, "RTAGENT_RUN_DIR": str(run_dir.path), "RTAGENT_NODE_NAME": "echo"}

    async def main() -> list[ToolReply]:
        with AsyncRequestClient(run_dir.endpoint("tools"), source="dec") as cli:
            return await asyncio.gather(*(cli.acall(
                ToolRequest(name="sum", arguments_json=json.dumps({"values": [i, 1]})),
                timeout_ms=30_000) for i in range(8)))

    with subprocess.Popen([sys.executable, NODES, "echo"], env=env) as proc:
        try:
            replies = run(main())
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert [json.loads(r.value_json) for r in replies] == [i + 1 for i in range(8)]
