"""setup.sh's embedded Python runs against the library as it is now.

CI starts with ``./setup.sh``; a snippet there naming a function that has moved fails the
whole run before a single test does, so each ``python - <<'EOF'`` block is run here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"python - <<'EOF'\n(.*?)\nEOF\n", (ROOT / "setup.sh").read_text(), re.S)


def test_setup_sh_has_its_model_check() -> None:
    assert BLOCKS, "setup.sh's model check (a python heredoc) was not found"


@pytest.mark.parametrize("code", BLOCKS)
def test_setup_sh_python_block_runs(code: str) -> None:
    done = subprocess.run([sys.executable, "-"], input=code, text=True, cwd=ROOT,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "runs as" in done.stdout
