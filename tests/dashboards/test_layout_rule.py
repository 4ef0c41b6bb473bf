"""dashboards/ reads only through the storage package, never imports study/, trainers/ or Ray, never
writes, never lets HTML through, and its package docstring names every module: checked on the source itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "dashboards"
SOURCES = sorted(PACKAGE.glob("*.py"))
FORBIDDEN_IMPORTS = ("study", "trainers", "ray", "optuna", "sqlalchemy", "psycopg", "sqlite3")
WRITERS = ("ensure_study", "record_trial", "delete_sweep", "create_study", "add_trial", "set_user_attr")


def imports(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_reads_only_through_storage_and_never_writes(path):
    tree = ast.parse(path.read_text())
    for name in imports(tree):
        top = name.split(".")[0]
        assert top not in FORBIDDEN_IMPORTS, f"{path.name} imports {name}: read through `import storage` only"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Name):
            name = node.attr if isinstance(node, ast.Attribute) else node.id
            assert name not in WRITERS, f"{path.name} uses {name}: the dashboard never writes"
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "open_storage":
            kw = {k.arg: k.value for k in node.keywords}
            assert isinstance(kw.get("read_only"), ast.Constant) and kw["read_only"].value is True, (
                f"{path.name}: open_storage without read_only=True")
        if isinstance(node, ast.keyword):
            assert node.arg != "dangerously_allow_html", f"{path.name} renders raw HTML"


def test_the_package_docstring_names_every_module():
    import dashboards

    listed = set(re.findall(r"^``(\w+)(\*?)``", dashboards.__doc__, flags=re.M))
    names = {name for name, star in listed if not star}
    prefixes = tuple(name for name, star in listed if star)
    missing = [p.stem for p in SOURCES if p.stem != "__init__" and p.stem not in names and not p.stem.startswith(prefixes)]
    assert not missing, f"dashboards/__init__.py does not say what {', '.join(missing)} do"
    gone = [n for n in names if not (PACKAGE / f"{n}.py").exists()]
    assert not gone, f"dashboards/__init__.py lists modules that do not exist: {', '.join(gone)}"
