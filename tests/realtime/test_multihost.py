"""Two "hosts" (network namespaces joined by a veth pair) talk over TCP + CurveZMQ.

The netns tests need root (CAP_NET_ADMIN) and iproute2; skipped with the reason
otherwise. The addresses (10.200.N.1/30 and .2/30) exist only on the veth pair
inside the two namespaces, so no traffic leaves them. Namespaces are always
deleted. The same server and clients also run as plain processes on loopback
(no root). Keys and the server's allow-list come from `rtagent keys`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from demos.cli import main as cli_main

NODES = str(Path(__file__).resolve().parents[1] / "helpers" / "bus_nodes.py")


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def two_hosts() -> Iterator[tuple[str, str, str, str]]:
    """(netns A, address A, netns B, address B), torn down afterwards."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2 `ip` is not installed")
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root (CAP_NET_ADMIN)")
    tag = f"rta{os.getpid() % 100000}"
    ns_a, ns_b = f"{tag}a", f"{tag}b"
    subnet = os.getpid() % 250
    addr_a, addr_b = f"10.200.{subnet}.1", f"10.200.{subnet}.2"
    try:
        probe = ip("netns", "add", ns_a)
        if probe.returncode != 0:
            pytest.skip(f"cannot create a network namespace here: {probe.stderr.strip()}")
        steps = [
            ("netns", "add", ns_b),
            ("link", "add", f"{tag}x", "type", "veth", "peer", "name", f"{tag}y"),
            ("link", "set", f"{tag}x", "netns", ns_a),
            ("link", "set", f"{tag}y", "netns", ns_b),
            ("-n", ns_a, "addr", "add", f"{addr_a}/30", "dev", f"{tag}x"),
            ("-n", ns_b, "addr", "add", f"{addr_b}/30", "dev", f"{tag}y"),
            ("-n", ns_a, "link", "set", f"{tag}x", "up"),
            ("-n", ns_b, "link", "set", f"{tag}y", "up"),
            ("-n", ns_a, "link", "set", "lo", "up"),
            ("-n", ns_b, "link", "set", "lo", "up"),
        ]
        for step in steps:
            done = ip(*step)
            if done.returncode != 0:
                pytest.skip(f"cannot set up the veth link (ip {' '.join(step)}): "
                            f"{done.stderr.strip()}")
        yield ns_a, addr_a, ns_b, addr_b
    finally:
        for ns in (ns_a, ns_b):
            ip("netns", "del", ns)  # removes the veth pair with it
        ip("link", "del", f"{tag}x")
        left = ip("netns", "list").stdout
        assert ns_a not in left and ns_b not in left, f"namespaces left behind: {left}"


def serve_and_call(server_at: list[str], client_at: list[str], ip: str, key_dir: Path,
                   roles: list[str]) -> list[dict[str, object]]:
    """Start ``tcp_server`` (command prefix ``server_at``), run each client role
    (prefix ``client_at``) against it; their JSON outputs."""
    assert cli_main(["keys", "--name", "server", "--name", "client", "--dir", str(key_dir)]) == 0
    env = {**os.environ, "RTAGENT_RUN_DIR": str(key_dir / "run")}
    server_cmd = [*server_at, sys.executable, NODES, "tcp_server", ip, str(key_dir)]
    results = []
    with subprocess.Popen(server_cmd, env=env, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            ready, tools_port, frames_port = server.stdout.readline().split()
            assert ready == "ready"
            for role in roles:
                client = subprocess.run(
                    [*client_at, sys.executable, NODES, role, ip, str(key_dir), tools_port,
                     frames_port], env=env, capture_output=True, text=True, timeout=120)
                assert client.returncode == 0, client.stderr
                results.append(json.loads(client.stdout.strip().splitlines()[-1]))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return results


GOOD = {"insecure_refused": "InsecureEndpointError", "sum": 42, "frames": 3, "frames_equal": True}
STRANGER = {"sum": "no reply", "frames": 0}


@pytest.mark.netns
def test_tcp_with_curve_between_two_network_namespaces(
    two_hosts: tuple[str, str, str, str], tmp_path: Path
) -> None:
    ns_a, addr_a, ns_b, _ = two_hosts
    good, stranger, again = serve_and_call(
        ["ip", "netns", "exec", ns_a], ["ip", "netns", "exec", ns_b], addr_a, tmp_path,
        ["tcp_client", "tcp_stranger", "tcp_client"])
    assert good == GOOD and again == GOOD
    assert stranger == STRANGER  # random keys: no reply, no frames


def test_a_client_with_random_keys_gets_nothing_over_loopback(tmp_path: Path) -> None:
    good, stranger = serve_and_call([], [], "127.0.0.1", tmp_path, ["tcp_client",
                                                                    "tcp_stranger"])
    assert good == {k: v for k, v in GOOD.items() if k != "insecure_refused"}  # loopback: allowed
    assert stranger == STRANGER
