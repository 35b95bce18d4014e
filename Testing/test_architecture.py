"""The layers' contracts (docs/architecture.md), read from the source: every module's imports are parsed (ast),
so a new import that points the wrong way, closes a circle or reaches into another module's private names
fails here, as does a module grown past 500 lines."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "UnetGANSlicer"
PACKAGES = ("unetgan", "UnetGANSlicerLib", "UnetGANSlicerWeb")
WIDGET = "UnetGANSlicer"  # the Slicer module's Qt file, UnetGANSlicer.py
MAX_LINES = 500
# files over MAX_LINES that do one job, with that job (none at present)
LONG_FILES_WITH_ONE_JOB: dict[str, str] = {}
# what each layer must never import: the layers above it, and the GUI toolkits
FORBIDDEN = {
    "unetgan": ("UnetGANSlicerLib", "UnetGANSlicerWeb", WIDGET, "slicer", "qt", "ctk", "vtk", "trame", "trame_slicer"),
    "UnetGANSlicerLib": ("UnetGANSlicerWeb", WIDGET, "qt", "ctk"),
    "UnetGANSlicerWeb": (WIDGET, "qt", "ctk"),
}


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for the three packages and the widget."""
    found = {}
    for package in PACKAGES:
        for path in sorted((SOURCE / package).rglob("*.py")):
            parts = list(path.relative_to(SOURCE).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    found[WIDGET] = SOURCE / f"{WIDGET}.py"
    return found


MODULES = module_files()


def imports_of(name: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(imported module, name imported from it or None, line) for every import statement, at any depth
    (an import inside a function is still an arrow between the modules)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found += [(module, alias.name, node.lineno) for alias in node.names]
    return found


def our_module(module: str, name: str | None) -> str | None:
    """The module of ours an import statement reaches: `from a import b` is a.b when that is a module."""
    if name and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    while module and module not in MODULES:
        module = module.rpartition(".")[0]
    return module or None


def import_graph() -> dict[str, set[str]]:
    graph = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for module, imported, _ in imports_of(name, path):
            target = our_module(module, imported)
            if target and target != name and not name.startswith(target + "."):  # a package's own __init__
                graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan's strongly connected
    components, written out: the standard library has none)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_layer_imports_a_layer_above_it_or_a_gui_toolkit():
    wrong = []
    for name, path in MODULES.items():
        layer = name.split(".")[0]
        for module, _, line in imports_of(name, path):
            if module.split(".")[0] in FORBIDDEN.get(layer, ()):
                wrong.append(f"{path.relative_to(SOURCE)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    graph = import_graph()
    found = circles(graph)
    shown = [" <-> ".join(group) + ": " + "; ".join(f"{a} imports {b}" for a in group for b in sorted(graph[a])
                                                   if b in group) for group in found]
    assert not found, "\n".join(shown)


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(name: str, path: Path) -> list[str]:
    """Another module's private names this module reaches: `from m import _x`, or `m._x` on a module imported
    as `m` (how the worker once called the command line's `_add_inference_commands`)."""
    wrong, modules = [], {}
    for module, imported, line in imports_of(name, path):
        owner = our_module(module, None)
        if imported and is_private(imported) and owner and owner != name:
            wrong.append(f"{path.relative_to(SOURCE)}:{line} imports {module}.{imported}")
        target = our_module(module, imported)
        if target and target != name and (imported is None or target.endswith("." + imported)):
            modules[imported or module] = target  # the name the module is bound to here
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and is_private(node.attr)):
            wrong.append(f"{path.relative_to(SOURCE)}:{node.lineno} uses {modules[node.value.id]}.{node.attr}")
    return wrong


def test_no_module_uses_another_modules_private_names():
    wrong = [use for name, path in MODULES.items() for use in private_uses(name, path)]
    assert not wrong, "\n".join(wrong)


def test_no_file_over_500_lines_unless_it_does_one_job():
    long = {str(path.relative_to(SOURCE)): len(path.read_text(encoding="utf-8").splitlines())
            for path in MODULES.values()}
    over = {path: lines for path, lines in long.items() if lines > MAX_LINES and path not in LONG_FILES_WITH_ONE_JOB}
    assert not over, f"files over {MAX_LINES} lines: {over}"


def test_the_checks_catch_what_they_look_for(tmp_path, monkeypatch):
    """The parsing above on made-up modules: a circle, an upward import, a private name."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    module = tmp_path / "cli.py"
    module.write_text("from UnetGANSlicerWeb import cli\n\ndef f():\n    from .registry import _private\n")
    assert imports_of("unetgan.cli", module) == [("UnetGANSlicerWeb", "cli", 1), ("unetgan.registry", "_private", 4)]
    package = tmp_path / "__init__.py"
    package.write_text("from .. import errors\nfrom . import runner\n")
    assert imports_of("unetgan.io", package) == [("unetgan", "errors", 1), ("unetgan.io", "runner", 2)]
    worker = tmp_path / "worker.py"
    worker.write_text("from . import cli\n\ndef parser():\n    return cli._add_inference_commands\n")
    monkeypatch.setattr(sys.modules[__name__], "SOURCE", tmp_path)
    assert private_uses("unetgan.worker", worker) == ["worker.py:4 uses unetgan.cli._add_inference_commands"]


@pytest.mark.parametrize("command", ["web", "phantom"])
def test_the_command_line_offers_the_commands_of_other_packages_and_the_phantom(command):
    """`web` comes from the web package's entry point (or a plain ERROR when it is not installed), never
    from an import in the backend; `phantom` is always there."""
    from unetgan.cli import build_parser

    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert command in subcommands


def test_a_missing_web_package_is_named_in_one_error_line(monkeypatch, capsys):
    import importlib.metadata

    from unetgan import cli

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [])
    assert cli.main(["web", "--port", "8081"]) == 1
    error = capsys.readouterr().err.strip()
    assert error == "ERROR: unetgan web: the web page is not installed: pip install 'unetgan-slicer[web]'"
    with pytest.raises(SystemExit):  # other commands still refuse arguments they do not know
        cli.main(["segment", "in.nii.gz", "-o", "out", "--no-such-option"])
