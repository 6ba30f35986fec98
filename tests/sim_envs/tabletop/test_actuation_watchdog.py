"""The actuation path's watchdog is the tested one (realtime.watchdog.Watchdog): a command
past its deadline or not newer than the last from its sender is not acted on, silence
holds the arm where it is, and it moves again only by the Watchdog's resume rules.
In virtual time on the actuator, then through the real actuation process."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from realtime.messages import Command
from sim_envs.tabletop.actuation import Actuator, ActuatorOptions, ArmCommand, CommandStamp
from sim_envs.tabletop.kinematics import PandaKinematics
from sim_envs.tabletop.scene import HOME_Q, JointState
from tests.sim_envs.tabletop.test_actuation_process import GOOD_A, GOOD_B, Rig, _still, rig  # noqa: F401 (fixture)

TICK_S = 0.0125  # 80 Hz
TARGET = ArmCommand(ee_position_m=(0.5, 0.0, 0.2))


@pytest.fixture(scope="module")
def kin() -> Iterator[PandaKinematics]:
    with PandaKinematics() as k:
        yield k


def _state(q: np.ndarray) -> JointState:
    return JointState(np.concatenate([q, [0.04, 0.04]]), np.zeros(9))


def _moved(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.max(np.abs(a - b)) > 1e-9)


def test_a_command_past_its_deadline_is_not_acted_on(kin: PandaKinematics) -> None:
    act = Actuator(kin, ActuatorOptions(watchdog_timeout_s=0.3))
    q0 = np.asarray(HOME_Q)
    out = act.update(_state(q0), 10.0, TARGET, CommandStamp(1, "d", deadline_s=9.99))
    out = act.update(_state(out.arm_q), 10.0 + TICK_S)
    assert out.holding and not _moved(out.arm_q, q0) and act.refused["expired"] == 1
    out = act.update(_state(out.arm_q), 10.1, TARGET, CommandStamp(2, "d", deadline_s=10.2))
    out = act.update(_state(out.arm_q), 10.1 + TICK_S)
    assert not out.holding and _moved(out.arm_q, q0)  # in time: acted on


def test_a_command_not_newer_than_the_last_from_its_sender_is_not_acted_on(
        kin: PandaKinematics) -> None:
    act = Actuator(kin, ActuatorOptions(watchdog_timeout_s=0.3))
    q0 = np.asarray(HOME_Q)
    out = act.update(_state(q0), 0.0, ArmCommand.hold_here(), CommandStamp(7, "decision-1"))
    assert out.holding
    for t in (0.05, 0.1):  # an older command re-delivered, then the same one again
        out = act.update(_state(q0), t, TARGET, CommandStamp(7 if t == 0.1 else 3, "decision-1"))
        assert out.holding and not _moved(out.arm_q, q0)
    assert act.refused["not_newer"] == 2
    out = act.update(_state(q0), 0.15, TARGET, CommandStamp(1, "decision-2"))  # restarted
    out = act.update(_state(out.arm_q), 0.15 + TICK_S)
    assert not out.holding and _moved(out.arm_q, q0)


def test_silence_holds_the_measured_pose_and_resume_takes_fresh_commands_in_a_row(
        kin: PandaKinematics) -> None:
    act = Actuator(kin, ActuatorOptions(watchdog_timeout_s=0.2, watchdog_resume_after=2))
    q = np.asarray(HOME_Q)
    out = act.update(_state(q), 0.0, TARGET, CommandStamp(1, "d"))
    t = 0.0
    while t < 0.2:
        t += TICK_S
        lagging = out.arm_q - 0.5 * (out.arm_q - q)  # the arm lags its targets
        q, out = lagging, act.update(_state(lagging), t)
        assert not out.holding
    t += 2 * TICK_S
    out = act.update(_state(q), t)
    assert out.holding and out.watchdog_tripped and act.watchdog_trips == 1
    np.testing.assert_allclose(out.arm_q, q)  # where the arm is, not where it was told to go
    out = act.update(_state(q), t + 0.05, TARGET, CommandStamp(2, "d"))
    assert out.holding  # one fresh command is not enough to move again
    out = act.update(_state(q), t + 0.1, TARGET, CommandStamp(3, "d"))
    assert not out.holding and act.watchdog.resumes == 1


def test_the_actuation_process_ignores_late_and_replayed_commands(rig: Rig) -> None:  # noqa: F811
    def in_time(cmd: Command, seq: int = 0, source: str = "") -> Command:
        return Command(mode=cmd.mode, target_position_m=cmd.target_position_m,
                       gripper_width_m=cmd.gripper_width_m, seq=seq, source=source,
                       deadline_ns=time.monotonic_ns() + 200_000_000)

    end = time.monotonic() + 90
    while not rig.run(0.1, lambda i: in_time(GOOD_A)):  # up once targets come
        assert time.monotonic() < end, "the actuation process never published targets"
    moving = rig.run(1.0, lambda i: in_time(GOOD_A))
    assert not _still(moving) and not moving[-1].held

    late = Command(mode="move", target_position_m=GOOD_B.target_position_m, deadline_ns=1)
    held = rig.run(1.5, lambda i: late)[-20:]  # past the watchdog timeout (300 ms)
    assert held and all(t.held for t in held) and _still(held)

    back = rig.run(1.0, lambda i: in_time(GOOD_A))  # fresh again: resumes, moves
    assert not back[-1].held
    replayed = rig.run(1.5, lambda i: in_time(GOOD_B, seq=5))[-20:]  # an old seq, over and over
    assert replayed and all(t.held for t in replayed) and _still(replayed)

    restarted = rig.run(1.0, lambda i: in_time(GOOD_B, seq=i + 1, source="decision-restarted"))
    assert not restarted[-1].held and not _still(restarted)  # a new sender counts from 1

    counters = rig.counters()
    assert counters.get("refused_expired", 0) > 0 and counters.get("refused_not_newer", 0) > 0
    assert counters["watchdog_trips"] == 2 and counters["watchdog_resumes"] == 2, counters
    assert counters["holds"] == 2 and counters["hold_after_ms_max"] >= 300, counters


def test_hold_watch_times_each_hold_and_sets_apart_one_after_the_sim_was_gone() -> None:
    from realtime.clock import FakeClock
    from realtime.watchdog import Watchdog, WatchdogOptions
    from sim_envs.tabletop.hold_watch import HoldWatch

    clock, ms = FakeClock(), 1_000_000
    wd, watch = Watchdog(WatchdogOptions(timeout_ms=300), clock.now_ns), HoldWatch()
    fast, still = np.full(7, 0.5), np.zeros(7)

    def tick(speeds: np.ndarray, advance_ms: float = 12.5) -> None:
        clock.advance(round(advance_ms * ms))
        wd.check()
        watch.update(wd, speeds, clock.now_ns(), sim_time_s=clock.now_ns() / 1e9)

    wd.feed(1, "d")
    for _ in range(25):  # 312.5 ms: the trip comes at the 25th tick
        tick(fast)
    tick(fast)  # still moving just after the hold ...
    tick(still)  # ... still at the next tick
    assert watch.counters() == {"holds": 1, "hold_after_ms_max": 312, "stop_ms_max": 25,
                                "holds_never_still": 0, "holds_after_no_joints": 0}
    wd.feed(2, "d"), wd.feed(3, "d")  # resumed
    tick(fast)
    tick(fast, advance_ms=4000)  # no joint states for 4 s (the sim restarted): tripped meanwhile
    assert watch.counters()["holds"] == 1 and watch.counters()["holds_after_no_joints"] == 1
