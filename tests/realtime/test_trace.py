"""Tracer: bounded, cheap when off, exported as Chrome trace JSON, streamed to disk as made."""

from __future__ import annotations

import json

import pytest

from realtime.messages import TraceEvent
from realtime.trace import Tracer, read_chrome, to_chrome, write_chrome
from realtime.trace_file import ChromeStream, load_chrome


class Ticker:
    def __init__(self) -> None:
        self.t = 1_000_000

    def __call__(self) -> int:
        self.t += 500_000
        return self.t


def test_spans_instants_and_counters_export_to_chrome(tmp_path) -> None:
    clock = Ticker()
    decision = Tracer("decision", now_ns=clock)
    tools = Tracer("tools", now_ns=clock)
    with decision.span("tick", "loop", tick=1):
        decision.instant("late", "loop", lateness_us=12)
    tools.complete("get_weather", "tools", 2_000_000, 5_000_000, speculative=True)
    decision.counter("queue", "bus", depth=3)
    path = write_chrome(tmp_path / "t.json", decision.events() + tools.events(), run="test")
    raw = json.loads(path.read_text())
    assert raw["otherData"]["run"] == "test"
    events = read_chrome(path)
    by_name = {e["name"]: e for e in events}
    assert by_name["tick"]["ph"] == "X" and by_name["tick"]["dur"] == 1000.0  # 1 ms in µs
    assert by_name["tick"]["process"] == "decision" and by_name["tick"]["track"] == "loop"
    assert by_name["get_weather"]["args"] == {"speculative": True}
    assert by_name["get_weather"]["process"] == "tools"
    assert by_name["late"]["ph"] == "i" and by_name["queue"]["ph"] == "C"
    assert min(e["ts"] for e in events) == 0.0


def test_buffer_is_bounded_and_counts_drops() -> None:
    tr = Tracer("p", capacity=3)
    for i in range(5):
        tr.instant(f"e{i}", "t")
    assert [e.name for e in tr.events()] == ["e2", "e3", "e4"]
    assert tr.dropped == 2


def test_disabled_tracer_records_nothing_and_sink_sees_events() -> None:
    seen = []
    off = Tracer("p", enabled=False, sink=seen.append)
    with off.span("x", "t"):
        pass
    off.instant("y", "t")
    assert off.events() == [] and seen == []
    on = Tracer("p", sink=seen.append)
    on.instant("z", "t")
    on.add(TraceEvent(name="elsewhere"))  # recorded elsewhere, added here: the sink sees it
    assert [e.name for e in seen] == ["z", "elsewhere"]
    assert to_chrome([])["traceEvents"] == []


def test_a_streamed_trace_reads_back_while_written_cut_short_and_closed(tmp_path) -> None:
    clock = Ticker()
    path = tmp_path / "s.json"
    stream = ChromeStream(path, t0_ns=1_000_000, run="stream test")
    decision = Tracer("decision", now_ns=clock, sink=stream.add)
    with decision.span("tick", "loop", tick=1):
        decision.instant("late", "loop", lateness_us=12)
    Tracer("tools", now_ns=clock, sink=stream.add).counter("queue", "bus", depth=3)
    stream.flush()
    live = path.read_text()  # what a kill -9 would leave now: no closing "]"
    assert not live.rstrip().endswith("]")
    events, other, complete = load_chrome(path)
    assert not complete and other["run"] == "stream test"
    assert other["t0_monotonic_ns"] == 1_000_000
    named = {e["name"]: e for e in read_chrome(path)}
    assert set(named) == {"tick", "late", "queue"}
    assert named["tick"]["dur"] == 1000.0 and named["tick"]["track"] == "loop"
    assert named["queue"]["process"] == "tools" and named["late"]["ts"] == 1000.0
    # killed half-way through writing a line: that line goes, the rest stays
    path.write_text(live + '\n,{"name": "half", "ph": "X", "ts": 3')
    assert {e["name"] for e in read_chrome(path)} == {"tick", "late", "queue"}
    assert not load_chrome(path)[2]
    path.write_text(live)
    stream.close()  # appends "]": now plain JSON (Chrome's array form)
    assert isinstance(json.loads(path.read_text()), list)
    assert {e["name"] for e in read_chrome(path)} == {"tick", "late", "queue"}
    assert load_chrome(path)[2]
    path.write_text('{"reports": []}')
    with pytest.raises(ValueError, match="Chrome trace"):
        load_chrome(path)
