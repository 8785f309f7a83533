"""ARCHITECTURE.md import rules, enforced on the source (static imports)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["sdk", "colonies_server", "deployer", "faas_executor", "gateway"]
ALLOWED = {
    "sdk": set(),
    "colonies_server": set(),
    "deployer": {"sdk"},
    "faas_executor": {"sdk"},
    "gateway": {"sdk"},
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """Top-level project packages imported by one file, with line numbers."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in PACKAGES:
                found.add((top, node.lineno))
    return found


def violations(package: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for top, line in imported_packages(path):
            if top != package and top not in ALLOWED[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    return bad


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_architecture_allows(package: str) -> None:
    assert violations(package) == []


def test_checker_detects_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import os\nfrom colonies_server.app import create_app\nimport gateway.routes as r\n")
    assert imported_packages(bad) == {("colonies_server", 2), ("gateway", 3)}


def test_string_dynamic_loading_is_not_an_import(tmp_path: Path) -> None:
    f = tmp_path / "y.py"
    f.write_text("import importlib\nimportlib.import_module('colonies_server.cli')\n")
    assert imported_packages(f) == set()
