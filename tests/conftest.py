"""Shared fixtures. Real parts by default: the embedded models are real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# As models.llama_backend does, before any test imports llama_cpp directly:
# busy-waiting OpenMP threads crawl when other processes share the two cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True, scope="session")
def _own_speculation_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The demos record every call and mine them (speculation/trace_store.py): the
    tests' processes keep theirs apart from the user's cache (and from each other's runs
    of the suite)."""
    os.environ["RTAGENT_SPEC_DIR"] = str(tmp_path_factory.mktemp("speculation"))


@pytest.fixture(scope="session")
def default_gguf() -> Path:
    from models.resolve import resolve_gguf

    return resolve_gguf()


@pytest.fixture(scope="module")
def robot():
    """A real simulated robot (PyBullet, DIRECT), one per test module."""
    from sim_envs.tabletop.robot import LocalRobot

    r = LocalRobot()
    yield r
    r.close()


@pytest.fixture(scope="session")
def whisper_dir() -> Path:
    from models.artifacts import resolve_whisper

    return resolve_whisper()



@pytest.fixture(autouse=True)
def _private_data_home(tmp_path_factory, monkeypatch):
    """The user's data directory (the voice demo's durable home, ~/.local/share/rtagent)
    is never a test's: each test, and the processes it starts, get a fresh one."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


@pytest.fixture(autouse=True, scope="module")
def _collect_garbage_here():
    """Collect after each test module, so an unclosed socket or file is blamed on the
    module that leaked it (pytest turns the ResourceWarning into an error) rather than
    on whichever later test the collector happens to run in. (Per test costs ~0.35 s.)"""
    yield
    import gc

    gc.collect()
