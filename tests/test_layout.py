"""The house rules, checked: no import cycle between files, small files, a thin demos/.

Imports inside functions count: a lazy import still ties two files together.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("realtime", "control", "audio", "sim_envs", "models", "speculation", "demos")
MAX_FILE_LINES = 450
MAX_DEMOS_LINES = 2500


def _modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file)."""
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                names = [base, *(f"{base}.{a.name}" for a in node.names)]
            else:
                continue
            deps.update(o for o in map(owner, names) if o and o != mod)
        graph[mod] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_files() -> None:
    assert cycles(import_graph()) == []


def test_lower_layers_never_import_demos() -> None:
    upward = {mod: sorted(d for d in deps if d.startswith("demos"))
              for mod, deps in import_graph().items() if not mod.startswith("demos")}
    assert {m: d for m, d in upward.items() if d} == {}


def test_realtime_imports_no_other_package() -> None:
    outside = {mod: sorted(d for d in deps if not d.startswith("realtime"))
               for mod, deps in import_graph().items() if mod.startswith("realtime")}
    assert {m: d for m, d in outside.items() if d} == {}


def test_no_file_over_the_limit() -> None:
    paths = [p for pkg in (*PACKAGES, "tests") for p in (ROOT / pkg).rglob("*.py")]
    long = {str(p.relative_to(ROOT)): n for p in paths
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert long == {}


def test_demos_stay_thin() -> None:
    """The command line, the demos' entry points and sessions: no pipeline of their own.
    The benchmark commands (demos/bench/, arguments and tables; their engines live in the
    packages they measure) are counted apart."""
    total = sum(len(p.read_text().splitlines()) for p in (ROOT / "demos").rglob("*.py")
                if "bench" not in p.relative_to(ROOT / "demos").parts)
    assert total <= MAX_DEMOS_LINES, f"demos/ holds {total} lines (at most {MAX_DEMOS_LINES})"


def test_every_named_import_names_something_that_exists() -> None:
    """A lazy ``from models.x import y`` inside a function runs only when that path does:
    a name that moved (``resolve_gguf`` left ``models.artifacts``) would fail a user, or CI's
    set-up, long after the move. Every such import of the project is resolved here."""
    import importlib

    missing = []
    for path in [*_modules().values(), *ROOT.joinpath("tests").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    and node.module.split(".")[0] in (*PACKAGES, "tests")):
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if alias.name != "*" and not hasattr(module, alias.name):
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ModuleNotFoundError:
                        missing.append(f"{path.relative_to(ROOT)}: {node.module}.{alias.name}")
    assert not missing, missing
