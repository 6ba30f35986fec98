"""Tracer: bounded, cheap when off, exported as Chrome trace JSON."""

from __future__ import annotations

import json

from realtime.trace import Tracer, read_chrome, to_chrome, write_chrome


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
    assert [e.name for e in seen] == ["z"]
    assert to_chrome([])["traceEvents"] == []
