"""Round trips between real processes over real IPC sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from realtime.bus import LatestValueSubscriber, Publisher, RequestClient
from realtime.endpoints import RunDirectory
from realtime.messages import CameraFrame, CameraIntrinsics, ToolRequest

NODES = str(Path(__file__).resolve().parents[1] / "helpers" / "bus_nodes.py")


@pytest.fixture
def echo() -> Iterator[RunDirectory]:
    with RunDirectory() as run_dir:
        env = {**os.environ, "RTAGENT_RUN_DIR": str(run_dir.path), "RTAGENT_NODE_NAME": "echo"}
        with subprocess.Popen([sys.executable, NODES, "echo"], env=env) as proc:
            try:
                yield run_dir
            finally:
                proc.terminate()
                assert proc.wait(timeout=30) == 0  # SIGTERM -> clean exit


def test_frames_round_trip_through_another_process(echo: RunDirectory) -> None:
    pub = Publisher(echo.endpoint("in"), source="test")
    sub = LatestValueSubscriber(echo.endpoint("out"), ["cam"])
    rng = np.random.default_rng(2)
    with pub, sub:
        received = 0
        end = time.monotonic() + 60
        while received < 3:
            assert time.monotonic() < end, "no frames came back"
            msg = CameraFrame(
                rgb=rng.integers(0, 255, (480, 640, 3), dtype=np.uint8),
                depth_m=rng.random((480, 640), dtype=np.float32),
                intrinsics=CameraIntrinsics(fx_px=600, fy_px=600, cx_px=320, cy_px=240),
                width_px=640, height_px=480,
            )
            pub.publish(msg, topic="cam")
            got = sub.wait_latest(max_age_ms=60_000, timeout_ms=200, topic="cam")
            if got is None or got.message.seq != msg.seq:
                continue  # the echo process was not subscribed yet
            back = got.message
            assert isinstance(back, CameraFrame) and back.rgb is not None
            assert back.depth_m is not None
            np.testing.assert_array_equal(back.rgb, msg.rgb)
            np.testing.assert_array_equal(back.depth_m, msg.depth_m)
            assert (back.source, back.t_ns, back.intrinsics) == ("test", msg.t_ns, msg.intrinsics)
            received += 1
        assert sub.stats.dropped == {}


def test_tool_calls_are_served_by_another_process(echo: RunDirectory) -> None:
    with RequestClient(echo.endpoint("tools"), source="decision") as cli:
        reply = cli.call(ToolRequest(name="sum", arguments_json=json.dumps({"values": [1, 2, 3]})),
                         timeout_ms=60_000)
        assert reply.ok and json.loads(reply.value_json) == 6 and reply.source == "echo"
        failed = cli.call(ToolRequest(name="fail", arguments_json="{}"), timeout_ms=10_000)
        assert not failed.ok and "asked to fail" in failed.error
