"""What the training data must never contain: the eval sets' requests and values.

The Decoder eval sets (``models/evalsets/*.jsonl``) and the voice request sets
(``audio/*requests.jsonl``, spoken requests the voice and STT benchmarks score) are read
only here, only to keep their requests out of the generated data and their free-text
values (cities, items, names...) out of the open pools.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["AUDIO_DIR", "EVALSET_DIR", "eval_requests", "eval_values", "normalize"]

EVALSET_DIR = Path(__file__).resolve().parent.parent / "evalsets"
AUDIO_DIR = Path(__file__).resolve().parents[2] / "audio"
"""The voice request sets (``*requests.jsonl``: spoken requests scored by the voice and
STT benchmarks) are eval sets too: never emitted, their values never used."""


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9.\- ]", " ", text.lower()).split())


def _eval_files(directory: Path | None) -> list[Path]:
    if directory is not None:
        return sorted(directory.glob("*.jsonl")) if directory.is_dir() else []
    return [*_eval_files(EVALSET_DIR), *(sorted(AUDIO_DIR.glob("*requests.jsonl"))
                                        if AUDIO_DIR.is_dir() else [])]


def eval_requests(directory: Path | None = None) -> frozenset[str]:
    """Normalized requests of the eval sets (default: the Decoder eval sets and the voice
    request sets), to keep them out of training."""
    found: set[str] = set()
    for path in _eval_files(directory):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            case = json.loads(line)
            texts = [m.get("content", "") for m in case.get("messages", []) if m.get("role") == "user"]
            texts += [str(case[k]) for k in ("request", "text", "query") if k in case]
            for t in texts:
                found.add(normalize(t.split("Request:", 1)[-1]))
    return frozenset(found)


def eval_values(directory: Path | None = None) -> frozenset[str]:
    """Every text value the eval sets' expected calls carry (cities, items, names...), so
    the open pools never hold one."""
    found: set[str] = set()
    for path in _eval_files(directory):
        for line in path.read_text().splitlines():
            if line.strip():
                for call in json.loads(line).get("expected") or ():
                    found.update(v for v in (call.get("arguments") or {}).values()
                                 if isinstance(v, str))
    return frozenset(found)
