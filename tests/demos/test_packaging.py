"""The wheel holds the whole library: built from a copy of this tree, unzipped, and every
module of the source packages imported from it alone (no checkout, no editable install
on the path), with its data files beside it."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("realtime", "control", "audio", "sim_envs", "models", "speculation", "demos")
DATA_SUFFIXES = (".json", ".jsonl", ".gguf", ".txt", ".md")  # pyproject's package-data
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                     ".*_cache", ".hypothesis", "out", "runs", "spec-bench")

# Each module imported on its own, the failures listed together; then where each came from.
_IMPORT_ALL = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=1).strip().splitlines()[-1])
for name in sys.argv[1:]:
    mod = sys.modules.get(name)
    if mod is not None:
        print("FILE", name, getattr(mod, "__file__", None))
print("\\n".join("FAILED " + f for f in failed))
"""


def _source_modules() -> list[str]:
    """Every module the source packages hold, by dotted name."""
    names = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "__pycache__" in parts:
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _source_data() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*")
                  if p.suffix in DATA_SUFFIXES and "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def unzipped_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy: a build in the checkout would leave build/ there, and reuse it
    shutil.copytree(ROOT, src, ignore=_NOT_SOURCE)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--no-cache-dir", "-q", "-w", str(tmp / "dist"), str(src)],
                           capture_output=True, text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp / "dist").glob("rtagent-*.whl")
    out = tmp / "unzipped"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(out)
    return out


@pytest.mark.slow
def test_every_module_imports_from_the_built_wheel(unzipped_wheel: Path, tmp_path: Path) -> None:
    modules = _source_modules()
    # -S: no site-packages .pth files (the editable install's finder would serve this
    # checkout); the dependencies come in by PYTHONPATH, after the wheel.
    path = [str(unzipped_wheel), *site.getsitepackages()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    proc = subprocess.run([sys.executable, "-S", "-c", _IMPORT_ALL, *modules], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
    assert not failed, "\n".join(failed)
    files = dict(line.split(" ", 2)[1:] for line in proc.stdout.splitlines()
                 if line.startswith("FILE "))
    outside = {m: f for m, f in files.items() if not f.startswith(str(unzipped_wheel))}
    assert not outside, f"imported from outside the wheel: {outside}"
    assert set(files) == set(modules)


@pytest.mark.slow
def test_the_wheel_holds_the_package_data(unzipped_wheel: Path) -> None:
    missing = [f for f in _source_data() if not (unzipped_wheel / f).is_file()]
    assert not missing, f"data files not in the wheel: {missing}"
