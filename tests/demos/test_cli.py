"""Every registered command and benchmark answers --help (so none is broken at import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from demos import bench, cli


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_command_help(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([name, "--help"])
    assert exc.value.code == 0
    assert "usage: rtagent" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(bench.COMMANDS))
def test_bench_help(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", name, "--help"])
    assert exc.value.code == 0


def test_no_command_prints_help(capsys) -> None:
    assert cli.main([]) == 0
    assert "COMMAND" in capsys.readouterr().out


def test_unknown_command_is_an_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2


def test_bench_help_lists_every_bench_and_loads_none() -> None:
    code = ("import contextlib, io, sys\nfrom demos import bench, cli\nout = io.StringIO()\n"
            "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
            "    cli.main(['bench', '--help'])\n"
            "print(all(name in out.getvalue() for name in bench.COMMANDS),\n"
            "      sorted(m for m in sys.modules if m.startswith('demos.bench.')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=60, check=False)
    assert proc.stdout.split() == ["True", "[]"], proc.stderr
