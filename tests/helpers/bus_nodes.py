"""Small real nodes for the bus, supervisor and watchdog tests (run as processes).

    python tests/helpers/bus_nodes.py ROLE [ARG]

Roles: ticker (PUB WorldState on ``ticks``), relay (``ticks`` -> ``relayed``),
sink (counts ``relayed``, reports in heartbeat counters), echo (republishes
``in`` on ``out`` and serves ``sum``/``fail`` tool calls on ``tools``),
decider (sends Commands on ``cmd`` every 20 ms), mute (beats ARG times, then
hangs), crash (beats, then exits with status 3 after ARG beats), stuck (ticks,
then hangs beating from a helper thread), loader (loads ARG s, then ticks),
long_turn (ticks, its turn never ends), deaf (ignores SIGTERM), tcp_server
(IP KEY_DIR), tcp_client and tcp_stranger (IP KEY_DIR TOOLS_PORT FRAMES_PORT:
the Curve multi-host pair, and a client with random keys).
Endpoints live in ``$RTAGENT_RUN_DIR`` (the supervisor or the test sets it).
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402

from realtime.bus import (  # noqa: E402
    CommandChannel,
    LatestValueSubscriber,
    Publisher,
    ReplyServer,
    RequestClient,
    RequestTimeoutError,
    Subscriber,
)
from realtime.endpoints import (  # noqa: E402
    ALLOWED_CLIENTS_FILE,
    InsecureEndpointError,
    Security,
    generate_keypair,
    load_allowed_clients,
    load_keypair,
    load_public_key,
)
from realtime.messages import (  # noqa: E402
    CameraFrame,
    Command,
    ToolReply,
    ToolRequest,
    WorldState,
)
from realtime.node import Node  # noqa: E402


def ticker(node: Node) -> None:
    pub = node.own(Publisher(node.run_dir.endpoint("ticks"), source=node.name))
    i = 0
    while not node.wait(0.02):
        i += 1
        pub.publish(WorldState(version=i))
        node.counters["sent"] = i
        node.beat()


def relay(node: Node) -> None:
    sub = node.own(LatestValueSubscriber(node.run_dir.endpoint("ticks"), ["WorldState"]))
    pub = node.own(Publisher(node.run_dir.endpoint("relayed"), source=f"relay:{os.getpid()}"))
    while not node.stopping:
        got = sub.wait_latest(max_age_ms=500, timeout_ms=50)
        if got is not None:
            pub.publish(WorldState(version=got.message.version))
        node.beat()


def sink(node: Node) -> None:
    sub = node.own(LatestValueSubscriber(node.run_dir.endpoint("relayed"), ["WorldState"]))
    node.counters.update(received=0, relay_pid=0)
    while not node.stopping:
        got = sub.wait_latest(max_age_ms=500, timeout_ms=50)
        if got is not None:
            node.counters["received"] += 1
            node.counters["relay_pid"] = int(got.message.source.split(":")[1])
        node.beat()


def echo(node: Node) -> None:
    sub = node.own(LatestValueSubscriber(node.run_dir.endpoint("in"), [""], age_from="receive"))
    pub = node.own(Publisher(node.run_dir.endpoint("out"), source=node.name))
    tools = node.own(ReplyServer(node.run_dir.endpoint("tools"), source=node.name))

    def handle(req: ToolRequest) -> ToolReply:
        args = json.loads(req.arguments_json)
        if req.name == "fail":
            raise ValueError("asked to fail")
        return ToolReply(value_json=json.dumps(sum(args["values"])))

    while not node.stopping:
        got = sub.read_latest(max_age_ms=10_000)
        if got is not None and got.new:
            pub.publish(got.message, topic=got.topic)
        tools.serve_once(handle, timeout_ms=5)
        node.beat()


def decider(node: Node) -> None:
    ch = node.own(CommandChannel(node.run_dir.endpoint("cmd"), source=node.name))
    tick = 0
    while not node.wait(0.02):
        tick += 1
        ch.send(Command(mode="move", target_position_m=(0.4, 0.0, 0.2), tick=tick))
        ch.poll_acks()
        node.beat()


def tcp_server(node: Node, ip: str, key_dir: str) -> None:
    """Curve-secured tool server and frame publisher on ``ip`` (the multi-host tests):
    accepts the clients in KEY_DIR/allowed_clients (written by ``rtagent keys``);
    prints ``ready TOOLS_PORT FRAMES_PORT``."""
    keys = load_keypair(os.path.join(key_dir, "server.key_secret"))
    allowed = load_allowed_clients(os.path.join(key_dir, ALLOWED_CLIENTS_FILE))
    security = Security.server(keys, allowed_clients=allowed)
    tools = node.own(ReplyServer(f"tcp://{ip}:*", source=node.name, security=security))
    pub = node.own(Publisher(f"tcp://{ip}:*", source=node.name, security=security))
    rgb = np.arange(480 * 640 * 3, dtype=np.uint32).astype(np.uint8).reshape(480, 640, 3)
    ports = [e.rsplit(":", 1)[1] for e in (tools.bound_endpoint, pub.bound_endpoint)]
    print("ready", *ports, flush=True)
    n = 0
    while not node.stopping:
        n += 1
        pub.publish(CameraFrame(rgb=rgb, width_px=640, height_px=480, camera=str(n)))
        tools.serve_once(lambda r: ToolReply(value_json=json.dumps(
            sum(json.loads(r.arguments_json)["values"]))), timeout_ms=20)


def tcp_client(node: Node, ip: str, key_dir: str, tools_port: str, frames_port: str) -> None:
    """Calls a tool and reads frames from ``tcp_server`` on another host; prints JSON."""
    keys = load_keypair(os.path.join(key_dir, "client.key_secret"))
    server = load_public_key(os.path.join(key_dir, "server.key"))
    out: dict[str, object] = {}
    try:  # without keys, an off-loopback endpoint is refused before any socket exists
        Subscriber(f"tcp://{ip}:{frames_port}", ["CameraFrame"]).close()
    except InsecureEndpointError as exc:
        out["insecure_refused"] = type(exc).__name__
    security = Security.client(keys, server)
    with RequestClient(f"tcp://{ip}:{tools_port}", source=node.name, security=security) as cli:
        reply = cli.call(ToolRequest(name="sum", arguments_json='{"values": [1, 2, 39]}'),
                         timeout_ms=30_000)
        out["sum"] = json.loads(reply.value_json)
    with Subscriber(f"tcp://{ip}:{frames_port}", ["CameraFrame"], security=security,
                    age_from="receive") as sub:
        expected = np.arange(480 * 640 * 3, dtype=np.uint32).astype(np.uint8).reshape(480, 640, 3)
        frames = 0
        while frames < 3:
            got = sub.recv(timeout_ms=30_000)
            if got is None:
                break
            assert isinstance(got.message, CameraFrame) and got.message.rgb is not None
            out["frames_equal"] = bool(np.array_equal(got.message.rgb, expected))
            frames += 1
        out["frames"] = frames
    print(json.dumps(out), flush=True)


def tcp_stranger(node: Node, ip: str, key_dir: str, tools_port: str, frames_port: str) -> None:
    """A client holding fresh random keys (it knows the server's public key, but is
    not in the allow-list): prints what it got, JSON."""
    security = Security.client(generate_keypair(), load_public_key(
        os.path.join(key_dir, "server.key")))
    out: dict[str, object] = {}
    with RequestClient(f"tcp://{ip}:{tools_port}", source=node.name, security=security) as cli:
        try:
            reply = cli.call(ToolRequest(name="sum", arguments_json='{"values": [1]}'),
                             timeout_ms=2000)
            out["sum"] = json.loads(reply.value_json)
        except RequestTimeoutError:
            out["sum"] = "no reply"
    with Subscriber(f"tcp://{ip}:{frames_port}", ["CameraFrame"], security=security) as sub:
        out["frames"] = int(sub.recv(timeout_ms=1000) is not None)
    print(json.dumps(out), flush=True)


def mute(node: Node, beats: int) -> None:
    for _ in range(beats):
        node.beat(force=True)
        node.wait(0.02)
    while not node.stopping:  # hung: no more heartbeats
        node.wait(0.05)


def stuck(node: Node) -> None:
    """Ticks a while, then its loop hangs in a call that beats from a helper thread."""
    for _ in range(5):
        node.beat(force=True)
        node.wait(0.02)
    with node.beating(0.05):
        while not node.stopping:
            node.wait(0.05)


def loader(node: Node, seconds: float) -> None:
    """Loads (beating from a helper thread, still ``starting``) for ARG s, then ticks."""
    with node.beating(0.05):
        node.wait(seconds)
    ticker(node)


def long_turn(node: Node) -> None:
    """Ticks fine, but its agent's turn (started now) never ends."""
    started = time.monotonic_ns()
    node.report_turns(lambda: (started, 0))
    ticker(node)


def deaf(node: Node) -> None:
    """Beats on, but never looks at ``node.stopping``: SIGTERM does not stop it."""
    while True:
        time.sleep(0.02)
        node.beat()


def crash(node: Node, beats: int) -> None:
    for _ in range(beats):
        node.beat(force=True)
        node.wait(0.02)
    node.close()
    raise SystemExit(3)


ROLES = {"ticker": ticker, "relay": relay, "sink": sink, "echo": echo, "decider": decider,
         "stuck": stuck, "long_turn": long_turn, "deaf": deaf}


def main(argv: list[str]) -> int:
    role = argv[0]
    node = Node.from_env(default_name=role, heartbeat_period_ms=50)
    node.install_signal_handlers()
    with node:
        node.beat("starting", force=True)
        if role in ROLES:
            ROLES[role](node)
        elif role == "mute":
            mute(node, int(argv[1]))
        elif role == "crash":
            crash(node, int(argv[1]))
        elif role == "loader":
            loader(node, float(argv[1]))
        elif role == "tcp_server":
            tcp_server(node, argv[1], argv[2])
        elif role == "tcp_client":
            tcp_client(node, *argv[1:5])
        elif role == "tcp_stranger":
            tcp_stranger(node, *argv[1:5])
        else:
            raise SystemExit(f"unknown role {role!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
