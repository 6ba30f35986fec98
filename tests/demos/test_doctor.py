"""`rtagent doctor` reports the real machine and fails when something required is missing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from demos import doctor


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "demos.cli", "doctor", *args],
                          capture_output=True, text=True, timeout=300)


def test_doctor_json_lists_models_and_dependencies() -> None:
    proc = _run("--json", "-")
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert proc.returncode == 0, proc.stderr
    assert checks["smollm2-135m"]["status"] == "ok"
    assert "verified" in checks["smollm2-135m"]["detail"]
    assert checks["whisper tiny.en"]["status"] == "ok"
    assert checks["llama-cpp-python"]["status"] == "ok"
    assert "libzmq" in checks["ZeroMQ"]["detail"]


def test_doctor_fails_when_a_required_dependency_is_missing(monkeypatch) -> None:
    monkeypatch.setitem(doctor.DEPENDENCIES, "no-such-dist", ("no_such_module", True))
    checks = {c.name: c for c in doctor.collect()}
    assert checks["no-such-dist"].status == doctor.FAIL
    assert "setup.sh" in checks["no-such-dist"].detail


def test_doctor_reports_a_missing_model_clearly(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("RTAGENT_WHISPER", str(tmp_path / "gone"))
    checks = {c.name: c for c in doctor.collect()}
    assert checks["whisper tiny.en"].status == doctor.FAIL
    assert "not found" in checks["whisper tiny.en"].detail


@pytest.mark.slow
def test_doctor_load_loads_each_model() -> None:
    proc = _run("--load", "--json", "-")
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    for name in ("smollm2-135m", "gemma3-270m", "whisper tiny.en"):
        assert "loaded in" in checks[name]["detail"], checks[name]
