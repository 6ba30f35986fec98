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
import multiprocessing as mp
import statistics
import struct
import time
from typing import Any

CASES = ("small", "frame")
TRANSPORTS = ("ipc", "tcp")
# Queued messages per peer: room for a whole throughput run (~280 MB of frames at most),
# so throughput measures how fast the receiver drains, not how much PUB drops.
HWM = {"small": 50_000, "frame": 400}
FRAME_SHAPE = (480, 640, 3)


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
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")


# ----------------------------------------------------------------------------- receiver


def _receiver(impl: str, endpoint: str, expect: int, hwm: int, conn: Any) -> None:
    """Child process: receive ``expect`` messages (or stop after 3 s of silence)."""
    import numpy as np
    import zmq

    from realtime.bus import BusOptions, Subscriber

    lat_ns: list[int] = []
    ctx = zmq.Context()
    if impl == "ours":
        sub = Subscriber(endpoint, ["b"], options=BusOptions(sndhwm=hwm, rcvhwm=hwm), context=ctx)
        sock = sub.sock
    else:
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, hwm)
        sock.setsockopt(zmq.SUBSCRIBE, b"b")
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
    conn.send("ready")
    received, first_ns, last_ns, checksum = 0, 0, 0, 0
    while received < expect:
        if impl == "ours":
            got = sub.recv(timeout_ms=3000)
            if got is None:
                break
            now = time.monotonic_ns()
            t_ns = got.message.t_ns
            rgb = getattr(got.message, "rgb", None)
            if rgb is not None:
                checksum += int(rgb[0, 0, 0])
        else:
            if not sock.poll(3000):
                break
            parts = sock.recv_multipart(copy=False)
            now = time.monotonic_ns()
            t_ns = struct.unpack_from("<q", parts[1].bytes)[0]
            if len(parts) > 2:
                rgb = np.frombuffer(parts[2].buffer, np.uint8).reshape(FRAME_SHAPE)
                checksum += int(rgb[0, 0, 0])
        if not first_ns:
            first_ns = now
        last_ns = now
        received += 1
        lat_ns.append(now - t_ns)
    conn.send({"lat_ns": lat_ns, "received": received, "span_ns": last_ns - first_ns,
               "checksum": checksum})
    if impl == "ours":
        sub.close()
    else:
        sock.close()
    ctx.term()


# ----------------------------------------------------------------------------- sender


def _endpoint(transport: str, run_dir: Any) -> str:
    return run_dir.endpoint("bench") if transport == "ipc" else "tcp://127.0.0.1:*"


def _one_run(impl: str, case: str, transport: str, count: int, period_s: float) -> dict[str, Any]:
    import numpy as np
    import zmq

    from realtime.bus import BusOptions, Publisher
    from realtime.codec import Codec
    from realtime.endpoints import RunDirectory
    from realtime.messages import CameraFrame, Command

    frame = np.random.default_rng(0).integers(0, 255, FRAME_SHAPE, dtype=np.uint8)
    hwm = HWM[case]
    sample = Command(source="bench", seq=1, t_ns=1, mode="move",
                     target_position_m=(0.5, 0.1, 0.2), tick=1)
    filler = b"x" * max(0, len(Codec().encode(sample)[0]) - 8)  # raw sends as many bytes
    with RunDirectory() as run_dir:
        ctx = zmq.Context()
        if impl == "ours":
            pub = Publisher(_endpoint(transport, run_dir), source="bench",
                            options=BusOptions(sndhwm=hwm, rcvhwm=hwm), context=ctx)
            sock, endpoint = pub.sock, pub.bound_endpoint
        else:
            sock = ctx.socket(zmq.PUB)
            sock.setsockopt(zmq.SNDHWM, hwm)
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind(_endpoint(transport, run_dir))
            endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        warm = 50
        parent, child = mp.get_context("spawn").Pipe()
        proc = mp.get_context("spawn").Process(
            target=_receiver, args=(impl, endpoint, count + warm, hwm, child))
        proc.start()
        assert parent.poll(60), "receiver did not start"
        parent.recv()
        time.sleep(0.3)  # subscription propagation (slow joiner)
        next_t = time.perf_counter()
        for i in range(count + warm):
            if period_s:
                next_t += period_s
                left = next_t - time.perf_counter()
                if left > 3e-4:
                    time.sleep(left - 2e-4)
                while time.perf_counter() < next_t:  # spin the last 0.2 ms
                    pass
            if impl == "ours":
                msg: Any = (CameraFrame(rgb=frame, width_px=640, height_px=480) if case == "frame"
                            else Command(mode="move", target_position_m=(0.5, 0.1, 0.2), tick=i))
                pub.publish(msg, topic="b")
            else:
                head = struct.pack("<q", time.monotonic_ns()) + filler
                if case == "frame":
                    sock.send_multipart([b"b", head, memoryview(frame)], copy=False)
                else:
                    sock.send_multipart([b"b", head])
        assert parent.poll(120), "receiver did not report"
        result: dict[str, Any] = parent.recv()
        proc.join(30)
        copies = pub.codec.copies if impl == "ours" else 0
        sock.close()
        ctx.term()
    lat = sorted(result["lat_ns"][warm:])
    span_s = result["span_ns"] / 1e9
    return {
        "p50_us": lat[len(lat) // 2] / 1e3 if lat else float("nan"),
        "p99_us": lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1e3 if lat else float("nan"),
        "received": result["received"],
        "sent": count + warm,
        "msgs_per_s": result["received"] / span_s if span_s > 0 else float("nan"),
        "codec_copies": copies,
    }


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    cases = args.case or list(CASES)
    transports = args.transport or list(TRANSPORTS)
    rows: list[dict[str, Any]] = []
    with console.status("starting") as status:
        _measure(args, cases, transports, rows, status)
    _print(console, rows, Table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


def _measure(args: argparse.Namespace, cases: list[str], transports: list[str],
             rows: list[dict[str, Any]], status: Any) -> None:
    for case in cases:
        count = args.count if case == "small" else args.frames
        rate = args.rate_hz if case == "small" else args.rate_hz / 10
        for transport in transports:
            n_thr = count * 10 if case == "small" else 300
            for mode, period_s, n in (("latency", 1.0 / rate, count), ("throughput", 0.0, n_thr)):
                runs: dict[str, list[dict[str, Any]]] = {"raw": [], "ours": []}
                for _ in range(args.repeats):
                    for impl in ("raw", "ours"):
                        status.update(f"{case} {transport} {mode}: {impl}")
                        runs[impl].append(_one_run(impl, case, transport, n, period_s))
                row = {"case": case, "transport": transport, "mode": mode}
                for impl in ("raw", "ours"):
                    for key in ("p50_us", "p99_us", "msgs_per_s"):
                        row[f"{impl}_{key}"] = _median(runs[impl], key)
                    row[f"{impl}_received"] = sum(r["received"] for r in runs[impl])
                    row[f"{impl}_sent"] = sum(r["sent"] for r in runs[impl])
                row["codec_copies"] = sum(r["codec_copies"] for r in runs["ours"])
                rows.append(row)


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
        size = 640 * 480 * 3 / 1e6
        console.print(f"frames over {r['transport']}: ours {r['ours_msgs_per_s'] * size:,.0f} MB/s, "
                      f"raw {r['raw_msgs_per_s'] * size:,.0f} MB/s")
