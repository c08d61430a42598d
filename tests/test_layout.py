"""The import rules the layout rests on: the library never imports the training scripts or the
benchmarks, and tests share helpers only through tests/helpers.py (never from conftest.py,
which holds fixtures, or from one another)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, absolute names (relative imports are resolved)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.level and node.module else (base if node.level else node.module)
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}
    return found


def test_the_library_never_imports_train_or_benchmarks():
    for path in (REPO / "explorer").rglob("*.py"):
        bad = {m for m in imported_modules(path) if m.split(".")[0] in ("train", "benchmarks")}
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_tests_share_helpers_only_through_the_helpers_module():
    for path in (REPO / "tests").glob("*.py"):
        bad = {m for m in imported_modules(path)
               if m.startswith(("tests.conftest", "tests.test_")) and m.count(".") >= 1}
        assert not bad, (f"{path.name} imports {sorted(bad)}: shared test helpers belong in tests/helpers.py "
                         "(conftest.py holds only fixtures)")
