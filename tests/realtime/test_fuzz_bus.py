"""Fuzz every receiving socket type with random bytes and malformed multipart frames.

A raw pyzmq peer sends junk followed by one valid sentinel; the receiver must
never raise, must count every junk message exactly once (dropped, or accepted
when the junk happens to be valid), and must still get the sentinel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime.bus import (
    BusOptions,
    CommandChannel,
    CommandServer,
    LatestValueSubscriber,
    ReplyServer,
    RequestClient,
    Subscriber,
)
from realtime.bus_base import BusSocket
from realtime.codec import MAGIC, Codec
from realtime.endpoints import RunDirectory
from realtime.messages import SCHEMA_VERSION, Ack, Heartbeat, ToolReply, ToolRequest, message_types

PREFIX = MAGIC + bytes([SCHEMA_VERSION])
TAGS = sorted(message_types())
FIELDS = sorted({f for cls in message_types().values() for f in cls.__struct_fields__})
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                    st.floats(allow_nan=True), st.text(max_size=20), st.binary(max_size=20))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4)
                      | st.dictionaries(st.text(max_size=5), c, max_size=4), max_leaves=12)
placeholders = st.fixed_dictionaries({
    "nd": st.integers(-2, 4), "dt": st.sampled_from(["|u1", "<f4", "|O", "<i8", ">f4", "x"]),
    "sh": st.lists(st.integers(-2, 5), max_size=10)})
near_valid = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(TAGS), values)},
    optional={f: st.one_of(values, placeholders) for f in FIELDS[:40]},
).map(lambda d: PREFIX + msgspec.msgpack.encode(d))
headers = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=200).map(lambda b: PREFIX + b),
    st.tuples(st.integers(0, 255), st.binary(max_size=60)).map(
        lambda t: MAGIC + bytes([t[0]]) + t[1]),
    near_valid,
)
bodies = st.one_of(
    st.lists(st.one_of(headers, st.binary(max_size=400)), min_size=1, max_size=5),
    st.tuples(headers, st.lists(st.binary(max_size=64), min_size=1, max_size=4)).map(
        lambda t: [t[0], *t[1]]),
    st.lists(st.binary(max_size=4), min_size=18, max_size=22),  # too many frames
)
junk_batches = st.lists(bodies, min_size=1, max_size=4)


def accounted(sock: BusSocket) -> int:
    s = sock.stats
    return s.received + s.late + sum(s.dropped.values())


def pump(cond: Callable[[], bool], step: Callable[[], Any], limit_s: float = 20.0) -> None:
    end = time.monotonic() + limit_s
    while not cond():
        assert time.monotonic() < end, "sentinel never arrived"
        step()


@pytest.fixture(scope="module")
def run_dir() -> Iterator[RunDirectory]:
    with RunDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    context.destroy(linger=0)


def raw(ctx: zmq.Context[Any], kind: int, endpoint: str, bind: bool) -> zmq.Socket[Any]:
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    if bind:
        sock.bind(endpoint)
    else:
        sock.connect(endpoint)
    return sock


def sentinel_frames(msg: Any) -> list[Any]:
    return list(Codec().encode(msg))


@pytest.mark.parametrize("kind", [Subscriber, LatestValueSubscriber])
@SETTINGS
@given(batch=junk_batches)
def test_subscribers_survive_junk(kind: type[Subscriber], batch: list[list[bytes]],
                                  run_dir: RunDirectory, ctx: zmq.Context[Any]) -> None:
    name = f"sub-{kind.__name__}"
    sub = _cached(name, lambda: kind(run_dir.endpoint(name), [""], bind=True, context=ctx,
                                    options=BusOptions(rcvhwm=100_000)))
    pub = _cached(name + "-peer", lambda: raw(ctx, zmq.PUB, run_dir.endpoint(name), False))
    _wait_subscribed(pub, sub)
    before = accounted(sub)
    for frames in batch:
        pub.send_multipart(frames)
    hb = Heartbeat(node="sentinel", seq=1, t_ns=time.monotonic_ns())
    pub.send_multipart([b"sentinel", *sentinel_frames(hb)])
    got: list[Any] = []
    if isinstance(sub, LatestValueSubscriber):
        pump(lambda: bool(got), lambda: got.extend(
            [g] if (g := sub.read_latest(1e9, "sentinel")) and g.new else []))
    else:
        pump(lambda: bool(got), lambda: got.extend(
            [g] if (g := sub.recv(10)) and g.topic == "sentinel" else []))
    assert accounted(sub) == before + len(batch) + 1


def _wait_subscribed(pub: zmq.Socket[Any], sub: Subscriber) -> None:
    if getattr(sub, "_fuzz_ready", False):
        return
    hb = Heartbeat(node="probe")
    pump(lambda: sub.stats.received > 0,
         lambda: (pub.send_multipart([b"probe", *sentinel_frames(hb)]), sub.recv(10)))
    while sub.recv(50) is not None:
        pass
    sub._fuzz_ready = True  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", [CommandServer, ReplyServer])
@SETTINGS
@given(batch=junk_batches)
def test_router_servers_survive_junk(kind: type[CommandServer | ReplyServer],
                                     batch: list[list[bytes]], run_dir: RunDirectory,
                                     ctx: zmq.Context[Any]) -> None:
    name = f"srv-{kind.__name__}"
    srv = _cached(name, lambda: kind(run_dir.endpoint(name), source="srv", context=ctx,
                                    options=BusOptions(rcvhwm=100_000)))
    peer = _cached(name + "-peer", lambda: raw(ctx, zmq.DEALER, run_dir.endpoint(name), False))
    before = accounted(srv)
    for frames in batch:
        peer.send_multipart(frames)
    peer.send_multipart(sentinel_frames(ToolRequest(name="sentinel", seq=1)))
    got: list[Any] = []
    pump(lambda: bool(got), lambda: got.extend(
        [r] if (r := srv.recv(10)) and getattr(r.message, "name", "") == "sentinel" else []))
    assert accounted(srv) == before + len(batch) + 1


@pytest.mark.parametrize("kind", [CommandChannel, RequestClient])
@SETTINGS
@given(batch=junk_batches)
def test_dealer_clients_survive_junk(kind: type[CommandChannel | RequestClient],
                                     batch: list[list[bytes]], run_dir: RunDirectory,
                                     ctx: zmq.Context[Any]) -> None:
    name = f"cli-{kind.__name__}"
    router = _cached(name + "-peer", lambda: raw(ctx, zmq.ROUTER, run_dir.endpoint(name), True))
    extra = {"ack_timeout_ms": 600_000.0} if kind is CommandChannel else {}
    cli = _cached(name, lambda: kind(run_dir.endpoint(name), source="cli", context=ctx,
                                    options=BusOptions(rcvhwm=100_000), **extra))
    # the client sends one real message so the raw ROUTER learns who it is
    if isinstance(cli, CommandChannel):
        pump(lambda: cli.send(Heartbeat()) is not None, lambda: time.sleep(0.01))
        sentinel: Any = None
    else:
        pump(lambda: cli.submit(ToolRequest(name="x"), timeout_ms=1e9) is not None,
             lambda: time.sleep(0.01))
    identity, *frames = router.recv_multipart()
    request = Codec().decode(frames)
    sentinel = (Ack(ack_seq=request.seq) if isinstance(cli, CommandChannel)
                else ToolReply(call_id=request.call_id))  # type: ignore[attr-defined]
    before = accounted(cli)
    for junk in batch:
        router.send_multipart([identity, *junk])
    router.send_multipart([identity, *sentinel_frames(sentinel)])
    got: list[Any] = []
    if isinstance(cli, CommandChannel):
        pump(lambda: bool(got), lambda: (cli.sock.poll(10), got.extend(cli.poll_acks())))
    else:
        pump(lambda: bool(got), lambda: (cli.sock.poll(10), got.extend(
            r for r in cli.poll() if r.call_id == sentinel.call_id)))
    assert accounted(cli) == before + len(batch) + 1


def test_a_frame_over_maxmsgsize_disconnects_the_peer_not_the_receiver(
    run_dir: RunDirectory, ctx: zmq.Context[Any]
) -> None:
    endpoint = run_dir.endpoint("big")
    with Subscriber(endpoint, [""], bind=True, context=ctx,
                    options=BusOptions(max_message_bytes=10_000)) as sub:
        pub = raw(ctx, zmq.PUB, endpoint, False)
        try:
            hb = sentinel_frames(Heartbeat(node="ok"))
            pump(lambda: sub.recv(10) is not None, lambda: pub.send_multipart([b"t", *hb]))
            pub.send_multipart([b"t", PREFIX + b"\x00" * 20_000])
            # libzmq drops the connection; the PUB reconnects and later messages arrive
            got: list[Any] = []
            pump(lambda: bool(got), lambda: (pub.send_multipart([b"t", *hb]),
                                             got.extend([g] if (g := sub.recv(20)) else [])))
            assert sub.stats.dropped == {}
        finally:
            pub.close()


_SOCKETS: dict[str, Any] = {}


def _cached(name: str, make: Callable[[], Any]) -> Any:
    """Sockets live across hypothesis examples (one per test), closed at exit."""
    if name not in _SOCKETS:
        _SOCKETS[name] = make()
    return _SOCKETS[name]


@pytest.fixture(scope="module", autouse=True)
def _close_cached() -> Iterator[None]:
    yield
    for sock in _SOCKETS.values():
        sock.close()
    _SOCKETS.clear()
