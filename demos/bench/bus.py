"""rtagent bench bus: one-way latency and throughput of the bus vs raw pyzmq.

For small messages (a Command, ~100 bytes) and 640x480 RGB frames (921,600
bytes), over IPC and TCP loopback, a sender (this process) publishes to a
receiver in another process:

- latency: messages sent at a steady rate; the receiver takes
  ``monotonic_ns() - t_ns`` of each (one host, one clock); p50 and p99 in µs;
- throughput: messages sent as fast as possible; messages/s (and MB/s) received.

"ours" is Publisher -> Subscriber (stamping, msgspec codec, checks, zero-copy
array frames); "raw" is hand-written pyzmq PUB/SUB with the same frames
(topic, 8-byte timestamp, and for frames the pixels with copy=False). Both use
the same high-water marks. The ratio ours/raw is printed per figure; the
target is p50 ratio <= 1.3 for small messages. Runs alternate raw and ours.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from demos.bench.args import json_output
from realtime.bus_measure import CASES, FRAME_BYTES, TRANSPORTS, BusBenchOptions, measure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, default=2000,
                        help="small messages per latency run (default 2000)")
    parser.add_argument("--frames", type=int, default=300,
                        help="frames per latency run (default 300)")
    parser.add_argument("--rate-hz", type=float, default=1000.0,
                        help="send rate of small messages in latency runs (frames: rate/10)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of each (raw, ours) pair; the median is reported")
    parser.add_argument("--case", choices=CASES, action="append",
                        help="only these cases (default: both)")
    parser.add_argument("--transport", choices=TRANSPORTS, action="append",
                        help="only these transports (default: both)")
    json_output(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    options = BusBenchOptions(count=args.count, frames=args.frames, rate_hz=args.rate_hz,
                              repeats=args.repeats, cases=tuple(args.case or CASES),
                              transports=tuple(args.transport or TRANSPORTS))
    console = Console()
    with console.status("starting") as status:
        rows = measure(options, status.update)
    _print(console, rows, Table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


def _print(console: Any, rows: list[dict[str, Any]], table_cls: Any) -> None:
    table = table_cls(title="rtagent bench bus: ours (Publisher/Subscriber) vs raw pyzmq")
    for col in ("case", "transport", "figure", "raw", "ours", "ours/raw", "lost raw|ours"):
        table.add_column(col, justify="left" if col in ("case", "figure") else "right")
    for r in rows:
        keys = ("p50_us", "p99_us") if r["mode"] == "latency" else ("msgs_per_s",)
        for key in keys:
            raw, ours = r[f"raw_{key}"], r[f"ours_{key}"]
            name = {"p50_us": "p50 µs", "p99_us": "p99 µs", "msgs_per_s": "msg/s"}[key]
            lost = (f"{r['raw_sent'] - r['raw_received']}|{r['ours_sent'] - r['ours_received']}")
            table.add_row(r["case"], r["transport"], f"{r['mode']} {name}", f"{raw:,.1f}",
                          f"{ours:,.1f}", f"{ours / raw if raw else float('nan'):.2f}x", lost)
    console.print(table)
    small = [r for r in rows if r["case"] == "small" and r["mode"] == "latency"]
    for r in small:
        ratio = r["ours_p50_us"] / r["raw_p50_us"]
        verdict = "meets" if ratio <= 1.3 else "misses"
        console.print(f"small messages over {r['transport']}: p50 ours/raw = {ratio:.2f}x "
                      f"({verdict} the <= 1.3x target)")
    frames = [r for r in rows if r["case"] == "frame"]
    if frames:
        copies = sum(r["codec_copies"] for r in frames)
        console.print(f"frames: codec copies = {copies} (arrays sent as memoryviews, copy=False)")
    mb = [r for r in frames if r["mode"] == "throughput"]
    for r in mb:
        size = FRAME_BYTES / 1e6
        console.print(f"frames over {r['transport']}: ours {r['ours_msgs_per_s'] * size:,.0f} MB/s, "
                      f"raw {r['raw_msgs_per_s'] * size:,.0f} MB/s")
