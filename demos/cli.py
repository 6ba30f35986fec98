"""`rtagent`: the command line.

Each subcommand lives in its own module with two functions,
``add_arguments(parser)`` and ``run(args) -> int``; the module's docstring is
its ``--help`` text. A group of subcommands (``rtagent bench NAME``) is a module
with a ``COMMANDS`` registry of its own instead. Modules are imported only when
their command is used, so ``rtagent --help`` stays fast and a broken optional
part cannot stop the rest.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from realtime.errors import RtAgentError

# name -> (module, one-line summary). Add a line here to add a command.
COMMANDS: dict[str, tuple[str, str]] = {
    "robot": ("demos.robot", "the robot demo: a simulated arm follows your instructions"),
    "voice": ("demos.voice", "the voice demo: speak a request, the assistant acts and answers"),
    "calls": ("demos.calls", "decode tool calls for a file of queries (simpletool or baseline)"),
    "doctor": ("demos.doctor", "check this machine: dependencies, models, audio, RT permissions"),
    "bench": ("demos.bench", "run a benchmark and print figures against its baseline"),
    "keys": ("demos.keys", "CurveZMQ key pairs and the client allow-list for TCP between hosts"),
    "jitter": ("demos.jitter", "measure the deadline loop's jitter (vs cyclictest, under load)"),
    "report": ("demos.report", "HTML report of a run: lateness, episode timeline, decoder, figures"),
    "spec": ("demos.spec", "speculative tool execution: mine patterns, replay episodes vs bounds"),
    "tune": ("demos.tune", "fine-tune a LoRA adapter for your tools on the CPU (llama.cpp GGUF)"),
}


def _load(module: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(module)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtagent",
        description="A real-time agent stack for voice and embodied control.",
        epilog="Run `rtagent COMMAND --help` for a command's options.",
    )
    _add_commands(parser.add_subparsers(dest="command", metavar="COMMAND"), COMMANDS, argv or [])
    return parser


def _add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                  commands: dict[str, tuple[str, str]], argv: Sequence[str]) -> None:
    """One parser per command; only the one ``argv`` names is loaded and filled in."""
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, summary) in commands.items():
        if wanted != name:
            sub.add_parser(name, help=summary)
            continue
        mod = _load(module)
        p = sub.add_parser(name, help=summary, description=mod.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if hasattr(mod, "COMMANDS"):  # a group: its own commands, named next in argv
            rest = argv[argv.index(name) + 1:]
            _add_commands(p.add_subparsers(metavar="NAME", required=True), mod.COMMANDS, rest)
        else:
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if not argv else 2
    try:
        return int(args._run(args) or 0)
    except RtAgentError as exc:
        print(f"rtagent {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rtagent {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
