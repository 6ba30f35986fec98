"""Two "hosts" (network namespaces joined by a veth pair) talk over TCP + CurveZMQ.

Needs root (CAP_NET_ADMIN) and iproute2; skipped with the reason otherwise. The
addresses (10.200.N.1/30 and .2/30) exist only on the veth pair inside the two
namespaces, so no traffic leaves them. Namespaces are always deleted.
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

from realtime.endpoints import generate_keypair, save_keypair

NODES = str(Path(__file__).with_name("bus_nodes.py"))

pytestmark = pytest.mark.netns


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


def test_tcp_with_curve_between_two_network_namespaces(
    two_hosts: tuple[str, str, str, str], tmp_path: Path
) -> None:
    ns_a, addr_a, ns_b, _ = two_hosts
    save_keypair(generate_keypair(), tmp_path, "server")
    save_keypair(generate_keypair(), tmp_path, "client")
    env = {**os.environ, "RTAGENT_RUN_DIR": str(tmp_path / "run")}
    server_cmd = ["ip", "netns", "exec", ns_a, sys.executable, NODES, "tcp_server", addr_a,
                  str(tmp_path)]
    with subprocess.Popen(server_cmd, env=env, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            client = subprocess.run(
                ["ip", "netns", "exec", ns_b, sys.executable, NODES, "tcp_client", addr_a,
                 str(tmp_path)],
                env=env, capture_output=True, text=True, timeout=120,
            )
            assert client.returncode == 0, client.stderr
            result = json.loads(client.stdout.strip().splitlines()[-1])
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert result == {"insecure_refused": "InsecureEndpointError", "sum": 42,
                      "frames": 3, "frames_equal": True}
