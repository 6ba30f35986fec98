"""The real actuation process under a stream of bad commands, over real sockets.

The test plays the simulator (joint states on ``sensors``) and the decision process
(commands on ``commands``) and listens to ``targets`` and the heartbeats. NaN, infinite
and out-of-range numbers are dropped at decode; finite commands the arm cannot act on
(out of reach, malformed) are refused by the actuator. Either way the arm holds, the
loop keeps ticking without a deadline miss, and a good command moves the arm again.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from realtime.bus import LatestValueSubscriber, Publisher, Subscriber
from realtime.endpoints import RunDirectory
from realtime.messages import Command, Heartbeat, JointState, JointTargets, Message
from sim_envs.tabletop.scene import HOME_Q

ROOT = Path(__file__).resolve().parents[3]
#: The module whose ``actuation`` node this test starts (``python -m MODULE actuation CONFIG``).
ACTUATION_MODULE = "sim_envs.tabletop.nodes"
ACTUATION_HZ = 20.0  # a wide deadline: a miss then means a stall, not a busy machine
M = TypeVar("M", bound=Message)

NAN, INF = math.nan, math.inf
GOOD_A = Command(mode="move", target_position_m=(0.45, 0.1, 0.3), gripper_width_m=0.08)
GOOD_B = Command(mode="move", target_position_m=(0.5, -0.1, 0.25), gripper_width_m=0.08)
DROPPED_AT_DECODE = [
    Command(mode="move", target_position_m=(NAN, INF, 0.0)),
    Command(mode="move", target_position_m=(INF, 0.0, 0.2)),
    Command(mode="move", target_position_m=(5.0, 0.0, 0.2)),
    Command(mode="move", target_position_m=(0.5, 0.0, 0.2), yaw_rad=NAN),
    Command(mode="move", target_position_m=(0.5, 0.0, 0.2), gripper_width_m=NAN),
    Command(mode="move", joint_target_rad=[NAN] * 7),
    Command(mode="move", target_position_m=(0.5, 0.0, 0.2), seq=2**64 - 1),
    Command(mode="move", target_position_m=(0.5, 0.0, 0.2), t_ns=-1),
]
REFUSED_BY_ACTUATION = [
    Command(mode="move", target_position_m=(1.5, 1.5, 1.5)),  # finite, beyond the arm's reach
    Command(mode="move", joint_target_rad=[0.1, 0.2, 0.3]),   # 3 angles for a 7-joint arm
    Command(mode="move"),                                     # a move to nowhere
]


def start_actuation(run_dir: RunDirectory, heartbeat_endpoint: str) -> subprocess.Popen[bytes]:
    """The actuation node as the robot session starts it, in ``run_dir``."""
    env = {**os.environ, "RTAGENT_RUN_DIR": str(run_dir.path), "RTAGENT_NODE_NAME": "actuation",
           "RTAGENT_HEARTBEAT_ENDPOINT": heartbeat_endpoint,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    config = json.dumps({"actuation_hz": ACTUATION_HZ, "watchdog_ms": 300.0})
    return subprocess.Popen([sys.executable, "-m", ACTUATION_MODULE, "actuation", config],
                            env=env, cwd=ROOT)


class Rig:
    """The sockets around the actuation process."""

    def __init__(self, run_dir: RunDirectory) -> None:
        self.sensors = Publisher(run_dir.endpoint("sensors"), source="sim")
        self.commands = Publisher(run_dir.endpoint("commands"), source="decision")
        self.targets = Subscriber(run_dir.endpoint("targets"), ["targets"])
        self.heartbeats = LatestValueSubscriber(run_dir.endpoint("heartbeat"), ["hb/"],
                                                types=(Heartbeat,), bind=True)
        self.joints = JointState(positions_rad=[*HOME_Q, 0.04, 0.04], velocities_rad_s=[0.0] * 9)
        self.got: list[tuple[float, JointTargets]] = []

    def run(self, seconds: float, command: Callable[[int], Command | None]) -> list[JointTargets]:
        """Publish joints every 10 ms and ``command(i)`` every 20 ms; the targets that came."""
        start = len(self.got)
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            self.sensors.publish(_copy(self.joints), topic="joints")
            cmd = command(i) if i % 2 == 0 else None
            if cmd is not None:
                self.commands.publish(_copy(cmd), topic="cmd")
            i += 1
            self.heartbeats.poll()  # a bound SUB attaches its peers (and subscribes) when used
            deadline = time.monotonic() + 0.01
            while (left := deadline - time.monotonic()) > 0:
                got = self.targets.recv(timeout_ms=left * 1000)
                if got is not None and isinstance(got.message, JointTargets):
                    self.got.append((time.monotonic(), got.message))
        return [t for _, t in self.got[start:]]

    def counters(self) -> dict[str, int]:
        hb = self.heartbeats.read_latest(max_age_ms=60_000, topic="hb/actuation")
        assert hb is not None and isinstance(hb.message, Heartbeat), \
            f"no heartbeat from actuation: {self.heartbeats.stats.as_dict()}"
        return dict(hb.message.counters)

    def close(self) -> None:
        for sock in (self.sensors, self.commands, self.targets, self.heartbeats):
            sock.close()


def _copy(msg: M) -> M:
    """A fresh message each send (the publisher stamps seq and t_ns where they are 0)."""
    return type(msg)(**{f: getattr(msg, f) for f in msg.__struct_fields__})


@pytest.fixture
def rig() -> Iterator[Rig]:
    with RunDirectory() as run_dir:
        rig = Rig(run_dir)
        proc = start_actuation(run_dir, run_dir.endpoint("heartbeat"))
        try:
            yield rig
        finally:
            proc.terminate()
            code = proc.wait(timeout=30)
            rig.close()
        assert code == 0, f"actuation exited with {code}"


def _still(targets: list[JointTargets]) -> bool:
    return all(t.positions_rad == targets[0].positions_rad for t in targets)


def test_bad_commands_are_dropped_or_refused_and_the_arm_holds_without_a_miss(rig: Rig) -> None:
    end = time.monotonic() + 90
    while not rig.run(0.1, lambda i: GOOD_A):  # the process is up once targets come
        assert time.monotonic() < end, "the actuation process never published targets"
    moving = rig.run(1.0, lambda i: GOOD_A)
    assert not _still(moving) and not moving[-1].held

    bad = [*DROPPED_AT_DECODE, *REFUSED_BY_ACTUATION]
    stream = rig.run(2.0, lambda i: bad[(i // 2) % len(bad)])
    settled = stream[len(stream) // 4:]  # after the first refusals and the watchdog
    assert settled and all(t.held for t in settled) and _still(settled)
    assert all(math.isfinite(q) for t in stream for q in t.positions_rad)

    again = rig.run(1.0, lambda i: GOOD_B)
    assert not again[-1].held and not _still(again)

    counters = rig.counters()
    assert counters.get("cmd_dropped_out_of_range", 0) > 0, counters
    for reason in ("unreachable", "bad_joint_target", "no_target"):
        assert counters.get(f"refused_{reason}", 0) > 0, counters
    assert counters["deadline_misses"] == 0, counters
    times = [t for t, _ in rig.got]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) < 1.0, f"the loop stalled for {max(gaps):.2f} s"  # an 8 s IK would show


