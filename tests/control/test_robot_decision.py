"""The robot demo's decision on virtual time, with fake sockets and a scripted decoder."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from control.robot_decision import DecisionPorts, RobotDecision
from control.tools import ToolCall
from realtime import messages as m
from realtime.bus import Latest
from realtime.clock import FakeClock
from sim_envs.tabletop.config import WORLD_MAX_AGE_MS, RobotDemoConfig
from sim_envs.tabletop.perception import GripperState, ObjectState, WorldState
from sim_envs.tabletop.scene import HOME_Q
from sim_envs.tabletop.wire import world_to_msg

AWAY_Q = tuple(q + 0.4 for q in HOME_Q)  # far enough from home for go_home to move


class FakeWorldFeed:
    """Latest-value semantics of LatestValueSubscriber, aged on the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._held: tuple[m.WorldState, int] | None = None
        self._unread = False

    def send(self, msg: m.WorldState) -> None:
        self._held, self._unread = (msg, self.clock.now_ns()), True

    def read_latest(self, max_age_ms: float, topic: str | None = None) -> Latest[m.WorldState] | None:
        if self._held is None:
            return None
        msg, received_ns = self._held
        age_ms = (self.clock.now_ns() - received_ns) / 1e6
        if age_ms > max_age_ms:
            self._held, self._unread = None, False
            return None
        new, self._unread = self._unread, False
        return Latest(msg, age_ms, "world", received_ns, new)


class FakeSink:
    def __init__(self) -> None:
        self.sent: list[tuple[str | None, m.Message]] = []

    def publish(self, msg: m.Message, topic: str | None = None) -> None:
        self.sent.append((topic, msg))


class FakeControl:
    """Serves queued requests one per tick, as the ReplyServer does."""

    def __init__(self) -> None:
        self.requests: list[m.ToolRequest] = []
        self.replies: list[m.ToolReply] = []

    def serve_once(self, handler: Callable[[m.ToolRequest], m.ToolReply],
                   timeout_ms: float = 100.0) -> bool:
        if not self.requests:
            return False
        self.replies.append(handler(self.requests.pop(0)))
        return True


class ScriptedDecoder:
    """Answers every decode with the same calls (no model)."""

    name = "scripted"

    def __init__(self, calls: list[ToolCall]) -> None:
        self.calls = calls
        self.contexts: list[object] = []

    def decode_stream(self, context: object, tools: object) -> Iterator[ToolCall]:
        self.contexts.append(context)
        yield from self.calls

    def close(self) -> None:
        pass


def _world(arm_q: tuple[float, ...], version: int = 1) -> m.WorldState:
    objects = {"red_cube": ObjectState("red_cube", "red", (0.5, 0.1, 0.02), 0.0, True, 40, 0.0),
               "bin": ObjectState("bin", "grey", (0.5, -0.3, 0.0), 0.0, True, 400, 0.0)}
    world = WorldState(objects, GripperState((0.4, 0.0, 0.4), 0.08, None), arm_q, 0.0,
                       seq=version, version=version)
    return world_to_msg(world)


class Rig:
    def __init__(self, decoder: ScriptedDecoder) -> None:
        self.clock = FakeClock(start_ns=1_000_000_000)
        self.feed, self.commands, self.events = FakeWorldFeed(self.clock), FakeSink(), FakeSink()
        self.control = FakeControl()
        self.counters: dict[str, int] = {}
        cfg = RobotDemoConfig(speculation=False, foresight=False)
        self.decision = RobotDecision(cfg, self.clock, decoder,
                                      DecisionPorts(self.feed, self.commands, self.events,
                                                    self.control), counters=self.counters)

    def step(self) -> m.Command:
        self.decision.loop.step()
        topic, cmd = self.commands.sent[-1]
        assert topic == "cmd" and isinstance(cmd, m.Command)
        return cmd

    def ask(self, name: str, **args: object) -> m.ToolReply:
        self.control.requests.append(m.ToolRequest(name=name, arguments_json=json.dumps(args)))
        self.step()
        return self.control.replies[-1]

    def turns(self) -> list[dict[str, Any]]:
        return [json.loads(e.text) for t, e in self.events.sent if t == "turn"]  # type: ignore[attr-defined]


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig(ScriptedDecoder([ToolCall("go_home", {})]))
    yield r
    r.decision.close()


def _until(rig: Rig, done: Callable[[m.Command], bool], world: m.WorldState | None,
           timeout_s: float = 10.0) -> m.Command:
    """Tick (perception sending ``world`` each tick) until ``done``; the agent runs on its
    own thread in real time, so give it a moment between ticks."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if world is not None:
            rig.feed.send(world)
        cmd = rig.step()
        if done(cmd):
            return cmd
        time.sleep(0.002)
    raise AssertionError("the decision never got there")


def test_it_holds_and_refuses_instructions_until_perception_sends_a_world(rig: Rig) -> None:
    for _ in range(5):
        assert rig.step().mode == "hold"
    reply = rig.ask("instruct", text="go home")
    assert not reply.ok and "no world state" in reply.error
    assert rig.decision.agent.busy is False


def test_one_command_per_tick_numbered_with_a_deadline_of_two_periods(rig: Rig) -> None:
    for _ in range(6):
        rig.feed.send(_world(AWAY_Q))
        rig.step()
    cmds = [c for _, c in rig.commands.sent]
    assert [c.tick for c in cmds] == list(range(6))  # type: ignore[attr-defined]
    period_ns = rig.decision.loop.options.period_ns
    releases = rig.decision.loop.history.arrays()[0]
    assert [c.deadline_ns for c in cmds] == [r + 2 * period_ns for r in releases]  # type: ignore[attr-defined]
    assert rig.counters["ticks"] == 5


def test_an_instruction_moves_the_arm_and_a_stale_world_holds_it(rig: Rig) -> None:
    away = _world(AWAY_Q)
    rig.feed.send(away)
    rig.step()
    reply = rig.ask("instruct", text="go home")
    assert reply.ok and json.loads(reply.value_json) == {"turn": 1}
    move = _until(rig, lambda c: c.mode == "move", away)
    assert move.joint_target_rad is not None  # go_home runs in joint space
    # Perception goes quiet: once the last world is older than it may be, the arm holds,
    # though the skill is still running.
    ticks_to_stale = int(WORLD_MAX_AGE_MS / rig.decision.loop.options.period_ms) + 1
    modes = [rig.step().mode for _ in range(ticks_to_stale + 1)]
    assert modes[0] == "move" and modes[-1] == "hold"
    assert rig.decision.runner.busy
    # The arm reaches home (as perception now sees it): the turn ends and is published.
    _until(rig, lambda c: bool(rig.turns()), _world(HOME_Q, version=2))
    (turn,) = rig.turns()
    assert turn["ok"] is True and [c["name"] for c in turn["calls"]] == ["go_home"]
    stats = json.loads(rig.ask("stats").value_json)
    assert stats["turns"] == [turn] and stats["loop"]["ticks"] > 0


def test_unknown_requests_say_what_is_expected(rig: Rig) -> None:
    reply = rig.ask("dance")
    assert not reply.ok and "expected instruct, stats or cancel" in reply.error
