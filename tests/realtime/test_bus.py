"""Bus sockets over real ZeroMQ (IPC) in one process: latest value, commands, requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from realtime.bus import (
    BusOptions,
    CommandChannel,
    CommandServer,
    LatestValueSubscriber,
    Publisher,
    ReplyServer,
    RequestClient,
    RequestTimeoutError,
)
from realtime.clock import FakeClock
from realtime.endpoints import RunDirectory
from realtime.errors import ConfigError
from realtime.messages import Ack, CameraFrame, Command, ToolReply, ToolRequest, WorldState


@pytest.fixture
def run_dir() -> Iterator[RunDirectory]:
    with RunDirectory() as d:
        yield d
    assert not d.path.exists()


def wait_for(cond: Callable[[], object], limit_s: float = 10.0) -> None:
    end = time.monotonic() + limit_s
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.005)


def connected_pair(run_dir: RunDirectory, **sub_kw: object) -> tuple[Publisher, LatestValueSubscriber]:
    pub = Publisher(run_dir.endpoint("t"), source="pub")
    sub = LatestValueSubscriber(run_dir.endpoint("t"), **sub_kw)  # type: ignore[arg-type]

    def probe() -> bool:  # slow joiner: publish until the subscription is live
        pub.publish(WorldState(version=0), topic="probe")
        return sub.poll() > 0 or sub.read_latest(1e9, "probe") is not None

    wait_for(probe)
    return pub, sub


def test_publisher_stamps_and_reader_keeps_only_the_newest(run_dir: RunDirectory) -> None:
    pub, sub = connected_pair(run_dir)
    with pub, sub:
        sent = [WorldState(version=v) for v in range(1, 11)]
        for msg in sent:
            pub.publish(msg)
        assert [m.seq for m in sent] == list(range(sent[0].seq, sent[0].seq + 10))
        wait_for(lambda: sub.poll() or sub.stats.received >= 11)
        wait_for(lambda: (got := sub.read_latest(60_000, "WorldState")) is not None
                 and got.message.version == 10)
        got = sub.read_latest(60_000, "WorldState")
        assert got is not None and isinstance(got.message, WorldState)
        assert (got.message.source, got.message.seq) == ("pub", sent[-1].seq)
        assert got.message.t_ns > 0 and got.age_ms >= 0
        assert not got.new  # already read once in wait_for
        assert sub.stats.superseded >= 9


def test_stale_values_are_dropped_in_virtual_time(run_dir: RunDirectory) -> None:
    clock = FakeClock(start_ns=1_000_000_000)
    pub = Publisher(run_dir.endpoint("t"), source="pub", clock_ns=clock.now_ns)
    sub = LatestValueSubscriber(run_dir.endpoint("t"), ["WorldState"], clock_ns=clock.now_ns)
    with pub, sub:
        wait_for(lambda: (pub.publish(WorldState()), sub.poll())[1] > 0)
        clock.advance(40_000_000)
        got = sub.read_latest(max_age_ms=50)
        assert got is not None and got.age_ms == pytest.approx(40.0)
        clock.advance(20_000_000)
        assert sub.read_latest(max_age_ms=50) is None
        assert sub.stats.stale == 1
        assert sub.read_latest(max_age_ms=1e9) is None  # a stale value is gone for good


def test_receive_age_and_type_filter(run_dir: RunDirectory) -> None:
    pub, sub = connected_pair(run_dir, topics=[""], types=(WorldState,), age_from="receive")
    with pub, sub:
        msg = WorldState(version=3)
        msg.t_ns = 1  # a foreign host's clock: ignored with age_from="receive"
        pub.publish(msg)
        pub.publish(Command(), topic="WorldState")
        wait_for(lambda: sub.poll() or sub.stats.dropped["unexpected_type"] == 1)
        got = sub.read_latest(max_age_ms=10_000, topic="WorldState")
        assert got is not None and got.message.version == 3


def test_camera_frames_arrive_intact_and_uncopied(run_dir: RunDirectory) -> None:
    pub, sub = connected_pair(run_dir)
    with pub, sub:
        rgb = np.random.default_rng(1).integers(0, 255, (480, 640, 3), dtype=np.uint8)
        pub.publish(CameraFrame(rgb=rgb, width_px=640, height_px=480))
        got = sub.wait_latest(max_age_ms=10_000, timeout_ms=10_000, topic="CameraFrame")
        assert got is not None and isinstance(got.message, CameraFrame)
        assert got.message.rgb is not None and not got.message.rgb.flags.owndata
        np.testing.assert_array_equal(got.message.rgb, rgb)
        assert pub.codec.copies == 0


def test_commands_are_acked_and_unacked_ones_time_out(run_dir: RunDirectory) -> None:
    clock = FakeClock()
    with CommandChannel(run_dir.endpoint("cmd"), source="decision", ack_timeout_ms=100,
                        clock_ns=clock.now_ns) as ch:
        assert ch.send(Command()) is None  # no peer: dropped at once, never queued
        assert ch.stats.dropped["full"] == 1
        with CommandServer(run_dir.endpoint("cmd"), source="actuation") as srv:
            wait_for(lambda: ch.send(Command(mode="move", tick=1)) is not None)
            got = srv.recv(timeout_ms=10_000)
            assert got is not None and isinstance(got.message, Command)
            assert got.message.source == "decision"
            srv.ack(got, detail="moving")
            acks: list[Ack] = []
            wait_for(lambda: acks.extend(ch.poll_acks()) or acks)
            assert acks[0].ack_seq == got.message.seq and acks[0].detail == "moving"
            assert ch.pending == 0
            ch.send(Command())
            assert srv.recv(timeout_ms=10_000) is not None  # received, never acked
            clock.advance(101_000_000)
            assert ch.poll_acks() == [] and ch.pending == 0 and ch.stats.timeouts == 1


def test_send_and_wait(run_dir: RunDirectory) -> None:
    with CommandServer(run_dir.endpoint("cmd"), source="act") as srv, \
            CommandChannel(run_dir.endpoint("cmd"), source="dec") as ch:
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                got = srv.recv(timeout_ms=20)
                if got is not None:
                    srv.ack(got, ok=False, detail="out of reach")

        t = threading.Thread(target=serve)
        t.start()
        try:
            wait_for(lambda: ch.sock.poll(0, 2))  # POLLOUT: connected
            ack = ch.send_and_wait(Command(mode="move"), timeout_ms=10_000)
            assert not ack.ok and ack.detail == "out of reach"
        finally:
            stop.set()
            t.join()
        with pytest.raises(RequestTimeoutError, match="no ack"):
            ch.send_and_wait(Command(), timeout_ms=50)


def test_expired_commands_are_dropped(run_dir: RunDirectory) -> None:
    with CommandServer(run_dir.endpoint("cmd"), source="act", drop_expired=True) as srv, \
            CommandChannel(run_dir.endpoint("cmd"), source="dec") as ch:
        wait_for(lambda: ch.send(Command(deadline_ns=1)) is not None)
        ch.send(Command(deadline_ns=time.monotonic_ns() + 60_000_000_000, tick=2))
        got = srv.recv(timeout_ms=10_000)
        assert got is not None and isinstance(got.message, Command) and got.message.tick == 2
        assert srv.stats.dropped["expired"] == 1


def test_request_reply_with_errors_timeouts_and_late_replies(run_dir: RunDirectory) -> None:
    srv = ReplyServer(run_dir.endpoint("tools"), source="tools")
    cli = RequestClient(run_dir.endpoint("tools"), source="decision")
    with srv, cli:
        def handler(req: ToolRequest) -> ToolReply:
            if req.name == "boom":
                raise RuntimeError("tool failed")
            return ToolReply(value_json=req.arguments_json)

        stop = threading.Event()
        t = threading.Thread(target=srv.serve, args=(handler, stop.is_set, 10))
        t.start()
        try:
            ok = cli.call(ToolRequest(name="echo", arguments_json='{"a":1}'), timeout_ms=10_000)
            assert ok.ok and ok.value_json == '{"a":1}' and ok.call_id.startswith("decision-")
            bad = cli.call(ToolRequest(name="boom"), timeout_ms=10_000)
            assert not bad.ok and bad.error == "RuntimeError: tool failed"
            ids = [cli.submit(ToolRequest(name="echo", arguments_json=str(i))) for i in range(5)]
            replies: list[ToolReply] = []
            wait_for(lambda: replies.extend(cli.poll()) or len(replies) == 5)
            assert sorted(r.call_id for r in replies) == sorted(ids)  # type: ignore[type-var]
        finally:
            stop.set()
            t.join()
        with pytest.raises(RequestTimeoutError, match="no reply"):
            cli.call(ToolRequest(name="echo"), timeout_ms=30)
        got = srv.recv(timeout_ms=10_000)  # the server answers too late
        assert got is not None
        srv.reply(got, ToolReply())
        wait_for(lambda: cli.poll() == [] and cli.stats.late == 1)


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="sndhwm"):
        BusOptions(sndhwm=0)
    with pytest.raises(ConfigError, match="linger_ms"):
        BusOptions(linger_ms=-1)


def test_subscriber_delivers_every_message_in_order(run_dir: RunDirectory) -> None:
    from realtime.bus import Subscriber
    from realtime.bus_base import BusOptions
    from realtime.messages import AudioChunk

    # A stream that must not lose messages queues more than a latest-value topic.
    deep = BusOptions(sndhwm=256, rcvhwm=256)
    with Publisher(run_dir.endpoint("t"), source="pub", options=deep) as pub, \
            Subscriber(run_dir.endpoint("t"), ["AudioChunk"], options=deep) as sub:
        assert sub.recv(timeout_ms=10) is None

        def subscribed() -> bool:
            pub.publish(AudioChunk(stream="probe"))
            return sub.recv(timeout_ms=10) is not None

        wait_for(subscribed)
        while sub.recv(timeout_ms=50) is not None:
            pass
        for i in range(50):
            pub.publish(AudioChunk(pcm=np.full(160, i, np.int16), start_sample=160 * i))
        got = [sub.recv(timeout_ms=2_000) for _ in range(50)]
        assert [g.message.start_sample for g in got if g] == [160 * i for i in range(50)]
        assert all(isinstance(g.message, AudioChunk) and g.message.pcm is not None
                   and int(g.message.pcm[0]) == i for i, g in enumerate(got) if g)


def test_command_sockets_refuse_oversized_messages(run_dir: RunDirectory) -> None:
    from realtime.codec import OversizedMessageError
    from realtime.messages import JointTargets

    with CommandChannel(run_dir.endpoint("cmd"), source="dec") as ch, \
            pytest.raises(OversizedMessageError):
        ch.send(JointTargets(positions_rad=[0.0] * 200_000))
