"""RT hardening: each step is applied or says why not, and everything is undone."""

from __future__ import annotations

import gc
import os
import sys

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
