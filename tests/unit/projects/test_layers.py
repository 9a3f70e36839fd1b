"""Imports point down the floors (DESIGN.md): projects imports neither annotations nor inspection,
annotations does not import inspection, ml imports no Django and none of the apps."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = {
    "projects": ("annotations", "inspection"),
    "annotations": ("inspection",),
    "ml": ("django", "rest_framework", "projects", "annotations", "inspection"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down_the_floors(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & set(FORBIDDEN[package]))
        for path in (ROOT / package).rglob("*.py")
        if _imports(path) & set(FORBIDDEN[package])
    }
    assert not offenders, offenders
