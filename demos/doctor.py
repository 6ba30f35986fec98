"""Check what this machine has for rtagent and print it as a table.

Checks Python, every dependency and its version, the embedded model files
(found, size, sha256, licence, GGUF metadata), audio devices PyAudio can open,
SCHED_FIFO permission, cyclictest, espeak-ng, GPU offload in the installed
llama.cpp, and the ZeroMQ version (with CurveZMQ support).

Exits 1 when something the demos need is missing; optional items (a sound
card, SCHED_FIFO, a GPU) only warn. `--load` also loads each model once
(a GGUF through llama-cpp-python, Whisper through faster-whisper).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata

OK, WARN, FAIL = "ok", "warn", "FAIL"

# distribution -> (import name, needed by the demos?)
DEPENDENCIES = {
    "torch": ("torch", True),
    "llama-cpp-python": ("llama_cpp", True),
    "PyAudio": ("pyaudio", True),
    "faster-whisper": ("faster_whisper", True),
    "ctranslate2": ("ctranslate2", True),
    "pybullet": ("pybullet", True),
    "numpy": ("numpy", True),
    "uvloop": ("uvloop", True),
    "pyzmq": ("zmq", True),
    "msgspec": ("msgspec", True),
    "gymnasium": ("gymnasium", True),
    "rich": ("rich", True),
    "matplotlib": ("matplotlib", True),
    "jsonschema": ("jsonschema", True),
    "transformers": ("transformers", False),
    "peft": ("peft", False),
}


@dataclass
class Check:
    group: str
    name: str
    status: str
    detail: str
    required: bool = True


def _guard(group: str, name: str, required: bool, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except Exception as exc:  # a doctor reports every failure instead of stopping at the first
        return Check(group, name, FAIL if required else WARN, f"{type(exc).__name__}: {exc}", required)


def check_python() -> list[Check]:
    ok = sys.version_info[:2] == (3, 11)
    return [Check("system", "python", OK if ok else FAIL,
                  f"{platform.python_version()} ({sys.executable})" + ("" if ok else "; need 3.11")),
            Check("system", "cpu", OK, f"{os.cpu_count()} cores, {platform.machine()}", False)]


def check_dependencies() -> list[Check]:
    import importlib.util

    out = []
    for dist, (module, required) in DEPENDENCIES.items():
        try:
            version = metadata.version(dist)
            found = importlib.util.find_spec(module) is not None
        except metadata.PackageNotFoundError:
            version, found = "", False
        status = OK if found else (FAIL if required else WARN)
        detail = version if found else ("not installed; run ./setup.sh" if required
                                        else "not installed (optional: pip install -e '.[tune]')")
        out.append(Check("python", dist, status, detail, required))
    return out


def check_models(load: bool) -> list[Check]:
    from models.artifacts import DEFAULT_GGUF, GGUF_MODELS, describe_gguf, embedded_gguf
    from models.runtime_file import run_type, runtime_gguf

    out = []
    for name, model in GGUF_MODELS.items():
        def one(name: str = name, model=model) -> Check:  # type: ignore[no-untyped-def]
            path = embedded_gguf(name)
            info = describe_gguf(path)
            detail = (f"{info.architecture} {info.quantization}, ctx {info.context_length}, "
                      f"{info.size_bytes / 1e6:.0f} MB, sha256 {model.sha256[:12]}… verified, "
                      f"licence {model.license}" + (" [default]" if name == DEFAULT_GGUF else ""))
            loaded = runtime_gguf(path).path
            if model.run_as:
                detail += (f"; runs as {describe_gguf(loaded).quantization} ({loaded})"
                           if loaded != path else f"; runs as shipped (no {run_type(model)} copy)")
            if load:
                detail += f"; loaded in {_load_gguf(loaded):.2f} s"
            return Check("models", name, OK, detail)
        out.append(_guard("models", name, name == DEFAULT_GGUF, one))

    def whisper() -> Check:
        from models.artifacts import resolve_whisper

        path = resolve_whisper()
        detail = f"faster-whisper tiny.en (CTranslate2), licence MIT, {path}"
        if load:
            detail += f"; loaded in {_load_whisper(str(path)):.2f} s"
        return Check("models", "whisper tiny.en", OK, detail)

    out.append(_guard("models", "whisper tiny.en", True, whisper))
    return out


def _load_gguf(path: object) -> float:
    import llama_cpp

    t = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=2, verbose=False)
    llm.tokenize(b"hello")
    llm.close()
    return time.perf_counter() - t


def _load_whisper(path: str) -> float:
    from faster_whisper import WhisperModel

    t = time.perf_counter()
    WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=2)
    return time.perf_counter() - t


def check_audio() -> list[Check]:

    import pyaudio

    # PortAudio prints ALSA probing noise on stderr; silence it for a readable table.
    stderr_fd = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        pa = pyaudio.PyAudio()
        try:
            devices = [pa.get_device_info_by_index(i) for i in range(pa.get_device_count())]
        finally:
            pa.terminate()
    finally:
        os.dup2(stderr_fd, 2)
        os.close(stderr_fd)
        os.close(devnull)
    inputs = [str(d["name"]) for d in devices if int(d["maxInputChannels"]) > 0]
    outputs = [str(d["name"]) for d in devices if int(d["maxOutputChannels"]) > 0]
    hint = "none; use --wav FILE, or the virtual ALSA device (see README)"
    return [
        Check("audio", "PortAudio", OK, pyaudio.get_portaudio_version_text()),
        Check("audio", "input devices", OK if inputs else WARN, ", ".join(inputs[:4]) or hint, False),
        Check("audio", "output devices", OK if outputs else WARN,
              ", ".join(outputs[:4]) or "none; use --out-wav FILE", False),
    ]


def check_realtime() -> list[Check]:
    out = []
    try:
        before = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        os.sched_setscheduler(0, before[0], before[1])
        out.append(Check("realtime", "SCHED_FIFO", OK, "permitted", False))
    except (PermissionError, OSError) as exc:
        out.append(Check("realtime", "SCHED_FIFO", WARN,
                         f"not permitted ({exc.strerror}); loops run SCHED_OTHER. Grant it with "
                         "`setcap cap_sys_nice+ep` on the interpreter or an rtprio limit", False))
    cyclictest = shutil.which("cyclictest")
    out.append(Check("realtime", "cyclictest", OK if cyclictest else WARN,
                     cyclictest or "not found; apt-get install rt-tests (for --compare-cyclictest)",
                     False))
    espeak = shutil.which("espeak-ng")
    out.append(Check("audio", "espeak-ng", OK if espeak else FAIL,
                     espeak or "not found; apt-get install espeak-ng (voice replies)"))
    return out


def check_llama_gpu() -> list[Check]:
    import llama_cpp

    from models.resolve import resolve_model

    gpu = bool(llama_cpp.llama_supports_gpu_offload())
    info = llama_cpp.llama_print_system_info().decode().replace("CPU : ", "")
    features = [f.split(" = ")[0] for f in info.split(" | ") if f.endswith("= 1")]
    amx = [f for f in features if f.startswith("AMX")]
    model = resolve_model()
    adapter = model.adapter
    merged = model.run_file.lora_merged is not None
    return [Check("models", "llama.cpp GPU offload", OK if gpu else WARN,
                  "supported" if gpu else "CPU build; rebuild with CMAKE_ARGS=-DGGML_CUDA=on "
                  "./setup.sh on a CUDA machine", False),
            Check("models", "llama.cpp CPU features", WARN if amx else OK,
                  " ".join(features) + ("; AMX compiled in: VMs that list AMX without enabling "
                                        "it die with SIGILL; rerun ./setup.sh" if amx else ""),
                  False),
            Check("models", "LoRA adapter", OK if adapter else WARN,
                  f"{adapter.name} ({adapter.stat().st_size / 1e6:.1f} MB) for the default model"
                  + (", merged into its weights" if merged else ", applied at run time")
                  if adapter else "none shipped for the default model: decoding with the base "
                  "model only (rtagent tune makes one)", False)]


def check_zmq() -> list[Check]:
    import zmq

    curve = zmq.has("curve")
    return [Check("bus", "ZeroMQ", OK, f"libzmq {zmq.zmq_version()}, pyzmq {zmq.__version__}"),
            Check("bus", "CurveZMQ", OK if curve else WARN,
                  "available" if curve else "libzmq built without CURVE: TCP across hosts refused",
                  False)]


def collect(load: bool = False) -> list[Check]:
    checks = check_python() + check_dependencies()
    groups: list[tuple[str, bool, Callable[[], list[Check]]]] = [
        ("models", True, lambda: check_models(load)),
        ("models", False, check_llama_gpu),
        ("audio", True, check_audio),
        ("realtime", False, check_realtime),
        ("bus", True, check_zmq),
    ]
    for group, required, fn in groups:
        try:
            checks += fn()
        except Exception as exc:
            checks.append(Check(group, fn.__name__ if hasattr(fn, "__name__") else group,
                                FAIL if required else WARN, f"{type(exc).__name__}: {exc}",
                                required))
    return checks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--load", action="store_true",
                        help="also load each model once (slower, proves the weights work)")
    parser.add_argument("--json", metavar="PATH", help="write the checks as JSON to PATH ('-' for stdout)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    checks = collect(load=args.load)
    if args.json:
        text = json.dumps([asdict(c) for c in checks], indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text)
    if args.json != "-":
        table = Table(title="rtagent doctor")
        for col in ("group", "check", "status", "detail"):
            table.add_column(col, overflow="fold")
        style = {OK: "green", WARN: "yellow", FAIL: "bold red"}
        for c in checks:
            table.add_row(c.group, c.name, f"[{style[c.status]}]{c.status}[/]", escape(c.detail))
        Console().print(table)
    failed = [c for c in checks if c.status == FAIL]
    if failed and args.json != "-":
        print(f"{len(failed)} required item(s) missing: {', '.join(c.name for c in failed)}. "
              "Run ./setup.sh (see README).", file=sys.stderr)
    return 1 if failed else 0
