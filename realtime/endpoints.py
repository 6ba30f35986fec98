"""Where sockets live: IPC under a per-run directory by default, TCP with CurveZMQ.

- :class:`RunDirectory` owns a private directory (mode 0700) for one run's IPC
  socket files and removes it, files included, on :meth:`RunDirectory.close`.
- :func:`ipc_endpoint` names a socket in it: ``ipc:///…/rtagent-run-…/world.sock``.
- TCP needs CurveZMQ keys (:class:`CurveKeys`, :func:`generate_keypair`,
  :func:`save_keypair`, :func:`load_keypair`) unless the address is loopback
  (``127.0.0.0/8``, ``::1``, ``localhost``) — binding to loopback is the only
  explicit way to go without encryption. ``tcp://*`` or ``0.0.0.0`` without keys
  is refused with :class:`InsecureEndpointError`.
- :class:`Security` says how one socket is secured: ``server`` (binds, holds its
  secret key and the allow-list of client public keys) or ``client`` (holds its
  own pair and the server's public key). A server without an allow-list would
  encrypt without authenticating anyone, so it is refused unless the caller
  says ``allow_any_client=True``. :func:`load_allowed_clients` reads the
  allow-list file ``rtagent keys`` writes (:func:`add_allowed_client`).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from realtime.curve_keys import (
    ALLOWED_CLIENTS_FILE,
    CurveKeys,
    add_allowed_client,
    generate_keypair,
    load_allowed_clients,
    load_keypair,
    load_public_key,
    save_keypair,
)
from realtime.errors import ConfigError, RtAgentError

__all__ = [
    "ALLOWED_CLIENTS_FILE",
    "CurveKeys",
    "InsecureEndpointError",
    "RunDirectory",
    "Security",
    "check_endpoint",
    "generate_keypair",
    "add_allowed_client",
    "ipc_endpoint",
    "is_loopback",
    "load_allowed_clients",
    "load_keypair",
    "load_public_key",
    "remove_stale_run_dirs",
    "save_keypair",
]

RUN_DIR_ENV = "RTAGENT_RUN_DIR"
_MAX_IPC_PATH = 107  # sun_path limit on Linux, minus the NUL


class InsecureEndpointError(RtAgentError):
    """A TCP endpoint off loopback was given without CurveZMQ keys."""


@dataclass(frozen=True)
class Security:
    """CurveZMQ settings of one socket. ``Security()`` means none (IPC or loopback).

    A server accepts only the clients in ``allowed_clients`` (Z85 public keys;
    ZAP, checked in a per-context authenticator thread). Without an allow-list
    any client holding any key pair could connect (encrypted, but nobody is
    authenticated): refused unless ``allow_any_client=True`` says so on purpose.
    """

    role: str = "none"  # "none" | "server" | "client"
    keys: CurveKeys | None = None
    server_public: bytes | None = None  # clients: the server's public key
    allowed_clients: frozenset[bytes] | None = None  # servers: client public keys
    allow_any_client: bool = False  # servers: no allow-list, on purpose

    def __post_init__(self) -> None:
        if self.role not in ("none", "server", "client"):
            raise ConfigError(f"Security.role: expected none/server/client, got {self.role!r}")
        if self.role != "none" and self.keys is None:
            raise ConfigError(f"Security.role={self.role!r} needs keys")
        if self.role == "client" and (not self.server_public or len(self.server_public) != 40):
            raise ConfigError("Security(role='client') needs the server's 40-byte public key")
        wants_server = self.allowed_clients is not None or self.allow_any_client
        if wants_server and self.role != "server":
            raise ConfigError("Security.allowed_clients / allow_any_client apply to "
                              "role='server' only")
        if self.role == "server":
            _check_allow_list(self.allowed_clients, self.allow_any_client)
        for key in self.allowed_clients or ():
            if not isinstance(key, bytes) or len(key) != 40:
                raise ConfigError(f"allowed client key: expected 40 bytes of Z85, got {key!r:.60}")

    @classmethod
    def server(cls, keys: CurveKeys, allowed_clients: Iterable[bytes] | None = None, *,
               allow_any_client: bool = False) -> Security:
        allowed = None if allowed_clients is None else frozenset(allowed_clients)
        return cls(role="server", keys=keys, allowed_clients=allowed,
                   allow_any_client=allow_any_client)

    @classmethod
    def client(cls, keys: CurveKeys, server_public: bytes) -> Security:
        return cls(role="client", keys=keys, server_public=server_public)

    @property
    def enabled(self) -> bool:
        return self.role != "none"

    def apply(self, sock: zmq.Socket[Any]) -> Callable[[], None]:
        """Set the CURVE options on ``sock`` (before bind/connect). Returns a function
        to call when the socket is closed (it releases the client allow-list)."""
        if self.keys is None:
            return _nothing
        sock.curve_secretkey = self.keys.secret
        sock.curve_publickey = self.keys.public
        if self.role == "client":
            assert self.server_public is not None
            sock.curve_serverkey = self.server_public
            return _nothing
        sock.curve_server = True
        if self.allowed_clients is None:  # allow_any_client: no ZAP handler
            return _nothing
        domain = f"rtagent-{id(sock):x}"
        sock.zap_domain = domain.encode()
        return _AUTH.register(sock.context, domain, self.allowed_clients)


def _nothing() -> None:
    pass


def _check_allow_list(allowed: frozenset[bytes] | None, allow_any: bool) -> None:
    if allowed is None and not allow_any:
        raise ConfigError(
            "Security.server without allowed_clients would accept any client holding any "
            "key pair (encrypted, not authenticated); pass allowed_clients="
            f"load_allowed_clients(DIR/{ALLOWED_CLIENTS_FILE}) (`rtagent keys` writes it), "
            "or allow_any_client=True to accept anyone on purpose"
        )
    if allowed is not None and allow_any:
        raise ConfigError("Security.server: give allowed_clients or allow_any_client=True, "
                          "not both")
    if allowed is not None and not allowed:
        raise ConfigError("Security.server: allowed_clients is empty, so no client could "
                          "connect; add the clients' public keys with `rtagent keys --allow`")


class _AllowList:
    def __init__(self, keys: frozenset[bytes]) -> None:
        self.keys = keys

    def callback(self, domain: str, key: bytes) -> bool:
        return key in self.keys


class _Authenticators:
    """One ZAP authenticator thread per context, alive while a server socket needs it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_ctx: dict[int, tuple[Any, set[str]]] = {}

    def register(self, ctx: Any, domain: str, keys: frozenset[bytes]) -> Callable[[], None]:
        from zmq.auth.thread import ThreadAuthenticator

        with self._lock:
            entry = self._by_ctx.get(id(ctx))
            if entry is None:
                auth = ThreadAuthenticator(ctx, log=logging.getLogger("rtagent.auth"))
                auth.start()
                entry = self._by_ctx[id(ctx)] = (auth, set())
            auth, domains = entry
            auth.configure_curve_callback(domain=domain, credentials_provider=_AllowList(keys))
            domains.add(domain)

        def release() -> None:
            with self._lock:
                domains.discard(domain)
                auth.credentials_providers.pop(domain, None)
                if not domains and self._by_ctx.get(id(ctx)) is entry:
                    del self._by_ctx[id(ctx)]
                    auth.stop()

        return release


_AUTH = _Authenticators()


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint(endpoint: str, security: Security) -> str:
    """Validate ``endpoint``; refuse TCP off loopback without Curve. Returns it unchanged."""
    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise ConfigError(f"endpoint: expected 'ipc://PATH' or 'tcp://HOST:PORT', got {endpoint!r}")
    scheme, rest = endpoint.split("://", 1)
    if scheme == "ipc":
        if not rest or len(rest.encode()) > _MAX_IPC_PATH:
            raise ConfigError(
                f"ipc endpoint path must be 1..{_MAX_IPC_PATH} bytes, got {len(rest)}: {rest!r}"
            )
        return endpoint
    if scheme == "inproc":
        return endpoint
    if scheme != "tcp":
        raise ConfigError(f"endpoint scheme: expected ipc, tcp or inproc, got {scheme!r}")
    host, _, port = rest.rpartition(":")
    if not host or not port:
        raise ConfigError(f"tcp endpoint: expected tcp://HOST:PORT, got {endpoint!r}")
    if ";" in host:  # zmq's "source;dest" form: judge the destination
        host = host.split(";", 1)[1]
    if not security.enabled and not is_loopback(host):
        raise InsecureEndpointError(
            f"{endpoint} is reachable from other machines but has no CurveZMQ keys; "
            "create keys with `rtagent keys` and pass them, or bind to 127.0.0.1 explicitly"
        )
    return endpoint


class RunDirectory:
    """A private directory for one run's IPC sockets, removed on :meth:`close`.

    ``RunDirectory()`` creates ``$XDG_RUNTIME_DIR/rtagent-run-XXXX`` (or under the
    temp dir) with an ``owner`` file naming this process, and first removes the
    run directories there whose owner died without removing them (a kill -9);
    ``RunDirectory(path)`` adopts an existing one (a child process given
    ``$RTAGENT_RUN_DIR``) and does not remove it unless ``owner=True``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, owner: bool | None = None):
        if path is None:
            base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
            if not os.path.isdir(base) or not os.access(base, os.W_OK):
                base = tempfile.gettempdir()
            remove_stale_run_dirs(base)
            self.path = Path(tempfile.mkdtemp(prefix=_RUN_PREFIX, dir=base))
            (self.path / _OWNER_FILE).write_text(_owner_line(os.getpid()))
            self.owner = True if owner is None else owner
        else:
            self.path = Path(path)
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.owner = bool(owner)
        os.chmod(self.path, 0o700)

    @classmethod
    def from_env(cls) -> RunDirectory:
        """The run directory the supervisor gave this process, or a fresh owned one."""
        path = os.environ.get(RUN_DIR_ENV)
        return cls(path, owner=False) if path else cls()

    def endpoint(self, name: str) -> str:
        return ipc_endpoint(self.path, name)

    def close(self) -> None:
        if self.owner:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r}, owner={self.owner})"


_RUN_PREFIX = "rtagent-run-"
_OWNER_FILE = "owner"  # "PID PID_NAMESPACE": who removes this directory


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "?"


def _owner_line(pid: int) -> str:
    return f"{pid} {_pid_namespace()}\n"


def _owner_died(owner_file: Path) -> bool:
    try:
        pid_text, namespace = owner_file.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return False  # no owner file (yet, or an older rtagent's): leave it
    if namespace != _pid_namespace() or namespace == "?":
        return False  # another pid namespace's pids mean nothing here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_stale_run_dirs(base: str | os.PathLike[str]) -> list[Path]:
    """Remove this user's run directories under ``base`` whose owner process is gone
    (it was killed before it could remove its own); returns them."""
    removed = []
    for path in Path(base).glob(f"{_RUN_PREFIX}*"):
        try:
            mine = path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and _owner_died(path / _OWNER_FILE):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def ipc_endpoint(directory: str | os.PathLike[str], name: str) -> str:
    """``ipc://DIRECTORY/NAME.sock``, checked against the socket path length limit."""
    if not name or "/" in name:
        raise ConfigError(f"ipc name: expected a plain name, got {name!r}")
    return check_endpoint(f"ipc://{Path(directory) / name}.sock", Security())
