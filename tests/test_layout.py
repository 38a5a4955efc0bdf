"""The dependency direction of DESIGN.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(folder: str) -> dict[str, set[str]]:
    """Top-level names of every absolute import, per source file under ``folder``."""
    return {
        str(path.relative_to(ROOT)): _imports(path)
        for path in sorted((ROOT / folder).rglob("*.py"))
    }


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


PURE = (
    "app/guard",
    "app/failure_record.py",
    "app/labeler.py",
    "app/detokenizer.py",
    "app/prompt.py",
)


@pytest.mark.parametrize("part", PURE)
def test_the_pure_parts_import_the_standard_library_only(part):
    """What training imports of the app (guard, record contract, labeler, prompt) pulls in no
    Redis, metrics, web framework or model runtime."""
    found = imported_modules(part) if (ROOT / part).is_dir() else {part: _imports(ROOT / part)}
    for path, names in found.items():
        outside = {n for n in names if n not in sys.stdlib_module_names and n != "app"}
        assert not outside, f"{path} imports {outside}"


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [("app", {"training", "bench", "tests"}), ("training", {"bench", "tests"})],
)
def test_nothing_imports_against_the_direction(folder, forbidden):
    for path, names in imported_modules(folder).items():
        assert not names & forbidden, f"{path} imports {names & forbidden}"


def test_training_reads_no_file_under_bench():
    for path in (ROOT / "training").rglob("*.py"):
        assert '"bench/' not in path.read_text(encoding="utf-8"), path
