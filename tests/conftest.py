"""Shared fixtures. Real parts by default: the embedded models are real files."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def default_gguf() -> Path:
    from models.artifacts import resolve_gguf

    return resolve_gguf()


@pytest.fixture(scope="session")
def whisper_dir() -> Path:
    from models.artifacts import resolve_whisper

    return resolve_whisper()
