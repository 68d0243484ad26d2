"""Imports run one way (STYLE.md, "For redcube" 1): renderer <- training <- app."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# package -> top-level packages it must not import
FORBIDDEN = {"renderer": {"training", "app"}, "training": {"app"}}


def imported_top_levels(source: str) -> set[str]:
    """Top-level package names a module imports, absolute imports only (relative ones stay inside the package)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value.split(".")[0])
    return names


def test_the_checker_sees_every_import_form():
    src = (
        "import os, training.trainer\n"
        "from app.cli import main\n"
        "from . import sibling\n"
        "def f():\n"
        "    import app.options as o\n"
        "    importlib.import_module('training.data')\n"
    )
    assert imported_top_levels(src) == {"os", "training", "app"}
    assert imported_top_levels("from .scene import Scene\nimport renderer.camera\n") == {"renderer"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_run_one_way(package):
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"no modules found under {package}/"
    offenders = []
    for f in files:
        bad = imported_top_levels(f.read_text()) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{f.relative_to(REPO)} imports {sorted(bad)}")
    assert not offenders, "imports must run renderer <- training <- app: " + "; ".join(offenders)


@pytest.mark.parametrize("package", ["renderer", "training"])
def test_modules_import_cleanly(package):
    """Every module of the package imports on its own (no GUI or GPU needed)."""
    for f in sorted((REPO / package).rglob("*.py")):
        rel = f.relative_to(REPO).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        importlib.import_module(".".join(parts))


def imported_modules(source: str) -> set[str]:
    """Full dotted names a module imports (absolute imports)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_command_line_does_not_import_the_gui():
    """Commands share paths, pictures and video with the GUI through app.paths, app.viewport and app.video; only
    `redcube gui` opens the GUI, inside its run()."""
    offenders = []
    for f in sorted((REPO / "app" / "commands").glob("*.py")):
        gui = {m for m in imported_modules(f.read_text()) if m == "app.gui" or m.startswith("app.gui.")}
        if gui and f.name != "gui.py":
            offenders.append(f"{f.relative_to(REPO)} imports {sorted(gui)}")
    assert not offenders, "; ".join(offenders)
    top = ast.parse((REPO / "app" / "commands" / "gui.py").read_text()).body
    assert not any(m.startswith("app.gui") for node in top for m in imported_modules(ast.unparse(node))
                   if isinstance(node, (ast.Import, ast.ImportFrom)))


@pytest.mark.parametrize("tab", ["worlds", "rotations"])
def test_the_state_and_render_objects_do_not_load_the_gui(tab):
    """House style: GUI-free state (a fresh interpreter imports a tab's session and view without dearpygui)."""
    code = f"import sys, app.gui.{tab}_session, app.gui.{tab}_view; print('dearpygui' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "False", p.stderr[-2000:]
