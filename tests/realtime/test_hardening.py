"""RT hardening: each step is applied or says why not, and everything is undone."""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Iterator

import pytest

from realtime.errors import ConfigError
from realtime.hardening import Hardening, HardeningOptions, probe_fifo


def test_nothing_asked_nothing_done() -> None:
    with Hardening(HardeningOptions()) as h:
        assert h.steps == []


def test_every_step_reports_and_is_undone() -> None:
    cpus = tuple(sorted(os.sched_getaffinity(0)))[:1]
    before = (os.sched_getscheduler(0), os.sched_getaffinity(0), sys.getswitchinterval(),
              os.getpriority(os.PRIO_PROCESS, 0))
    opts = HardeningOptions(fifo_priority=10, nice=5, cpus=cpus, gc_freeze=True, mlock=True,
                            switch_interval_s=0.001, timer_slack_ns=1, cpu_dma_latency_us=0)
    with Hardening(opts) as h:
        names = [s.name for s in h.steps]
        assert sorted(names) == sorted(["fifo", "nice", "affinity", "gc_freeze", "mlock",
                                        "switch_interval", "timer_slack", "cpu_dma_latency"])
        assert all(s.detail for s in h.steps)  # what it did, or why not
        if h.applied("fifo"):
            assert os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO
        else:
            assert "ulimit -r" in str(next(s for s in h.steps if s.name == "fifo"))
        if h.applied("affinity"):
            assert os.sched_getaffinity(0) == set(cpus)
        assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == pytest.approx(0.001)
        assert os.getpriority(os.PRIO_PROCESS, 0) == 5
    after = (os.sched_getscheduler(0), os.sched_getaffinity(0), sys.getswitchinterval(),
             os.getpriority(os.PRIO_PROCESS, 0))
    assert after == before
    assert gc.get_freeze_count() == 0
    h.restore()  # twice is harmless


def test_fifo_probe_says_what_to_do_when_refused() -> None:
    ok, why = probe_fifo(10)
    assert ("permitted" in why) if ok else ("ulimit -r" in why)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fifo_priority": 0}, "fifo_priority: expected 1..99"),
        ({"nice": -21}, "nice: expected -20..19"),
        ({"cpus": (9999,)}, "cpus: expected a non-empty subset"),
        ({"cpus": ()}, "cpus: expected a non-empty subset"),
        ({"switch_interval_s": 0}, "switch_interval_s: expected > 0"),
        ({"timer_slack_ns": 0}, "timer_slack_ns: expected >= 1"),
        ({"cpu_dma_latency_us": -1}, "cpu_dma_latency_us: expected >= 0"),
    ],
)
def test_options_are_validated(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        HardeningOptions(**kwargs)  # type: ignore[arg-type]


def test_system_diagnostics_are_readable() -> None:
    from realtime.hardening import cpu_steal_s, kernel_preemption

    mode = kernel_preemption()
    assert any(m in mode for m in ("none", "voluntary", "full", "rt", "unknown"))
    steal = cpu_steal_s()
    assert steal is None or steal >= 0.0


def _policy(tid: int) -> int:
    return os.sched_getscheduler(tid) & ~os.SCHED_RESET_ON_FORK


@pytest.fixture
def partner_tid() -> Iterator[int]:
    """The native id of another thread of this process (waiting on an event)."""
    stop, ready = threading.Event(), threading.Event()
    tids: list[int] = []

    def partner() -> None:
        tids.append(threading.get_native_id())
        ready.set()
        stop.wait(30)

    t = threading.Thread(target=partner, daemon=True)
    t.start()
    ready.wait(5)
    yield tids[0]
    stop.set()
    t.join()


def test_the_other_threads_get_the_partner_priority_and_it_is_undone(partner_tid: int) -> None:
    with Hardening(HardeningOptions(partners_fifo_priority=1)) as h:
        (step,) = h.steps
        assert step.name == "partners_fifo"
        if step.applied:
            assert _policy(partner_tid) == os.SCHED_FIFO
            assert os.sched_getparam(partner_tid).sched_priority == 1
            assert _policy(0) == os.SCHED_OTHER  # the calling thread is not a partner
        else:
            assert "ulimit -r" in step.detail
    assert _policy(partner_tid) == os.SCHED_OTHER


def test_when_fifo_is_refused_the_steps_say_why_and_nothing_changes(
        monkeypatch: pytest.MonkeyPatch, partner_tid: int) -> None:
    def refuse(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    with Hardening(HardeningOptions(fifo_priority=80, partners_fifo_priority=1)) as h:
        assert [(s.name, s.applied) for s in h.steps] == [("partners_fifo", False),
                                                          ("fifo", False)]
        assert all("ulimit -r" in s.detail and "Operation not permitted" in s.detail
                   for s in h.steps)
        assert not h.applied("fifo")
    assert _policy(0) == _policy(partner_tid) == os.SCHED_OTHER


def test_partner_priority_must_be_below_the_loop_priority() -> None:
    with pytest.raises(ConfigError, match="below fifo_priority"):
        HardeningOptions(fifo_priority=10, partners_fifo_priority=10)
