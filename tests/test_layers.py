"""The packages form one-way layers, and every library the code imports is declared.

    core  <-  ingest  <-  rag  <-  ui / app.py, eval, bench, deploy

A module may import its own package and those listed for it below; nothing imports upwards. The walk reads
every import statement, including those inside functions (lazy imports are still dependencies).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What each of our top-level packages (or app.py) may import of ours.
ALLOWED = {
    "core": {"core"},
    "ingest": {"core", "ingest"},
    "rag": {"core", "ingest", "rag"},
    "ui": {"core", "ingest", "rag", "ui"},
    "app": {"core", "ingest", "rag", "ui", "app"},
    "eval": {"core", "ingest", "rag", "eval"},
    "bench": {"core", "ingest", "rag", "ui", "app", "eval", "bench"},
    # make cluster: starts the servers and app instances; at the app level, and nothing imports it.
    "deploy": {"core", "ingest", "rag", "ui", "app", "deploy"},
}
OURS = set(ALLOWED)


def _layer_files() -> list[tuple[str, Path]]:
    files = [("app", ROOT / "app.py")]
    for package in sorted(OURS - {"app"}):
        folder = ROOT / package
        files += [(package, p) for p in sorted(folder.rglob("*.py"))]
    return files


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def upward_imports(files: list[tuple[str, Path]]) -> list[str]:
    problems = []
    for package, path in files:
        for line, module in _imports(path):
            if module in OURS and module not in ALLOWED[package]:
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                problems.append(f"{where}:{line} ({package}) imports {module}")
    return problems


def test_no_package_imports_one_above_it():
    files = _layer_files()
    assert len(files) > 40, "the walk found too few modules: are the packages where this test expects them?"
    assert upward_imports(files) == []


def test_the_walk_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from rag.assistant import Assistant\n    return Assistant\n")
    assert upward_imports([("core", bad)]) == [f"{bad}:2 (core) imports rag"]
    assert upward_imports([("bench", bad)]) == []


def _declared_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    names = {re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0] for spec in specs}
    return {name.lower().replace("_", "-") for name in names} | {"torch"}  # torch: pinned by the Makefile


@pytest.mark.parametrize("package", sorted(OURS))
def test_every_imported_library_is_declared(package):
    """A library imported only because another dependency happens to pull it in breaks when that one changes."""
    provided = importlib.metadata.packages_distributions()
    declared = _declared_distributions()
    missing = set()
    for layer, path in _layer_files():
        if layer != package:
            continue
        for _, module in _imports(path):
            if module in OURS or module in sys.stdlib_module_names or module == "__future__":
                continue
            distributions = {d.lower().replace("_", "-") for d in provided.get(module, [])}
            if not distributions & declared:
                missing.add(f"{module} ({', '.join(sorted(distributions)) or 'not installed'})")
    assert not missing, f"imported by {package} but not declared in pyproject.toml: {sorted(missing)}"


# Functions a reader can hold in their head: none longer than this in the product's own code (benchmarks and the
# evaluation harness are tools, not the product).
MAX_FUNCTION_LINES = 60


def long_functions(paths: list[Path], limit: int = MAX_FUNCTION_LINES) -> list[str]:
    out = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    out.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    return out


def test_no_function_over_60_lines_in_the_product(tmp_path):
    product = [path for layer, path in _layer_files() if layer in ("core", "ingest", "rag", "ui", "app", "deploy")]
    assert long_functions(product) == []
    long = tmp_path / "long.py"
    long.write_text("def f():\n" + "    x = 1\n" * 60)
    assert long_functions([long]) == ["long.py:1 f (61 lines)"]


def test_weighing_evidence_and_the_policy_load_no_framework():
    """The evidence check and the answer-or-decline policy are plain code over numpy: importing them must not
    load LangChain, Gradio, torch or Chroma (they once did, through rag/answer.py)."""
    import subprocess

    code = ("import sys, rag.evidence, rag.policy, core.text; "
            "print(sorted(m for m in ('langchain_core', 'gradio', 'torch', 'chromadb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
