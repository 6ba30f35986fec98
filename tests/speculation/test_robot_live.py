"""Live speculation in the robot's decision (fake sockets, scripted decoder, real tools):
motions start from their checked plan, which speculation runs ahead once it has seen
the instruction kind; the calls it expects are the decoder's draft."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from control.robot_decision import DecisionPorts, RobotDecision
from control.tools import ToolCall
from realtime import messages as m
from realtime.clock import FakeClock
from sim_envs.tabletop.config import RobotDemoConfig
from sim_envs.tabletop.scene import HOME_Q
from tests.control.test_robot_decision import (
    AWAY_Q,
    FakeControl,
    FakeSink,
    FakeWorldFeed,
    ScriptedDecoder,
    _world,
)


class SpecRig:
    def __init__(self, decoder: ScriptedDecoder) -> None:
        self.clock = FakeClock(start_ns=1_000_000_000)
        self.feed, self.commands, self.events = FakeWorldFeed(self.clock), FakeSink(), FakeSink()
        self.control = FakeControl()
        self.decision = RobotDecision(RobotDemoConfig(speculation=True, foresight=False),
                                      self.clock, decoder,
                                      DecisionPorts(self.feed, self.commands, self.events,
                                                    self.control))

    def ask(self, name: str, **args: object) -> m.ToolReply:
        self.control.requests.append(m.ToolRequest(name=name, arguments_json=json.dumps(args)))
        self.decision.loop.step()
        return self.control.replies[-1]

    def turn(self, text: str, start: m.WorldState, end: m.WorldState) -> dict[str, object]:
        """Instruct, tick on ``start`` until the arm moves, then on ``end`` until the turn
        is published (the agent runs on its own thread in real time)."""
        self.feed.send(start)
        self.decision.loop.step()
        n = len(self.decision.turns)
        assert self.ask("instruct", text=text).ok
        world, deadline = start, time.monotonic() + 90  # a busy machine: minutes
        while len(self.decision.turns) == n and time.monotonic() < deadline:
            self.feed.send(world)
            self.decision.loop.step()
            topic, cmd = self.commands.sent[-1]
            if cmd.mode == "move":  # type: ignore[attr-defined]
                world = end
            time.sleep(0.002)
        assert len(self.decision.turns) > n, "the turn never ended"
        return self.decision.turns[-1]


@pytest.fixture
def spec_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RTAGENT_SPEC_DIR", str(tmp_path))
    return tmp_path / "robot"


def test_the_second_turn_of_a_kind_starts_from_a_plan_run_ahead(spec_dir: Path) -> None:
    decoder = ScriptedDecoder([ToolCall("go_home", {})])
    rig = SpecRig(decoder)
    try:
        first = rig.turn("go home", _world(AWAY_Q, 1), _world(HOME_Q, 2))
        assert first["ok"] is True
        live = rig.decision.live
        assert live is not None
        live.wait_mined()
        deadline = time.monotonic() + 5
        while live.mined < 1 and time.monotonic() < deadline:  # swapped in on the agent's loop
            time.sleep(0.01)
        ex = rig.decision.speculation
        assert ex is not None and ex.metrics.served == 0  # nothing was known yet
        second = rig.turn("go back home", _world(AWAY_Q, 3), _world(HOME_Q, 4))
        assert second["ok"] is True
        m_ = ex.metrics
        assert m_.served == 1 and m_.served_by == {"pattern": 1}
        assert m_.writes_executed == 0 and m_.dry_runs == 0
        # The expected calls were the decoder's draft on the second turn only.
        assert getattr(decoder.contexts[0], "draft", None) is None
        assert getattr(decoder.contexts[1], "draft", None) == (ToolCall("go_home", {}),)
        stats = json.loads(rig.ask("stats").value_json)
        assert stats["speculation"]["hits"] + stats["speculation"]["joins"] == 1
        assert stats["speculation_live"]["recorded"] == 4  # two plans, two motions
    finally:
        rig.decision.close()
    recorded = [json.loads(x) for f in sorted(spec_dir.glob("traces-*.jsonl"))
                for x in f.read_text().splitlines()]
    assert [(d["episode"].rsplit("/", 1)[1], d["name"], d.get("speculative", False))
            for d in recorded] == [("t1", "plan_for_go_home", False), ("t1", "go_home", False),
                                   ("t2", "plan_for_go_home", True), ("t2", "go_home", False)]
    assert recorded[2]["observation"]["w0"] == "go"
    assert (spec_dir / "patterns.json").is_file()
