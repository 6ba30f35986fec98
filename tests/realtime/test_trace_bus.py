"""Trace events over the bus: real nodes in real processes -> one Chrome trace.

Also run as a node: ``python tests/realtime/test_trace_bus.py node NAME SECONDS`` runs a
real DeadlineLoop on the real clock, traces it with the tracer the front-end
switched on through the environment, and prints its counters as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from realtime.clock import FakeClock, MonotonicClock  # noqa: E402
from realtime.endpoints import RunDirectory  # noqa: E402
from realtime.loop import DeadlineLoop, LoopOptions, TickInfo  # noqa: E402
from realtime.loop_trace import TickTracer  # noqa: E402
from realtime.trace import Tracer, read_chrome  # noqa: E402
from realtime.trace_bus import (  # noqa: E402
    TRACE_ENV,
    BusTracer,
    TraceBusOptions,
    TraceCollector,
    TraceSink,
)


def node(name: str, seconds: float) -> None:
    bus = BusTracer.from_env(name)
    tracer = bus.tracer

    def tick(info: TickInfo) -> int:
        with tracer.span("work", "decision", tick=info.seq):
            return info.seq

    loop = DeadlineLoop(MonotonicClock(spin_us=200), LoopOptions(hz=50), tick)
    ticks = TickTracer(loop, tracer).attach()
    loop.run(seconds=seconds)
    ticks.finish()
    tracer.instant("bye", "decision", pid=os.getpid())
    assert bus.sink is not None
    bus.close()  # sends what is queued, then the counters
    sent, dropped = bus.sink.sent, bus.sink.dropped  # trace events (not the counters)
    print(json.dumps({"name": name, "ticks": loop.summarize().ticks, "traced": ticks.emitted,
                      "connected": bus.connected, "sent": sent, "dropped": dropped}))


def test_nodes_in_processes_trace_into_one_chrome_file(tmp_path: Path) -> None:
    with RunDirectory() as run_dir, TraceCollector(run_dir.endpoint("trace")) as collector:
        collector.start()
        env = {**os.environ, **collector.env()}
        procs = [subprocess.Popen([sys.executable, __file__, "node", name, "0.6"], env=env,
                                  stdout=subprocess.PIPE, text=True)
                 for name in ("decision", "perception")]
        reports = {}
        for p in procs:
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0
            r = json.loads(out.strip().splitlines()[-1])
            reports[r["name"]] = r
        local = Tracer("frontend")
        local.instant("nodes stopped", "supervisor")
        collector.add(local.events())
        path = collector.write(tmp_path / "run.trace.json", run="test")
    for r in reports.values():
        assert r["connected"] and r["dropped"] == 0 and r["traced"] == r["ticks"] >= 20
    events = read_chrome(path)
    doc = json.loads(path.read_text())
    assert doc["otherData"]["run"] == "test"
    senders = doc["otherData"]["trace_senders"]
    for name, r in reports.items():
        mine = [e for e in events if e["process"] == name]
        ticks = [e for e in mine if e["track"] == "loop" and e["name"] == "tick"]
        assert len(ticks) == r["ticks"]  # every tick arrived, none twice
        assert all(t["args"]["lateness_us"] >= 0 and "miss" in t["args"] for t in ticks)
        assert len([e for e in mine if e["name"] == "work"]) == r["ticks"]
        assert any(e["name"] == "loop summary" for e in mine)
        assert senders[name] == {"sent": r["sent"], "dropped": 0}
        assert doc["otherData"]["received"][name] == r["sent"]
    assert {"decision", "perception", "frontend"} <= {e["process"] for e in events}
    # One monotonic clock: each node's goodbye comes after its last tick, on the
    # time axis shared with the front-end's own event (recorded after both exited).
    stopped = next(e["ts"] for e in events if e["name"] == "nodes stopped")
    for name in reports:
        last_tick = max(e["ts"] + e["dur"] for e in events
                        if e["process"] == name and e["name"] == "tick")
        bye = next(e["ts"] for e in events if e["process"] == name and e["name"] == "bye")
        assert last_tick <= bye < stopped


def test_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    # flush_ms=0: each event is sent where it is recorded (no sender thread).
    opts = TraceBusOptions(queue_events=16, linger_ms=3000, connect_timeout_ms=2000,
                           local_capacity_events=1000, flush_ms=0)
    with RunDirectory() as run_dir, TraceCollector(run_dir.endpoint("t"), options=opts) as col:
        col.start()  # libzmq attaches the new peer when the socket is used: keep it polled
        bus = BusTracer("burst", col.endpoint, options=opts)
        assert bus.connected
        col.stop(drain_ms=0)
        for i in range(3000):  # nobody drains the collector meanwhile
            bus.tracer.instant("e", "t", i=i)
        sink = bus.sink
        assert sink is not None
        assert sink.dropped > 0 and sink.sent + sink.dropped == 3000
        sent = sink.sent
        col.start()
        deadline = time.monotonic() + 10
        # libzmq may drop what is still in flight when a peer disconnects from a
        # reader that is behind, so let the collector catch up before closing.
        while col.summary()["received"].get("burst", 0) < sent and time.monotonic() < deadline:
            time.sleep(0.01)
        bus.close()  # then the counters
        while "burst" not in col.senders and time.monotonic() < deadline:
            time.sleep(0.01)
        col.stop()
    assert col.summary()["received"]["burst"] == sent  # what was sent arrived (XPUB_NODROP)
    assert col.senders["burst"] == {"sent": sent, "dropped": 3000 - sent}
    # The local tracer kept its own bounded copy.
    assert len(bus.tracer.events()) == opts.local_capacity_events


def test_queued_sink_records_without_sending_and_delivers_on_its_thread(tmp_path: Path) -> None:
    opts = TraceBusOptions(queue_events=100, flush_ms=20)
    with RunDirectory() as run_dir, TraceCollector(run_dir.endpoint("t"), options=opts) as col:
        col.start()
        bus = BusTracer("queued", col.endpoint, options=opts)
        assert bus.connected and bus.sink is not None
        for i in range(150):  # more than the queue holds before the sender thread runs
            bus.tracer.instant("e", "t", i=i)
        assert bus.sink.sent + bus.sink.dropped <= 150
        bus.close()  # sends what is queued, then the counters
        deadline = time.monotonic() + 10
        while "queued" not in col.senders and time.monotonic() < deadline:
            time.sleep(0.01)
        col.stop()
    sent, dropped = col.senders["queued"]["sent"], col.senders["queued"]["dropped"]
    assert sent + dropped == 150 and sent >= 100
    got = [e.args["i"] for e in col.events() if e.source == "queued"]
    assert len(got) == sent and got == sorted(got)  # in order, none twice


def test_tracing_off_opens_nothing() -> None:
    off = BusTracer.from_env("x", env={})
    assert not off.enabled and not off.tracer.enabled and off.sink is None
    with off.tracer.span("x", "t"):
        pass
    off.close()
    assert off.tracer.events() == []
    assert BusTracer.from_env("y", env={TRACE_ENV: ""}).sink is None


def test_collector_buffer_is_bounded(tmp_path: Path) -> None:
    opts = TraceBusOptions(capacity_events=10)
    with RunDirectory() as run_dir, TraceCollector(run_dir.endpoint("t"), options=opts) as col:
        local = Tracer("p")
        for i in range(25):
            local.instant(f"e{i}", "t")
        col.add(local.events())
        assert [e.name for e in col.events()][0] == "e15" and col.dropped == 15
        path = col.write(tmp_path / "t.json")
    assert json.loads(path.read_text())["otherData"]["collector_dropped"] == 15


def test_sink_without_collector_never_blocks() -> None:
    with RunDirectory() as run_dir:
        sink = TraceSink(run_dir.endpoint("nobody"), process="p",
                         options=TraceBusOptions(queue_events=16, linger_ms=0))
        assert not sink.wait_connected(50)
        tracer = Tracer("p", sink=sink)
        for i in range(1000):
            tracer.instant("e", "t", i=i)
        sink.close()
    # Without a subscriber XPUB discards without queueing: nothing to count as full.
    assert sink.sent + sink.dropped == 1000


def test_tick_spans_carry_lateness_misses_and_skips_in_virtual_time() -> None:
    clock = FakeClock()
    budget_ns = 5_000_000
    exec_ns = iter([1_000_000, 7_000_000, 30_000_000, 1_000_000, 1_000_000])

    def tick(info: TickInfo) -> None:
        clock.advance(next(exec_ns))

    loop = DeadlineLoop(clock, LoopOptions(hz=50, budget_ms=5, history_len=16,
                                           gc_between_ticks=False), tick)
    tracer = Tracer("p", now_ns=clock.now_ns)
    ticks = TickTracer(loop, tracer)
    clock.queue_overshoots([0, 300_000])
    for _ in range(5):
        loop.step()
    assert ticks.flush() == 5
    spans = [e for e in tracer.events() if e.name == "tick"]
    assert [s.args["miss"] for s in spans] == [False, True, True, False, False]
    assert spans[1].args["lateness_us"] == 300.0 and spans[0].args["exec_us"] == 1000.0
    assert [s.args["skipped"] for s in spans] == [0, 0, 0, 1, 0]  # 30 ms tick skipped one
    assert spans[2].dur_ns == 30_000_000 and budget_ns == loop.options.budget_ns
    # A ring that wrapped before a flush: the overwritten ticks are counted as lost.
    for _ in range(20):
        exec_ns = iter([1_000_000])
        loop.step()
    ticks.finish()
    assert ticks.lost == 4 and ticks.emitted == 5 + 16
    summary = [e for e in tracer.events() if e.name == "loop summary"][0]
    assert summary.args["ticks"] == 25 and summary.args["deadline_misses"] == 2


def test_tick_tracer_chains_the_existing_hook_and_is_free_when_off() -> None:
    seen: list[int] = []
    loop = DeadlineLoop(FakeClock(), LoopOptions(hz=50, gc_min_slack_ms=1), lambda i: None,
                        between_ticks=lambda info: seen.append(info.seq))
    tracer = Tracer("p")
    TickTracer(loop, tracer).attach()
    for _ in range(3):
        loop.step()
    assert seen == [0, 1, 2] and len([e for e in tracer.events() if e.name == "tick"]) == 3
    off_loop = DeadlineLoop(FakeClock(), LoopOptions(hz=50), lambda i: None)
    TickTracer(off_loop, Tracer("p", enabled=False)).attach()
    assert off_loop.between_ticks is None


if __name__ == "__main__" and sys.argv[1:2] == ["node"]:
    node(sys.argv[2], float(sys.argv[3]))
