"""The shape of the code: one import namespace, layers that import one way only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Lower layers never import higher ones: models <- devices <- streamer <- ui.
LAYERS = ("models", "devices", "streamer", "ui")
# The one way up: the command line starts the desktop app (imported only then).
ALLOWED_UPWARD = {("helo.streamer.commands.gui", "helo.ui")}


def _modules() -> dict[str, Path]:
    out = {}
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(("helo", *parts)).removesuffix(".__init__")
            out[name] = path
    return out


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "helo" or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


def test_every_import_of_our_code_goes_through_the_helo_namespace():
    bare = [
        f"{path.relative_to(REPO)}: {name}"
        for path in [*_modules().values(), *sorted((REPO / "tests").glob("*.py"))]
        for name in _imports(path)
        if name.split(".")[0] in LAYERS
    ]
    assert bare == []


def test_layers_import_downwards_only():
    upward = []
    for module, path in _modules().items():
        own = _layer(module)
        for name in _imports(path):
            target = _layer(name)
            if target is None or own is None or target <= own:
                continue
            if any(module == a and name.startswith(b) for a, b in ALLOWED_UPWARD):
                continue
            upward.append(f"{module} imports {name}")
    assert upward == []


def test_the_layering_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The check itself can fail: a models module importing the runtime is caught."""
    assert _layer("helo.models.helo") < _layer("helo.streamer.session")
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from helo.streamer.session import LiveSession\n")
    assert _imports(fake) == ["helo.streamer.session"]


@pytest.mark.parametrize("layer", LAYERS)
def test_every_package_folder_is_installed(layer):
    """pyproject lists the packages by hand (the package-dir mapping needs it): a new
    sub-package that is not listed would be missing from a wheel."""
    import tomllib

    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    folders = {
        ".".join(("helo", *init.parent.relative_to(REPO).parts))
        for init in (REPO / layer).rglob("__init__.py")
    }
    assert folders <= listed


def test_no_function_is_longer_than_80_lines():
    """A function one can read in one sitting (docstring included)."""
    long = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > 80:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert long == []
