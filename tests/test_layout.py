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


def test_the_architecture_map_names_every_library_module():
    """docs/ARCHITECTURE.md is the map: each module under explorer/ has its row, and no row
    names a module that is gone."""
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    rows = {}
    section = None
    for line in text.splitlines():
        if line.startswith("`explorer/") and line.endswith("/`"):
            section = line.strip("`")
        elif section and line.startswith("| `") and line.count("`") >= 2:
            rows.setdefault(section, set()).add(line.split("`")[1])
    for folder in ("explorer/", "explorer/models/", "explorer/ui/"):
        modules = {p.name for p in (REPO / folder).glob("*.py")}
        assert rows.get(folder) == modules, (folder, sorted(modules ^ rows.get(folder, set())))


def test_no_comment_or_doc_points_to_a_file_that_is_not_there():
    """Paths to project files named in code comments, docstrings and markdown exist."""
    import re

    pattern = re.compile(r"(?<![\w/.-])((?:docs|explorer|train|benchmarks|tests|trained)/[\w./-]+\.(?:md|py|txt))")
    sources = [*REPO.glob("*.md"), *(REPO / "docs").rglob("*.md"), *(REPO / "trained").glob("*.md"),
               *(p for d in ("explorer", "train", "benchmarks", "tests") for p in (REPO / d).rglob("*.py")), REPO / "app.py"]
    written = re.compile(r"--report\s+\S+")  # where a command is told to write: made, not pointed to
    missing = {(str(path.relative_to(REPO)), found) for path in sources
               for found in pattern.findall(written.sub("", path.read_text())) if not (REPO / found).exists()}
    assert not missing, sorted(missing)
