"""Run a benchmark. Each prints its figures and a ratio against a baseline
measured in the same run (see the README for what each one measures).

  rtagent bench NAME [options]     e.g. rtagent bench bus --help
"""

from __future__ import annotations

# name -> (module, summary); each module has add_arguments(parser) and run(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
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
