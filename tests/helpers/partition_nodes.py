"""The two ends of the partition test, run as processes (one per network namespace).

    python tests/helpers/partition_nodes.py actuator IP KEY_DIR
    python tests/helpers/partition_nodes.py commander IP KEY_DIR PORT

``actuator``: the robot's real :class:`~sim_envs.tabletop.actuation.Actuator` (and its
watchdog) at 80 Hz behind a Curve-secured SUB bound on ``IP`` (the clients in
KEY_DIR/allowed_clients); the arm tracks its targets perfectly (no sim). Prints
``ready PORT``, then a JSON line each time it starts or stops acting on commands.
``commander``: a decision stand-in sending move commands at 16 Hz to ``IP:PORT``,
each with a deadline 125 ms after it was sent (two decision periods, as the robot
decision does).
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402

from realtime.bus import LatestValueSubscriber, Publisher  # noqa: E402
from realtime.endpoints import (  # noqa: E402
    ALLOWED_CLIENTS_FILE,
    Security,
    load_allowed_clients,
    load_keypair,
    load_public_key,
)
from realtime.messages import Command  # noqa: E402
from realtime.node import Node  # noqa: E402


def actuator(node: Node, ip: str, key_dir: str) -> None:
    from sim_envs.tabletop.actuation import Actuator, ActuatorOptions, CommandStamp
    from sim_envs.tabletop.kinematics import PandaKinematics
    from sim_envs.tabletop.scene import HOME_Q, JointState
    from sim_envs.tabletop.wire import command_from_msg

    security = Security.server(load_keypair(os.path.join(key_dir, "server.key_secret")),
                               allowed_clients=load_allowed_clients(
                                   os.path.join(key_dir, ALLOWED_CLIENTS_FILE)))
    cmds = node.own(LatestValueSubscriber(f"tcp://{ip}:*", ("cmd",), types=(Command,),
                                          bind=True, security=security))
    act = Actuator(node.own(PandaKinematics()), ActuatorOptions(watchdog_timeout_s=0.3))
    print("ready", cmds.bound_endpoint.rsplit(":", 1)[1], flush=True)
    q, acting = np.asarray(HOME_Q, dtype=np.float64), None
    next_s = time.monotonic()
    while not node.stopping:
        next_s += 1 / 80
        time.sleep(max(0.0, next_s - time.monotonic()))
        got = cmds.read_latest(max_age_ms=60_000, topic="cmd")  # the deadline judges age
        fresh = got if got is not None and got.new else None
        cmd = stamp = None
        if fresh is not None:
            msg = fresh.message
            assert isinstance(msg, Command)
            cmd = command_from_msg(msg)
            stamp = CommandStamp(msg.seq, msg.source, msg.deadline_ns / 1e9)
        now_s = time.monotonic()
        out = act.update(JointState(np.concatenate([q, [0.04, 0.04]]), np.zeros(9)), now_s,
                         cmd, stamp)
        q = out.arm_q
        if (not out.holding) != acting:
            acting = not out.holding
            print(json.dumps({"t_ns": time.monotonic_ns(), "acting": acting,
                              "trips": act.watchdog.trips, "resumes": act.watchdog.resumes,
                              "refused": dict(act.refused)}), flush=True)
        node.beat()


def commander(node: Node, ip: str, key_dir: str, port: str) -> None:
    security = Security.client(load_keypair(os.path.join(key_dir, "client.key_secret")),
                               load_public_key(os.path.join(key_dir, "server.key")))
    pub = node.own(Publisher(f"tcp://{ip}:{port}", source=f"decision-{os.getpid()}",
                             bind=False, security=security))
    i = 0
    while not node.wait(1 / 16):
        i += 1
        y = 0.1 if (i // 32) % 2 else -0.1  # back and forth: the arm keeps moving
        pub.publish(Command(mode="move", target_position_m=(0.5, y, 0.3), gripper_width_m=0.08,
                            deadline_ns=time.monotonic_ns() + 125_000_000), topic="cmd")
        node.beat()


def main(argv: list[str]) -> int:
    roles = {"actuator": actuator, "commander": commander}
    node = Node.from_env(default_name=argv[0])
    node.install_signal_handlers()
    with node:
        roles[argv[0]](node, *argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
