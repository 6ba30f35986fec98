"""Jitter statistics on known data, JSON round trip, PNG plot, cyclictest parsing,
and the `rtagent jitter` command on the real clock (short smoke runs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from realtime.clock import FakeClock
from realtime.errors import RtAgentError
from realtime.jitter import (
    HIST_EDGES_US,
    Distribution,
    JitterReport,
    load_json,
    render_table,
    report_from_cyclictest_json,
    report_from_history,
    save_json,
    save_plot,
)
from realtime.loop import DeadlineLoop, LoopOptions, TickInfo

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_distribution_of_known_values() -> None:
    d = Distribution.from_values([float(x) for x in range(1, 101)])  # 1..100
    assert (d.count, d.min, d.max, d.mean) == (100, 1.0, 100.0, 50.5)
    assert d.p50 == pytest.approx(50.5)
    assert d.p90 == pytest.approx(90.1)
    assert d.p99 == pytest.approx(99.01)
    assert d.p999 == pytest.approx(99.901)
    with pytest.raises(RtAgentError, match="no samples"):
        Distribution.from_values([])


def test_distribution_from_histogram_counts_is_the_inverse_cdf() -> None:
    counts = {10: 90, 20: 9, 500: 1}  # 100 cycles
    d = Distribution.from_counts(counts)
    assert (d.count, d.min, d.max) == (100, 10.0, 500.0)
    assert (d.p50, d.p90, d.p99, d.p999) == (10.0, 10.0, 20.0, 500.0)
    assert d.mean == pytest.approx((900 + 180 + 500) / 100)
    assert Distribution.from_counts(counts, mean=7.0).mean == 7.0


def _report_from_fake_loop() -> JitterReport:
    # Wake-ups late by 1, 2, ..., 100 µs; every tick takes 30 µs; tick 50 sleeps 70 ms.
    clock = FakeClock(overshoot_ns=0)
    clock.queue_overshoots([(i + 1) * 1000 for i in range(100)])

    def tick(info: TickInfo) -> int:
        clock.advance(70_000_000 if info.seq == 50 else 30_000)
        return 0

    loop = DeadlineLoop(clock, LoopOptions(hz=16, gc_between_ticks=False), tick)
    summary = loop.run(ticks=100)
    return report_from_history(loop.history, summary, meta={"load": "none"})


def test_report_from_loop_history() -> None:
    r = _report_from_fake_loop()
    assert r.ticks == 100 and r.hz == 16.0
    assert r.lateness_us.min == 1.0 and r.lateness_us.max == 100.0
    assert r.lateness_us.p50 == pytest.approx(50.5)
    assert r.exec_us is not None and r.exec_us.max == 70_000.0 and r.exec_us.p50 == 30.0
    assert (r.deadline_misses, r.overruns, r.skipped_releases) == (1, 1, 1)
    assert r.period_us is not None and r.period_us.count == 99
    # Periods between wake-ups: one period plus the change in lateness (+1 µs),
    # and 2 periods across the skipped release.
    assert r.period_us.min == pytest.approx(62_501.0)
    assert r.period_us.max == pytest.approx(125_001.0)
    assert sum(r.histogram) == 100 and len(r.histogram) == len(HIST_EDGES_US)
    # Buckets [0,5) [5,10) [10,20) [20,50) [50,100) [100,200)
    assert r.histogram[:6] == [4, 5, 10, 30, 50, 1]
    assert len(r.samples["lateness_us"]) == 100 and r.samples["t_s"][16] == 1.0


def test_json_round_trip(tmp_path: Path) -> None:
    r = _report_from_fake_loop()
    ct = report_from_cyclictest_json(_cyclictest_doc(), hz=16.0)
    path = save_json(tmp_path / "sub" / "j.json", [r, ct], load="none")
    doc = json.loads(path.read_text())
    assert doc["load"] == "none" and doc["version"] == 1
    back = load_json(path)
    assert back == [r, ct]


def test_json_version_is_checked(tmp_path: Path) -> None:
    p = tmp_path / "j.json"
    p.write_text(json.dumps({"version": 99, "reports": []}))
    with pytest.raises(RtAgentError, match="expected jitter JSON version 1"):
        load_json(p)


def _cyclictest_doc() -> dict[str, object]:
    return {"thread": {"0": {"histogram": {"50": 95, "60": 3, "200": 1},
                             "cycles": 100, "min": 50, "max": 3000, "avg": 81.5}}}


def test_cyclictest_json_with_overflow_counts_at_max() -> None:
    r = report_from_cyclictest_json(_cyclictest_doc(), hz=16.0, meta={"fifo": True})
    assert r.source == "cyclictest" and r.ticks == 100
    assert (r.lateness_us.p50, r.lateness_us.p99, r.lateness_us.max) == (50.0, 200.0, 3000.0)
    assert r.lateness_us.mean == 81.5
    assert sum(r.histogram) == 100 and r.deadline_misses is None
    with pytest.raises(RtAgentError, match="cyclictest JSON is not in the expected format"):
        report_from_cyclictest_json({"thread": {}}, hz=16.0)


def test_plot_is_a_png(tmp_path: Path) -> None:
    r = _report_from_fake_loop()
    ct = report_from_cyclictest_json(_cyclictest_doc(), hz=16.0)
    out = save_plot(tmp_path / "j.png", [r, ct], title="test")
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000


def test_table_shows_ratios_against_the_baseline() -> None:
    from rich.console import Console

    r = _report_from_fake_loop()
    ct = report_from_cyclictest_json(_cyclictest_doc(), hz=16.0)
    console = Console(width=160, record=True)
    console.print(render_table([r, ct]))
    text = console.export_text()
    assert "ratio vs cyclictest" in text
    assert f"({r.lateness_us.p99 / 200.0:.2f}x)" in text  # p99 ratio
    assert f"({100.0 / 3000.0:.2f}x)" in text  # max ratio


def _rtagent(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "demos.cli", "jitter", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "COLUMNS": "160"},
    )


def test_cli_smoke_run_writes_json_and_png(tmp_path: Path) -> None:
    args = ["--hz", "16", "--seconds", "1.5", "--json", str(tmp_path / "j.json"),
            "--plot", str(tmp_path / "j.png"), "--compare-sleep", "--tick-alloc", "20"]
    if shutil.which("cyclictest"):
        args.append("--compare-cyclictest")
    proc = _rtagent(*args)
    assert proc.returncode == 0, proc.stderr
    assert "release lateness at 16 Hz" in proc.stdout
    assert "hardening" in proc.stdout
    reports = load_json(tmp_path / "j.json")
    assert reports[0].source == "rtagent loop" and reports[0].ticks == 24
    assert reports[0].deadline_misses is not None
    sources = ["rtagent loop", "plain sleep loop"]
    if shutil.which("cyclictest"):
        sources = ["rtagent loop", "rtagent loop (sleep only)", "plain sleep loop", "cyclictest"]
        assert "target p99" in proc.stdout
    assert [r.source for r in reports] == sources
    plain = reports[sources.index("plain sleep loop")]
    assert plain.ticks == 24 and plain.meta["spin_us"] == 0 and plain.meta["fifo"] is False
    assert (tmp_path / "j.png").read_bytes()[:8] == PNG_MAGIC


def test_cli_rejects_bad_rate() -> None:
    proc = _rtagent("--hz", "5000", "--seconds", "1")
    assert proc.returncode == 1
    assert "hz: expected 1..1000" in proc.stderr


@pytest.mark.slow
def test_cli_under_real_decoder_load(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    proc = _rtagent("--hz", "10", "--seconds", "2", "--load", "decoder", "--no-fifo",
                    "--json", str(tmp_path / "j.json"), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "tok/s during the run" in proc.stdout
    (report,) = load_json(tmp_path / "j.json")
    assert report.meta["load"] == "decoder" and report.meta["fifo"] is False
    assert report.ticks == 20


def test_a_load_is_named_and_stops() -> None:
    from realtime.errors import ConfigError
    from realtime.jitter_load import Load

    with pytest.raises(ConfigError, match="--load: expected one of"):
        Load("disk")
    with pytest.raises(ConfigError, match="needs a GGUF model path"):
        Load("decoder")
    load = Load("gil")
    assert "busy thread" in load.start()
    (thread,) = load.procs
    load.stop()
    assert not thread.is_alive() and load.procs == []


def test_without_cyclictest_the_runner_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from realtime import cyclictest

    monkeypatch.setattr(cyclictest.shutil, "which", lambda _name: None)
    why = cyclictest.Cyclictest(62500).unavailable()
    assert isinstance(why, str) and "apt-get install rt-tests" in why


def _poll_specs(hz: float = 16.0) -> list[object]:
    from realtime.jitter_run import MeasureSpec

    return [MeasureSpec(source="spin", hz=hz, spin_us=1000.0),
            MeasureSpec(source="sleep only", hz=hz, spin_us=0.0)]


@pytest.mark.skipif(shutil.which("cyclictest") is None, reason="needs rt-tests' cyclictest")
def test_the_loops_and_cyclictest_are_measured_at_once_over_the_same_releases() -> None:
    from realtime.cyclictest import Cyclictest
    from realtime.jitter_run import run_concurrent

    period = 62_500_000
    got = run_concurrent(_poll_specs(), 1.5, cyclictest=Cyclictest(62500))  # type: ignore[arg-type]
    assert got.cyclictest is not None, got.cyclictest_note
    assert got.cyclictest_window_ns is not None
    ct_start, ct_end = got.cyclictest_window_ns
    assert got.cyclictest.ticks == 24 == (ct_end - ct_start) // period
    spin, sleep = got.measurements
    for i, m in enumerate(got.measurements):
        assert m.report.ticks == 24
        # The same 24 periods, each loop a third of a period after cyclictest's release.
        assert m.window_ns == (ct_start + (i + 1) * period // 3, ct_end + (i + 1) * period // 3)
        assert m.report.meta["phase_vs_cyclictest_ns"] == (i + 1) * period // 3
        assert m.report.meta["pid"] not in (os.getpid(), spin.report.meta["pid"] if i else None)
    assert [r.source for r in got.reports()] == ["spin", "sleep only", "cyclictest"]
    assert "--secaligned" in got.cyclictest.meta["command"]
    # The spin margin is paid in CPU time: 1 ms per tick that the sleep-only loop sleeps.
    assert spin.loop_thread_cpu_s > sleep.loop_thread_cpu_s
    assert spin.report.meta["wait"] == sleep.report.meta["wait"]


def test_without_cyclictest_the_loops_still_run_at_once_and_say_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from realtime import cyclictest
    from realtime.jitter_run import run_concurrent

    monkeypatch.setattr(cyclictest.shutil, "which", lambda _name: None)
    got = run_concurrent(_poll_specs(), 1.0, cyclictest=cyclictest.Cyclictest(62500))  # type: ignore[arg-type]
    assert got.cyclictest is None and "apt-get install rt-tests" in got.cyclictest_note
    (a0, a1), (b0, b1) = (m.window_ns for m in got.measurements)
    assert b0 - a0 == 62_500_000 // 3 and b1 - a1 == b0 - a0  # interleaved, same length


@pytest.mark.slow
def test_the_robot_tick_reads_world_states_publishes_commands_and_finishes_turns() -> None:
    pytest.importorskip("llama_cpp")
    from control.decision_ticks import tick_factory
    from realtime.jitter_run import MeasureSpec, measure_here

    spec = MeasureSpec(source="robot", hz=16.0, spin_us=1000.0, tick=tick_factory("robot"),
                       tick_args={"instruct_every_s": 1.0})
    got = measure_here(spec, ticks=16 * 8)
    stats = got.report.meta["tick_stats"]
    assert stats["commands_sent"] == got.report.ticks == 128  # one command per tick
    # The feeder publishes at 16 Hz over the bus; on a loaded machine it falls behind (30 of
    # 128 seen at load 14), so this asserts the path, not the feeder's rate.
    assert stats["world_states_received"] >= 16
    assert stats["control_requests"] >= 2 and stats["turns"] >= 1 and stats["decodes"] >= 1
    assert "RobotDecision.tick" in got.report.meta["tick"]
