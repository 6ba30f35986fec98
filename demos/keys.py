"""rtagent keys: generate CurveZMQ key pairs and the allow-list for TCP links between machines.

Writes NAME.key (the public key: copy it to the peers) and NAME.key_secret
(public + secret, mode 0600: keep it on this machine), and adds NAME's public
key to the deployment's allow-list DIR/allowed_clients (one key a line). A
node that binds a TCP endpoint uses its own .key_secret and the allow-list
(``Security.server(keys, load_allowed_clients(DIR/allowed_clients))``: a server
without one is refused); a node that connects uses its own .key_secret plus
the server's .key. A key pair made on another machine joins the allow-list
with ``--allow PEER.key``. Refuses to overwrite an existing secret.

  rtagent keys --name perception --dir ~/.config/rtagent/keys
  rtagent keys --name decision --name actuation
  rtagent keys --allow /media/usb/laptop.key     # a client made elsewhere
"""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", action="append", default=[],
                        help="key pair name (repeat for several); letters, digits, '-', '_'")
    parser.add_argument("--allow", action="append", default=[], metavar="PEER.key",
                        help="add the public key in this file to the allow-list (repeatable)")
    parser.add_argument("--dir", default=os.path.join("~", ".config", "rtagent", "keys"),
                        help="directory for the key files (default: ~/.config/rtagent/keys)")
    parser.add_argument("--allow-list", default=None, metavar="PATH",
                        help="the allow-list file (default: DIR/allowed_clients)")


def run(args: argparse.Namespace) -> int:
    from realtime.endpoints import (
        ALLOWED_CLIENTS_FILE,
        add_allowed_client,
        generate_keypair,
        load_public_key,
        save_keypair,
    )
    from realtime.errors import ConfigError

    if not args.name and not args.allow:
        raise ConfigError("rtagent keys: give --name NAME (a new key pair) "
                          "and/or --allow PEER.key (a peer's public key)")
    directory = os.path.expanduser(args.dir)
    allow_list = os.path.expanduser(args.allow_list or os.path.join(directory, ALLOWED_CLIENTS_FILE))
    for name in args.name:
        keys = generate_keypair()
        secret = save_keypair(keys, directory, name)
        add_allowed_client(allow_list, keys.public, name)
        print(f"{name}: public key {keys.public.decode()}")
        print(f"  {os.path.join(directory, name + '.key')}  (share with peers)")
        print(f"  {secret}  (secret, mode 0600: keep here)")
    for path in args.allow:
        public = load_public_key(os.path.expanduser(path))
        label = os.path.basename(path).removesuffix(".key")
        added = add_allowed_client(allow_list, public, label)
        print(f"{label}: public key {public.decode()} {'added' if added else 'already'}")
    print(f"allow-list: {allow_list} (servers load it: the clients they accept)")
    return 0
