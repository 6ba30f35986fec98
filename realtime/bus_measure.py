"""One-way latency and throughput of the bus against raw pyzmq (`rtagent bench bus`).

A sender (this process) publishes to a receiver in a spawned process, for small
messages (a Command, ~100 bytes) and 640x480 RGB frames, over IPC or TCP loopback:

- latency: messages sent at a steady rate; the receiver takes
  ``monotonic_ns() - t_ns`` of each (one host, one clock);
- throughput: messages sent as fast as possible; messages/s received.

"ours" is Publisher -> Subscriber (stamping, msgspec codec, checks, zero-copy
array frames); "raw" is hand-written pyzmq PUB/SUB with the same frames (topic,
8-byte timestamp, and for frames the pixels with copy=False) and the same
high-water marks. :func:`measure` alternates raw and ours and keeps the median.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from realtime.errors import ConfigError, RtAgentError

if TYPE_CHECKING:
    from realtime.endpoints import RunDirectory

__all__ = ["CASES", "FRAME_BYTES", "IMPLS", "TRANSPORTS", "BusBenchOptions", "measure", "one_run"]

CASES = ("small", "frame")
TRANSPORTS = ("ipc", "tcp")
IMPLS = ("raw", "ours")
# Queued messages per peer: room for a whole throughput run (~280 MB of frames at most),
# so throughput measures how fast the receiver drains, not how much PUB drops.
HWM = {"small": 50_000, "frame": 400}
FRAME_SHAPE = (480, 640, 3)
FRAME_BYTES = 480 * 640 * 3
_WARM_UP = 50  # messages sent (and not counted) before the measured ones


@dataclass(frozen=True)
class BusBenchOptions:
    """``count`` small messages / ``frames`` frames per latency run, small messages sent
    at ``rate_hz`` (frames at a tenth of it); ``repeats`` (raw, ours) pairs per figure."""

    count: int = 2000
    frames: int = 300
    rate_hz: float = 1000.0
    repeats: int = 2
    cases: tuple[str, ...] = CASES
    transports: tuple[str, ...] = TRANSPORTS

    def __post_init__(self) -> None:
        for name in ("count", "frames", "rate_hz", "repeats"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')}: expected a positive number, "
                                  f"got {getattr(self, name)!r}")
        for name, allowed in (("cases", CASES), ("transports", TRANSPORTS)):
            wrong = [v for v in getattr(self, name) if v not in allowed]
            if wrong:
                raise ConfigError(f"{name}: expected some of {allowed}, got {wrong}")


def _receiver(impl: str, endpoint: str, expect: int, hwm: int, conn: Connection) -> None:
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


def _endpoint(transport: str, run_dir: RunDirectory) -> str:
    return run_dir.endpoint("bench") if transport == "ipc" else "tcp://127.0.0.1:*"


def one_run(impl: str, case: str, transport: str, count: int, period_s: float) -> dict[str, Any]:
    """Send ``count`` messages (every ``period_s``; 0: as fast as possible) to a fresh
    receiver; returns p50/p99 latency in µs, messages/s, sent, received, codec copies."""
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
            endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        parent, child = mp.get_context("spawn").Pipe()
        proc = mp.get_context("spawn").Process(
            target=_receiver, args=(impl, endpoint, count + _WARM_UP, hwm, child))
        proc.start()
        if not parent.poll(60):
            raise RtAgentError("bench bus: the receiver process did not start")
        parent.recv()
        time.sleep(0.3)  # subscription propagation (slow joiner)
        next_t = time.perf_counter()
        for i in range(count + _WARM_UP):
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
                    sock.send_multipart([b"b", head, frame.data], copy=False)
                else:
                    sock.send_multipart([b"b", head])
        if not parent.poll(120):
            raise RtAgentError("bench bus: the receiver process did not report")
        result: dict[str, Any] = parent.recv()
        proc.join(30)
        copies = pub.codec.copies if impl == "ours" else 0
        sock.close()
        ctx.term()
    lat = sorted(result["lat_ns"][_WARM_UP:])
    span_s = result["span_ns"] / 1e9
    return {
        "p50_us": lat[len(lat) // 2] / 1e3 if lat else float("nan"),
        "p99_us": lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1e3 if lat else float("nan"),
        "received": result["received"],
        "sent": count + _WARM_UP,
        "msgs_per_s": result["received"] / span_s if span_s > 0 else float("nan"),
        "codec_copies": copies,
    }


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def measure(options: BusBenchOptions,
            on_step: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """A row per case, transport and mode (latency, throughput): for raw and ours the
    median p50/p99 µs and messages/s, sent and received summed; ours' codec copies.
    ``on_step`` hears what runs next ("small ipc latency: raw")."""
    rows: list[dict[str, Any]] = []
    for case in options.cases:
        count = options.count if case == "small" else options.frames
        rate = options.rate_hz if case == "small" else options.rate_hz / 10
        for transport in options.transports:
            n_thr = count * 10 if case == "small" else 300
            for mode, period_s, n in (("latency", 1.0 / rate, count), ("throughput", 0.0, n_thr)):
                runs: dict[str, list[dict[str, Any]]] = {impl: [] for impl in IMPLS}
                for _ in range(options.repeats):
                    for impl in IMPLS:
                        if on_step is not None:
                            on_step(f"{case} {transport} {mode}: {impl}")
                        runs[impl].append(one_run(impl, case, transport, n, period_s))
                row: dict[str, Any] = {"case": case, "transport": transport, "mode": mode}
                for impl in IMPLS:
                    for key in ("p50_us", "p99_us", "msgs_per_s"):
                        row[f"{impl}_{key}"] = _median(runs[impl], key)
                    row[f"{impl}_received"] = sum(r["received"] for r in runs[impl])
                    row[f"{impl}_sent"] = sum(r["sent"] for r in runs[impl])
                row["codec_copies"] = sum(r["codec_copies"] for r in runs["ours"])
                rows.append(row)
    return rows
