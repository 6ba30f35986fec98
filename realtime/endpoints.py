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
  secret key) or ``client`` (holds its own pair and the server's public key).
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

from realtime.errors import ConfigError, RtAgentError

__all__ = [
    "CurveKeys",
    "InsecureEndpointError",
    "RunDirectory",
    "Security",
    "check_endpoint",
    "generate_keypair",
    "ipc_endpoint",
    "is_loopback",
    "load_keypair",
    "load_public_key",
    "save_keypair",
]

RUN_DIR_ENV = "RTAGENT_RUN_DIR"
_MAX_IPC_PATH = 107  # sun_path limit on Linux, minus the NUL


class InsecureEndpointError(RtAgentError):
    """A TCP endpoint off loopback was given without CurveZMQ keys."""


@dataclass(frozen=True)
class CurveKeys:
    """A CurveZMQ key pair, Z85 text (40 characters each)."""

    public: bytes
    secret: bytes

    def __post_init__(self) -> None:
        for name in ("public", "secret"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 40:
                raise ConfigError(f"CurveKeys.{name}: expected 40 bytes of Z85, got {value!r:.60}")

    def __repr__(self) -> str:  # never print a secret key
        return f"CurveKeys(public={self.public.decode()!r}, secret=<hidden>)"


def generate_keypair() -> CurveKeys:
    """A fresh CurveZMQ key pair (needs libzmq built with CURVE)."""
    if not zmq.has("curve"):
        raise RtAgentError("this libzmq has no CURVE support; install pyzmq wheels from PyPI")
    public, secret = zmq.curve_keypair()
    return CurveKeys(public=public, secret=secret)


def save_keypair(keys: CurveKeys, directory: str | os.PathLike[str], name: str) -> Path:
    """Write ``NAME.key`` (public, shareable) and ``NAME.key_secret`` (mode 0600).

    Refuses to overwrite an existing secret. Returns the secret file's path.
    """
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"key name: expected letters, digits, '-' or '_', got {name!r}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    public_path, secret_path = folder / f"{name}.key", folder / f"{name}.key_secret"
    if secret_path.exists():
        raise RtAgentError(f"{secret_path} exists; remove it or choose another --name")
    public_path.write_bytes(keys.public + b"\n")
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(keys.public + b"\n" + keys.secret + b"\n")
    return secret_path


def load_public_key(path: str | os.PathLike[str]) -> bytes:
    """The public key in ``NAME.key`` (or the first line of ``NAME.key_secret``)."""
    try:
        key = Path(path).read_bytes().split()[0]
    except (OSError, IndexError) as exc:
        raise RtAgentError(f"cannot read a public key from {path}: {exc}") from exc
    return CurveKeys(public=key, secret=b"0" * 40).public


def load_keypair(path: str | os.PathLike[str]) -> CurveKeys:
    """The pair in ``NAME.key_secret`` written by :func:`save_keypair` / ``rtagent keys``."""
    try:
        lines = Path(path).read_bytes().split()
        return CurveKeys(public=lines[0], secret=lines[1])
    except (OSError, IndexError) as exc:
        raise RtAgentError(
            f"cannot read a key pair from {path}: {exc}; create one with `rtagent keys`"
        ) from exc


@dataclass(frozen=True)
class Security:
    """CurveZMQ settings of one socket. ``Security()`` means none (IPC or loopback).

    A server with ``allowed_clients`` (Z85 public keys) accepts only those
    clients (ZAP, checked in a per-context authenticator thread); without it,
    any client that knows the server's public key may connect (still encrypted).
    """

    role: str = "none"  # "none" | "server" | "client"
    keys: CurveKeys | None = None
    server_public: bytes | None = None  # clients: the server's public key
    allowed_clients: frozenset[bytes] | None = None  # servers: client public keys

    def __post_init__(self) -> None:
        if self.role not in ("none", "server", "client"):
            raise ConfigError(f"Security.role: expected none/server/client, got {self.role!r}")
        if self.role != "none" and self.keys is None:
            raise ConfigError(f"Security.role={self.role!r} needs keys")
        if self.role == "client" and (not self.server_public or len(self.server_public) != 40):
            raise ConfigError("Security(role='client') needs the server's 40-byte public key")
        if self.allowed_clients is not None and self.role != "server":
            raise ConfigError("Security.allowed_clients applies to role='server' only")
        for key in self.allowed_clients or ():
            if not isinstance(key, bytes) or len(key) != 40:
                raise ConfigError(f"allowed client key: expected 40 bytes of Z85, got {key!r:.60}")

    @classmethod
    def server(cls, keys: CurveKeys, allowed_clients: Iterable[bytes] | None = None) -> Security:
        allowed = None if allowed_clients is None else frozenset(allowed_clients)
        return cls(role="server", keys=keys, allowed_clients=allowed)

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
        if self.allowed_clients is None:
            return _nothing
        domain = f"rtagent-{id(sock):x}"
        sock.zap_domain = domain.encode()
        return _AUTH.register(sock.context, domain, self.allowed_clients)


def _nothing() -> None:
    pass


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
    temp dir); ``RunDirectory(path)`` adopts an existing one (a child process
    given ``$RTAGENT_RUN_DIR``) and does not remove it unless ``owner=True``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, owner: bool | None = None):
        if path is None:
            base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
            if not os.path.isdir(base) or not os.access(base, os.W_OK):
                base = tempfile.gettempdir()
            self.path = Path(tempfile.mkdtemp(prefix="rtagent-run-", dir=base))
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


def ipc_endpoint(directory: str | os.PathLike[str], name: str) -> str:
    """``ipc://DIRECTORY/NAME.sock``, checked against the socket path length limit."""
    if not name or "/" in name:
        raise ConfigError(f"ipc name: expected a plain name, got {name!r}")
    return check_endpoint(f"ipc://{Path(directory) / name}.sock", Security())
