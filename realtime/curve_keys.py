"""CurveZMQ key material: key pairs, their files, and a server's client allow-list.

- :class:`CurveKeys`, :func:`generate_keypair`; :func:`save_keypair` writes
  ``NAME.key`` (public) and ``NAME.key_secret`` (mode 0600), read back by
  :func:`load_public_key` and :func:`load_keypair`;
- the allow-list (:data:`ALLOWED_CLIENTS_FILE` beside the keys): the client public
  keys a server accepts, one a line, kept by :func:`add_allowed_client` and read
  by :func:`load_allowed_clients`. ``rtagent keys`` writes all of them.

:mod:`realtime.endpoints` re-exports every name here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import zmq

from realtime.errors import ConfigError, RtAgentError

__all__ = [
    "ALLOWED_CLIENTS_FILE",
    "CurveKeys",
    "add_allowed_client",
    "generate_keypair",
    "load_allowed_clients",
    "load_keypair",
    "load_public_key",
    "save_keypair",
]

#: The allow-list ``rtagent keys`` keeps beside the key pairs: one client public key a line.
ALLOWED_CLIENTS_FILE = "allowed_clients"


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


def load_allowed_clients(path: str | os.PathLike[str]) -> frozenset[bytes]:
    """The client public keys in an allow-list file: one Z85 key a line (its first
    word; the rest of the line names it), as :func:`add_allowed_client` writes them."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise RtAgentError(
            f"cannot read the client allow-list {path}: {exc}; create it with "
            "`rtagent keys --name NAME` (or `rtagent keys --allow PEER.key`)"
        ) from exc
    keys: set[bytes] = set()
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or (words[0].startswith(b"#") and len(words[0]) != 40):
            continue  # blank or a comment ('#' is also a Z85 digit: a key may start with it)
        if len(words[0]) != 40:
            raise ConfigError(f"{path}:{number}: expected a 40-character Z85 public key, "
                              f"got {words[0][:60]!r}")
        keys.add(words[0])
    if not keys:
        raise ConfigError(f"{path} lists no client keys; add them with `rtagent keys --allow`")
    return frozenset(keys)


def add_allowed_client(path: str | os.PathLike[str], public: bytes, name: str = "") -> bool:
    """Append ``public`` to the allow-list file (created if missing); ``False`` if
    it was listed already."""
    key = CurveKeys(public=public, secret=b"0" * 40).public  # validated
    file = Path(path)
    if file.exists() and key in load_allowed_clients(file):
        return False
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("ab") as f:
        f.write(key + (f"  {name}".encode() if name else b"") + b"\n")
    return True
