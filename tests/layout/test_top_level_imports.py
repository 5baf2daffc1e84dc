"""The top-level folders import one way (issue 10): import-linter checks the packages; this checks the two script
folders it cannot see. ``benchmarks/`` may use test helpers, so ``tests/`` must never import ``benchmarks/`` (that
would be a cycle), and no shipped package imports either of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("market", "providers", "proving", "contracts", "migrations")


def imported_roots(path: Path) -> set[str]:
    """Top-level names ``path`` imports (absolute imports only; relative ones stay inside their package)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def offenders(folders: tuple[str, ...], forbidden: set[str]) -> list[str]:
    bad = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            hit = imported_roots(path) & forbidden
            if hit:
                bad.append(f"{path.relative_to(ROOT)} imports {sorted(hit)}")
    return bad


def test_tests_never_import_benchmarks():
    assert offenders(("tests",), {"benchmarks"}) == []


@pytest.mark.parametrize("package", SHIPPED + ("cli.py",))
def test_shipped_code_imports_neither_tests_nor_benchmarks(package):
    if package.endswith(".py"):
        assert not imported_roots(ROOT / package) & {"tests", "benchmarks"}
    else:
        assert offenders((package,), {"tests", "benchmarks"}) == []


def test_the_check_can_fail(tmp_path):
    bad = tmp_path / "t.py"
    bad.write_text("import os\nfrom benchmarks.matching import main\n")
    assert "benchmarks" in imported_roots(bad)
