"""Endpoints and security: IPC run directories, TCP refused without keys off loopback,
CurveZMQ over real TCP sockets (wrong keys and unlisted clients get nothing), key files."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from demos.cli import main as cli_main
from realtime.bus import ReplyServer, RequestClient, RequestTimeoutError
from realtime.endpoints import (
    ALLOWED_CLIENTS_FILE,
    RUN_DIR_ENV,
    CurveKeys,
    InsecureEndpointError,
    RunDirectory,
    Security,
    add_allowed_client,
    check_endpoint,
    generate_keypair,
    load_allowed_clients,
    load_keypair,
    load_public_key,
    save_keypair,
)
from realtime.errors import ConfigError, RtAgentError
from realtime.messages import ToolReply, ToolRequest

NONE = Security()


@pytest.mark.parametrize("endpoint", ["tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://10.0.0.1:9",
                                      "tcp://example.com:80", "tcp://eth0;10.0.0.2:7"])
def test_tcp_off_loopback_without_keys_is_refused(endpoint: str) -> None:
    with pytest.raises(InsecureEndpointError, match="rtagent keys"):
        check_endpoint(endpoint, NONE)
    keys = generate_keypair()
    assert check_endpoint(endpoint, Security.server(keys, [keys.public])) == endpoint


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:*", "tcp://localhost:5555",
                                      "tcp://[::1]:5555", "tcp://127.0.0.2:1", "ipc:///tmp/x.sock"])
def test_loopback_and_ipc_need_no_keys(endpoint: str) -> None:
    assert check_endpoint(endpoint, NONE) == endpoint


@pytest.mark.parametrize("endpoint", ["", "udp://1.2.3.4:5", "tcp://nohost", "ipc://",
                                      "ipc:///" + "x" * 200])
def test_malformed_endpoints_are_refused(endpoint: str) -> None:
    with pytest.raises(ConfigError):
        check_endpoint(endpoint, NONE)


def test_security_is_validated() -> None:
    keys = generate_keypair()
    with pytest.raises(ConfigError, match="needs keys"):
        Security(role="server")
    with pytest.raises(ConfigError, match="server's 40-byte public key"):
        Security(role="client", keys=keys)
    with pytest.raises(ConfigError, match="server' only"):
        Security(role="client", keys=keys, server_public=keys.public,
                 allowed_clients=frozenset())
    with pytest.raises(ConfigError, match="allow_any_client=True"):  # encryption without auth
        Security.server(keys)
    with pytest.raises(ConfigError, match="allow_any_client=True"):
        Security(role="server", keys=keys)
    with pytest.raises(ConfigError, match="empty"):
        Security.server(keys, [])
    with pytest.raises(ConfigError, match="not both"):
        Security.server(keys, [keys.public], allow_any_client=True)
    assert "secret=<hidden>" in repr(keys) and keys.secret.decode() not in repr(keys)


@pytest.fixture
def served() -> Iterator[tuple[str, bytes, bytes]]:
    """A Curve ReplyServer on loopback TCP allowing one client; yields
    (endpoint, server public key, allowed client's key file contents)."""
    server_keys, allowed = generate_keypair(), generate_keypair()
    security = Security.server(server_keys, allowed_clients=[allowed.public])
    with ReplyServer("tcp://127.0.0.1:*", source="tools", security=security) as srv:
        stop = threading.Event()
        thread = threading.Thread(
            target=srv.serve, args=(lambda r: ToolReply(value_json='"hi"'), stop.is_set, 10))
        thread.start()
        try:
            yield srv.bound_endpoint, server_keys.public, allowed.public + b" " + allowed.secret
        finally:
            stop.set()
            thread.join()


def call(endpoint: str, security: Security, timeout_ms: float) -> ToolReply:
    with RequestClient(endpoint, source="dec", security=security) as cli:
        return cli.call(ToolRequest(name="hello"), timeout_ms=timeout_ms)


def test_curve_over_tcp_serves_the_allowed_client_only(served: tuple[str, bytes, bytes]) -> None:
    endpoint, server_public, pair = served
    public, secret = pair.split()
    allowed = Security.client(CurveKeys(public=public, secret=secret), server_public)
    assert call(endpoint, allowed, 30_000).value_json == '"hi"'
    stranger = Security.client(generate_keypair(), server_public)
    with pytest.raises(RequestTimeoutError):
        call(endpoint, stranger, 300)
    wrong_server = Security.client(CurveKeys(public=public, secret=secret), generate_keypair().public)
    with pytest.raises(RequestTimeoutError):
        call(endpoint, wrong_server, 300)
    with pytest.raises(RequestTimeoutError):  # plain TCP to a Curve server
        call(endpoint, NONE, 300)
    assert call(endpoint, allowed, 30_000).ok  # the server is unharmed


def test_a_server_open_to_any_client_on_purpose() -> None:
    server_keys = generate_keypair()
    security = Security.server(server_keys, allow_any_client=True)
    with ReplyServer("tcp://127.0.0.1:*", source="open", security=security) as srv:
        stop = threading.Event()
        thread = threading.Thread(
            target=srv.serve, args=(lambda r: ToolReply(value_json='"open"'), stop.is_set, 10))
        thread.start()
        try:
            anyone = Security.client(generate_keypair(), server_keys.public)
            assert call(srv.bound_endpoint, anyone, 30_000).value_json == '"open"'
        finally:
            stop.set()
            thread.join()


def test_allow_list_file(tmp_path: Path) -> None:
    path = tmp_path / "allowed_clients"
    with pytest.raises(RtAgentError, match="rtagent keys"):
        load_allowed_clients(path)
    a, b = generate_keypair(), generate_keypair()
    hashed = CurveKeys(public=b"#" + a.public[1:], secret=a.secret)  # '#' is a Z85 digit
    assert add_allowed_client(path, a.public, "robot") is True
    assert add_allowed_client(path, a.public, "robot") is False
    assert add_allowed_client(path, hashed.public) is True
    path.write_text(path.read_text() + "# a comment\n\n" + b.public.decode() + " laptop\n")
    assert load_allowed_clients(path) == {a.public, hashed.public, b.public}
    path.write_text("tooshort\n")
    with pytest.raises(ConfigError, match=":1: expected a 40-character"):
        load_allowed_clients(path)
    path.write_text("# only comments\n")
    with pytest.raises(ConfigError, match="lists no client keys"):
        load_allowed_clients(path)


def test_key_files(tmp_path: Path) -> None:
    keys = generate_keypair()
    secret_path = save_keypair(keys, tmp_path, "robot")
    assert stat.S_IMODE(os.stat(secret_path).st_mode) == 0o600
    assert load_keypair(secret_path) == keys
    assert load_public_key(tmp_path / "robot.key") == keys.public
    with pytest.raises(RtAgentError, match="exists"):
        save_keypair(generate_keypair(), tmp_path, "robot")
    with pytest.raises(RtAgentError, match="rtagent keys"):
        load_keypair(tmp_path / "missing.key_secret")
    with pytest.raises(ConfigError):
        save_keypair(keys, tmp_path, "../evil")


def test_rtagent_keys_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["keys", "--name", "perception", "--dir", str(tmp_path)]) == 0
    keys = load_keypair(tmp_path / "perception.key_secret")
    assert keys.public.decode() in capsys.readouterr().out
    assert cli_main(["keys", "--name", "perception", "--dir", str(tmp_path)]) == 1
    # the allow-list a server loads: this pair's key, then a peer's made elsewhere
    peer = generate_keypair()
    save_keypair(peer, tmp_path / "elsewhere", "laptop")
    assert cli_main(["keys", "--allow", str(tmp_path / "elsewhere" / "laptop.key"),
                     "--dir", str(tmp_path)]) == 0
    assert load_allowed_clients(tmp_path / ALLOWED_CLIENTS_FILE) == {keys.public, peer.public}
    assert cli_main(["keys", "--dir", str(tmp_path)]) == 1  # neither --name nor --allow
    assert "--allow" in capsys.readouterr().err


def test_run_directory_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    with RunDirectory() as owned:
        assert stat.S_IMODE(os.stat(owned.path).st_mode) == 0o700
        (owned.path / "x.sock").touch()
        monkeypatch.setenv(RUN_DIR_ENV, str(owned.path))
        adopted = RunDirectory.from_env()
        adopted.close()  # not the owner: leaves it
        assert owned.path.exists() and adopted.path == owned.path
        assert owned.endpoint("world") == f"ipc://{owned.path}/world.sock"
    assert not owned.path.exists()
    with RunDirectory() as other, pytest.raises(ConfigError):
        other.endpoint("a/b")


def test_bus_bench_options_say_what_is_wrong() -> None:
    from realtime.bus_measure import BusBenchOptions
    from realtime.errors import ConfigError

    with pytest.raises(ConfigError, match="--rate-hz: expected a positive number"):
        BusBenchOptions(rate_hz=0)
    with pytest.raises(ConfigError, match="transports: expected some of"):
        BusBenchOptions(transports=("udp",))
