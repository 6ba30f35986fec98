"""Options more than one benchmark takes, each defined once: where figures and traces
go, the model and adapter, the spoken request set, the loop rate."""

from __future__ import annotations

import argparse
from pathlib import Path

UTTERANCE_DIR = "/tmp/rtagent-utterances"


def json_output(parser: argparse.ArgumentParser, what: str = "the figures") -> None:
    """``--json PATH`` (a Path): write ``what`` as JSON."""
    parser.add_argument("--json", type=Path, metavar="PATH", help=f"also write {what} as JSON")


def trace_output(parser: argparse.ArgumentParser, what: str) -> None:
    """``--trace PATH``: a Chrome trace / Perfetto JSON of ``what``."""
    parser.add_argument("--trace", metavar="PATH", help=f"write a Chrome trace / Perfetto JSON of "
                        f"{what} (then: rtagent report PATH)")


def model_options(parser: argparse.ArgumentParser, *, embedded_names: bool = False,
                  threads: bool = False) -> None:
    """``--model``, ``--lora``, ``--no-lora`` (read back with :func:`lora_choice`); with
    ``embedded_names`` also ``--model-name``, with ``threads`` ``--n-threads`` and
    ``--n-gpu-layers``."""
    parser.add_argument("--model", metavar="PATH", help="a GGUF model (default: the embedded one)")
    if embedded_names:
        parser.add_argument("--model-name", help="embedded model: smollm2-135m or gemma3-270m")
    parser.add_argument("--lora", metavar="PATH",
                        help="a llama.cpp LoRA adapter GGUF (default: the one shipped for the model)")
    parser.add_argument("--no-lora", action="store_true", help="decode with the base model only")
    if threads:
        parser.add_argument("--n-threads", type=int, help="CPU threads (default: usable cores)")
        parser.add_argument("--n-gpu-layers", type=int, default=0, help="layers on the GPU (-1: all)")


def lora_choice(args: argparse.Namespace) -> str | None:
    """The adapter :func:`model_options` asked for: None (--no-lora), a path, or
    "default" (the one shipped for the model, if any)."""
    return None if args.no_lora else (args.lora or "default")


def request_set_options(parser: argparse.ArgumentParser) -> None:
    """``--limit`` and ``--dir``: how much of the spoken request set, generated where."""
    parser.add_argument("--limit", type=int, default=0, help="use the first N requests (0 = all)")
    parser.add_argument("--dir", default=UTTERANCE_DIR, help="where WAVs are generated")


def hz_option(parser: argparse.ArgumentParser, loop: str = "decision loop") -> None:
    parser.add_argument("--hz", type=float, default=16.0, help=f"{loop} rate (default 16)")
