"""The Berkeley Function Calling Leaderboard (BFCL v4) as an external, held-out yardstick.

Data: the ``bfcl-eval`` package on PyPI (Gorilla project, UC Berkeley; **Apache-2.0**),
installed without its dependencies (``pip install --no-deps bfcl-eval==2026.3.23``, as
``setup.sh`` does) and read as package files, never imported:
``bfcl_eval/data/BFCL_v4_<set>.json`` (one case a line: ``id``, ``question`` (turns of
messages), ``function`` (its tool specs)) and ``bfcl_eval/data/possible_answer/`` (the
accepted values per argument).

**Held out**: the project did not write these cases and must never use them for
training, prompt examples or fitting rules; they only measure.

Categories (:data:`CATEGORIES`): ``simple`` (one Python function, one call),
``multiple`` (several functions offered, one call), ``parallel`` (one function, several
calls), ``parallel_multiple`` (several of both).

Specs become :class:`~control.tools.ToolSpec` with BFCL's own type mapping to JSON
Schema (``GORILLA_TO_OPENAPI`` in ``bfcl_eval/constants/type_mappings.py``, applied as
``_cast_to_openai_type`` in ``bfcl_eval/model_handler/utils.py`` does): ``dict`` ->
object, ``float`` -> number, ``tuple`` -> array, ``any`` -> string, a missing or unknown
type -> string; their non-standard ``optional`` flag is dropped (``required`` decides).
Dotted names (``math.hypot``) are kept: the compact format writes them, and BFCL's
checker compares names as given for a model that keeps the dots. The language hint BFCL
adds to descriptions for prompting models ("Note that the provided function is in
Python 3 syntax.") is not added: our prompt lists tools in its own format. Answers are
scored by :mod:`models.evalsets.bfcl_check`, BFCL's AST match.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control.tools import ToolSpec
from models.evalsets.score import Case, EvalSetError

__all__ = ["BFCL_PIN", "CATEGORIES", "BfclCase", "bfcl_data_dir", "load_bfcl", "to_tool_spec"]

BFCL_PIN = "bfcl-eval==2026.3.23"
CATEGORIES = {"simple": "simple_python", "multiple": "multiple", "parallel": "parallel",
              "parallel_multiple": "parallel_multiple"}

# BFCL's GORILLA_TO_OPENAPI (the Python types these four categories use).
_TO_JSON_SCHEMA = {"integer": "integer", "number": "number", "float": "number",
                   "string": "string", "boolean": "boolean", "bool": "boolean",
                   "array": "array", "list": "array", "dict": "object", "object": "object",
                   "tuple": "array", "any": "string"}


@dataclass(frozen=True)
class BfclCase:
    """One BFCL case: the eval :class:`Case` (messages, its tools as JSON specs), the
    tools as :class:`ToolSpec`, BFCL's own function docs and the possible answers."""

    case: Case
    category: str
    tools: tuple[ToolSpec, ...]
    functions: tuple[Mapping[str, Any], ...]
    answers: tuple[Mapping[str, Any], ...]


def bfcl_data_dir() -> Path:
    """``bfcl_eval/data`` of the installed package (found, not imported)."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise EvalSetError(f"the BFCL data is not installed; run: pip install --no-deps "
                           f"{BFCL_PIN} (setup.sh does)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _schema(prop: Mapping[str, Any]) -> dict[str, Any]:
    """One BFCL parameter schema in JSON Schema (recursively, as BFCL converts it)."""
    out = {k: copy.deepcopy(v) for k, v in prop.items() if k != "optional"}
    out["type"] = _TO_JSON_SCHEMA.get(str(prop.get("type", "string")), "string")
    if "properties" in out:
        out["properties"] = {k: _schema(v) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), Mapping):
        out["items"] = _schema(out["items"])
    if "required" in out and not isinstance(out["required"], list):
        del out["required"]
    return out


def to_tool_spec(function: Mapping[str, Any]) -> ToolSpec:
    """A BFCL function doc as a :class:`ToolSpec` (read-only: BFCL runs nothing)."""
    params = function.get("parameters", {})
    props = {k: _schema(v) for k, v in params.get("properties", {}).items()}
    return ToolSpec.from_json({
        "name": function["name"], "description": function.get("description", ""),
        "parameters": {"type": "object", "properties": props,
                       "required": [r for r in params.get("required", []) if r in props]},
        "x-effect": "read"})


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalSetError(f"cannot read BFCL data from {path}: {exc}") from exc


def load_bfcl(category: str, limit: int | None = None) -> list[BfclCase]:
    """The cases of ``category`` (a key of :data:`CATEGORIES`), in file order; ``limit``
    picks that many spread evenly over the file (its topics come in runs)."""
    if category not in CATEGORIES:
        raise EvalSetError(f"BFCL category: expected one of {sorted(CATEGORIES)}, got "
                           f"{category!r}")
    data = bfcl_data_dir()
    name = f"BFCL_v4_{CATEGORIES[category]}.json"
    entries = _read(data / name)
    answers = {a["id"]: a["ground_truth"] for a in _read(data / "possible_answer" / name)}
    if limit is not None and limit < len(entries):
        entries = [entries[i * len(entries) // limit] for i in range(limit)]
    out = []
    for e in entries:
        turns = e["question"]
        messages = tuple({"role": m["role"], "content": m["content"]}
                         for turn in turns for m in turn)
        tools = tuple(to_tool_spec(f) for f in e["function"])
        case = Case(id=e["id"], messages=messages, tools=tuple(t.to_json() for t in tools))
        out.append(BfclCase(case, category, tools, tuple(e["function"]),
                            tuple(answers[e["id"]])))
    return out


def model_output(calls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Our calls (``{"name", "arguments"}``) in BFCL's decoded form ``[{name: {arg: v}}]``."""
    return [{c["name"]: dict(c.get("arguments") or {})} for c in calls]
