"""rtagent keys: generate CurveZMQ key pairs for TCP links between machines.

Writes NAME.key (the public key: copy it to the peers) and NAME.key_secret
(public + secret, mode 0600: keep it on this machine). A node that binds a TCP
endpoint uses its own .key_secret; a node that connects uses its own
.key_secret plus the server's .key. Refuses to overwrite an existing secret.

  rtagent keys --name perception --dir ~/.config/rtagent/keys
  rtagent keys --name decision --name actuation
"""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", action="append", required=True,
                        help="key pair name (repeat for several); letters, digits, '-', '_'")
    parser.add_argument("--dir", default=os.path.join("~", ".config", "rtagent", "keys"),
                        help="directory for the key files (default: ~/.config/rtagent/keys)")


def run(args: argparse.Namespace) -> int:
    from realtime.endpoints import generate_keypair, save_keypair

    directory = os.path.expanduser(args.dir)
    for name in args.name:
        keys = generate_keypair()
        secret = save_keypair(keys, directory, name)
        print(f"{name}: public key {keys.public.decode()}")
        print(f"  {os.path.join(directory, name + '.key')}  (share with peers)")
        print(f"  {secret}  (secret, mode 0600: keep here)")
    return 0
