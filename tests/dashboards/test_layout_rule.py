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


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_reads_only_storages_public_surface(path):
    """``import storage`` and ``storage.NAME`` with NAME in ``storage.__all__``: never a storage module
    (``storage.answers``, ``storage.panel``, …) reached into, so storage can move its rules freely."""
    import storage

    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert not alias.name.startswith("storage."), f"{path.name} imports {alias.name}: use `import storage`"
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "storage":
            assert node.module == "storage", f"{path.name} imports from {node.module}: use `storage.NAME`"
            hidden = [a.name for a in node.names if a.name not in storage.__all__]
            assert not hidden, f"{path.name} imports {hidden} from storage, which are not in storage.__all__"
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "storage":
            assert node.attr in storage.__all__, (
                f"{path.name} uses storage.{node.attr}, which is not storage's public surface (storage.__all__)")


def test_the_public_surface_resolves():
    import storage

    for name in storage.__all__:
        assert getattr(storage, name) is not None, name
