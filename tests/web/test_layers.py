"""The web wing's one rule: no view imports another view; what views share lives in a module that is
not a view (`ivr.web.inbound`, the dashboard's helpers)."""

from __future__ import annotations

import ast
from pathlib import Path

import ivr.web

WEB = Path(ivr.web.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(WEB.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imports(source: str, package: str) -> set[str]:
    """Every module `source` (a module of `package`) imports, anywhere in it (a function's body
    too), relative ones resolved; `from package import name` counts as `package.name` as well,
    since `name` may be a module."""
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _is_view(path: Path) -> bool:
    """A view module makes a blueprint: it calls `Blueprint(...)`."""
    tree = ast.parse(path.read_text(), str(path))
    return any(
        isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "Blueprint")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "Blueprint")
        )
        for node in ast.walk(tree)
    )


def _read(name: str) -> tuple[str, str]:
    return MODULES[name].read_text(), _package_of(MODULES[name])


MODULES = {_module_name(path): path for path in sorted(WEB.rglob("*.py"))}
VIEWS = {name for name, path in MODULES.items() if _is_view(path)}


def test_the_views_are_found() -> None:
    assert {
        "ivr.web.voice",
        "ivr.web.agents",
        "ivr.web.fallback",
        "ivr.web.health",
        "ivr.web.metrics",
        "ivr.web.admin.views",
    } == VIEWS


def test_no_view_imports_another_view() -> None:
    crossings = {name: sorted(_imports(*_read(name)) & (VIEWS - {name})) for name in sorted(VIEWS)}
    assert {name: views for name, views in crossings.items() if views} == {}


def test_no_module_of_the_wing_imports_a_view() -> None:
    """Nor does a shared helper lean on a view: an arrow from it to a view would make its importers
    depend on that view."""
    helpers = sorted(set(MODULES) - VIEWS)
    crossings = {name: sorted(_imports(*_read(name)) & VIEWS) for name in helpers}
    assert {name: views for name, views in crossings.items() if views} == {}


def test_the_rule_sees_every_way_of_importing_a_view() -> None:
    """A view imported where it is needed (as the fallback once did), relatively, or as a name of
    its package is caught all the same."""
    late = "def journal():\n    from ivr.web.voice import SID\n"
    assert _imports(late, "ivr.web") & VIEWS == {"ivr.web.voice"}
    assert _imports("from .voice import SID\n", "ivr.web") & VIEWS == {"ivr.web.voice"}
    assert _imports("from ivr.web import health\n", "ivr.web") & VIEWS == {"ivr.web.health"}
    assert _imports("from .. import metrics\n", "ivr.web.admin") & VIEWS == {"ivr.web.metrics"}
    assert _imports("import ivr.web.admin.views\n", "ivr") & VIEWS == {"ivr.web.admin.views"}
