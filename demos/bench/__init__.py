"""Run a benchmark. Each prints its figures and a ratio against a baseline
measured in the same run (see the README for what each one measures).

  rtagent bench NAME [options]     e.g. rtagent bench bus --help
"""

from __future__ import annotations

import argparse
import importlib

# name -> (module, summary). Each module has add_arguments(parser) and run(args) -> int.
BENCHES: dict[str, tuple[str, str]] = {
    "robot": ("demos.bench.robot", "robot task suite with and without speculation"),
    "spec": ("demos.bench.spec", "speculative execution on robot and voice workloads vs the bound"),
    "decoder": ("demos.bench.decoder", "SimpleTool-style decoder vs JSON-grammar baseline"),
    "dag": ("demos.bench.dag", "parallel tool calls: DAG executor vs sequential and the bound"),
    "sim": ("demos.bench.sim", "simulator: physics, render + perception, IK, episodes vs real time"),
    "bus": ("demos.bench.bus", "bus latency/throughput, small messages and frames, vs raw pyzmq"),
    "stt": ("demos.bench.stt", "speech: fitted vs full Whisper window (WER, latency), VAD, TTS first audio"),
    "voice": ("demos.bench.voice", "voice demo: WER, call accuracy, latency with and without speculation"),
    "trace": ("demos.bench.trace", "tracing overhead: loop lateness and task time, tracing on vs off"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="NAME", required=True)
    for name, (module, summary) in BENCHES.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=summary, description=mod.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_bench_run=mod.run)


def run(args: argparse.Namespace) -> int:
    return int(args._bench_run(args) or 0)
