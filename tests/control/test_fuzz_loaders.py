"""Fuzz every loader of user files: tool specs, episode traces, eval sets, tune recipes.

Each loader gets files of three kinds: arbitrary JSON values, near-valid mutations of a
real file (a field replaced, dropped, added or wrapped, a few levels deep), and the real
file's text cut short or with a byte changed. The loader must either load the file or
raise the project's error naming the file; any other exception fails the test.

``RTAGENT_FUZZ_EXAMPLES=10000`` runs 10,000 files per loader (the normal suite runs a
few hundred, in seconds).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control.tools import ToolError, load_tool_spec_file
from models.evalsets.score import EVALSETS, EvalSetError, load_cases
from models.tune.recipe import TuneRecipe, load_recipe
from models.tune.train import TuneError
from realtime.errors import RtAgentError
from speculation.traces import TraceError, load_jsonl, save_jsonl
from speculation.workloads import SPEC_FILES, voice_episodes

EXAMPLES = int(os.environ.get("RTAGENT_FUZZ_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])

#: Keys the loaders look for, so generated objects hit the interesting branches.
KEYS = ["name", "description", "parameters", "type", "function", "properties", "required",
        "x-effect", "x-speculation", "x-resources", "reads", "writes", "x-max-age-ms",
        "x-depends-on-clock", "tools", "id", "steps", "arguments", "result", "tool_ms",
        "think_ms", "ok", "observation", "cpu_ms", "speculative", "messages", "role",
        "content", "expected", "enums", "recipe", "data", "train", "model", "dtype",
        "check_cases", "eval_cases", "rank", "steps", "target_modules", "n_train"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12), st.sampled_from(["read", "write", "allow", "deny",
                                                           "object", "{room}", "{", "user"]))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=6),
    max_leaves=30)


def _mutate(data: st.DataObject, node: Any, depth: int = 0) -> Any:
    """One change somewhere in ``node`` (descending into containers, mostly)."""
    if isinstance(node, dict | list) and node and depth < 8 and data.draw(st.integers(0, 4)):
        if isinstance(node, dict):
            key = data.draw(st.sampled_from(sorted(node)))
            node[key] = _mutate(data, node[key], depth + 1)
        else:
            i = data.draw(st.integers(0, len(node) - 1))
            node[i] = _mutate(data, node[i], depth + 1)
        return node
    op = data.draw(st.sampled_from(["replace", "delete", "add", "wrap", "empty"]))
    if op == "delete" and isinstance(node, dict) and node:
        del node[data.draw(st.sampled_from(sorted(node)))]
        return node
    if op == "delete" and isinstance(node, list) and node:
        del node[data.draw(st.integers(0, len(node) - 1))]
        return node
    if op == "add" and isinstance(node, dict):
        node[data.draw(st.sampled_from(KEYS))] = data.draw(json_values)
        return node
    if op == "wrap":
        return [node] if data.draw(st.booleans()) else {"x": node}
    if op == "empty":
        return type(node)() if isinstance(node, dict | list | str) else None
    return data.draw(json_values)


def _text(value: Any) -> str:
    try:
        return json.dumps(value)  # NaN and Infinity as JS writes them: json.loads reads them
    except (ValueError, RecursionError):
        return "null"


class Kind:
    """A loader with its real example document and the one error it may raise."""

    def __init__(self, name: str, doc: Any, load: Callable[[Path], Any],
                 error: type[RtAgentError], lines: bool = False) -> None:
        self.name, self.doc, self.load, self.error, self.lines = name, doc, load, error, lines

    def render(self, doc: Any) -> str:
        if self.lines and isinstance(doc, list):  # JSONL: one document per line
            return "\n".join(_text(d) for d in doc) + "\n"
        return _text(doc)


def _episodes() -> list[Any]:
    return [e.to_json() for e in voice_episodes(3, 0)]


def _cases() -> list[Any]:
    return [json.loads(line) for line in EVALSETS["robot"].read_text().splitlines()[:3]]


def _specs_then_use(path: Path) -> Any:
    """Load the specs and use them as the executor does (resources, argument checks)."""
    for spec in load_tool_spec_file(path):
        spec.resources({})
        jsonschema.Draft202012Validator(dict(spec.parameters)).is_valid({})
    return None


KINDS = {
    "tool_specs": Kind("tool_specs", json.loads(SPEC_FILES["voice"].read_text()), _specs_then_use,
                       ToolError),
    "episodes": Kind("episodes", _episodes(), load_jsonl, TraceError, lines=True),
    "eval_sets": Kind("eval_sets", _cases(), load_cases, EvalSetError, lines=True),
    "recipes": Kind("recipes", {"recipe": TuneRecipe().to_json(), "adapter": "x.gguf"}, load_recipe,
                    TuneError),
}


@st.composite
def files(draw: st.DrawFn, kind: Kind) -> str:
    how = draw(st.sampled_from(["generated", "mutated", "mutated", "bytes"]))
    if how == "generated":
        value = draw(json_values)
        return kind.render(draw(st.lists(json_values, max_size=3))) if kind.lines and \
            draw(st.booleans()) else _text(value)
    data = draw(st.data())
    if how == "mutated":
        doc = copy.deepcopy(kind.doc)
        for _ in range(draw(st.integers(1, 3))):
            doc = _mutate(data, doc)
        return kind.render(doc)
    text = kind.render(kind.doc)
    at = draw(st.integers(0, len(text)))
    if draw(st.booleans()):
        return text[:at]
    return text[:at] + draw(st.sampled_from(["\x00", "\ufffd", "{", "]", "\"", "\n", "9e999"])) \
        + text[at + 1:]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _check(kind: Kind, path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        kind.load(path)
    except kind.error as exc:
        assert str(path) in str(exc), f"the error does not name the file: {exc}"


@pytest.mark.parametrize("name", sorted(KINDS))
@SETTINGS
@given(data=st.data())
def test_a_loader_loads_or_says_what_is_wrong_never_a_traceback(name: str, data: st.DataObject,
                                                                workdir: Path) -> None:
    kind = KINDS[name]
    _check(kind, workdir / f"{name}.json", data.draw(files(kind)))


@pytest.mark.parametrize("name", sorted(KINDS))
def test_the_real_documents_load_and_a_missing_file_is_named(name: str, workdir: Path) -> None:
    kind = KINDS[name]
    path = workdir / f"real-{name}.json"
    path.write_text(kind.render(kind.doc), encoding="utf-8")
    kind.load(path)
    with pytest.raises(kind.error, match="nonexistent"):
        kind.load(Path(f"/nonexistent/{name}.json"))


def test_episode_file_round_trips(tmp_path: Path) -> None:
    episodes = voice_episodes(3, 0)
    save_jsonl(episodes, tmp_path / "e.jsonl")
    assert load_jsonl(tmp_path / "e.jsonl") == episodes
