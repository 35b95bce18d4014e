"""The suite fails, never skips, when slicer-core or the project's own modules cannot be imported:
a missing slicer-core once turned about 25 MRML tests into skips and CI stayed green. Also: the code
stays within what the supported Slicer's Python (3.12) runs.
"""
from __future__ import annotations

import ast
import os
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE_DIR = ROOT / "UnetGANSlicer"
TESTS = Path(__file__).resolve().parent
PROJECT_PACKAGES = ("unetgan", "UnetGANSlicerLib", "UnetGANSlicerWeb")
# removed from the standard library in Python 3.12 (PEP 594, PEP 632, imp)
REMOVED_IN_312 = {"distutils", "imp", "asynchat", "asyncore", "smtpd"}
OLDEST_PYTHON = (3, 11)  # pyproject's requires-python; Slicer 5.10+ bundles 3.12


def project_modules(package: str) -> list[str]:
    root = importlib.import_module(package)
    return [package] + [info.name for info in pkgutil.walk_packages(root.__path__, package + ".")
                        if not info.name.endswith("__main__")]  # __main__ runs the command line


def test_slicer_core_and_the_mrml_classes_import():
    import slicer
    import vtk

    from UnetGANSlicerLib import context

    scene = context.setup_standalone()["scene"]  # registers the module logics' node classes, as Slicer does
    for class_name in ("vtkMRMLScalarVolumeNode", "vtkMRMLSegmentationNode", "vtkMRMLSequenceNode",
                       "vtkMRMLSequenceBrowserNode", "vtkMRMLLayoutNode", "vtkMRMLSliceNode", "vtkMRMLPlotChartNode"):
        assert scene.AddNewNodeByClass(class_name) is not None, class_name
    for class_name in ("vtkSlicerApplicationLogic", "vtkSlicerSegmentationsModuleLogic", "vtkSlicerSequencesLogic",
                       "vtkMRMLLayoutLogic", "vtkMRMLSliceLogic", "vtkMRMLVolumeSequenceStorageNode"):
        assert hasattr(slicer, class_name), class_name
    assert callable(slicer.util.updateSegmentBinaryLabelmapFromArray) and vtk.vtkVersion.GetVTKMajorVersion() >= 9
    scene.Clear(True)


@pytest.mark.parametrize("package", PROJECT_PACKAGES)
def test_every_project_module_imports(package):
    failures = {}
    for name in project_modules(package):
        try:
            importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - reported below, all at once
            failures[name] = f"{type(error).__name__}: {error}"
    assert not failures, failures


def test_a_skipped_test_fails_the_suite(tmp_path):
    """Whatever skips (a missing module, pytest.skip), the session's exit status is a failure."""
    import subprocess

    (tmp_path / "test_skipping.py").write_text("import pytest\n\ndef test_passes():\n    pass\n\n"
                                               "def test_needs_a_missing_component():\n    pytest.skip('no such component')\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no_skips", str(tmp_path / "test_skipping.py")],
                         capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(TESTS)})
    assert run.returncode != 0 and "1 test(s) skipped" in run.stdout, run.stdout
    (tmp_path / "test_skipping.py").write_text("def test_passes():\n    pass\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no_skips", str(tmp_path / "test_skipping.py")],
                         capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(TESTS)})
    assert run.returncode == 0, run.stdout


def python_files() -> list[Path]:
    files = list((MODULE_DIR).rglob("*.py")) + list(TESTS.glob("*.py")) + list((ROOT / "scripts").glob("*.py"))
    return sorted(p for p in files if ".egg-info" not in str(p) and "__pycache__" not in p.parts)


def test_code_runs_on_the_supported_slicer_python():
    """Syntax of the oldest supported Python (3.11) and nothing removed in Slicer's 3.12."""
    assert sys.version_info[:2] >= OLDEST_PYTHON
    problems = []
    for path in python_files():
        source = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(source, filename=str(path), feature_version=OLDEST_PYTHON)
        except SyntaxError as error:
            problems.append(f"{path.relative_to(ROOT)}: {error}")
            continue
        for node in ast.walk(tree):
            modules = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            problems += [f"{path.relative_to(ROOT)}: imports {m}" for m in modules
                         if m.split(".")[0] in REMOVED_IN_312]
    assert not problems, problems
    assert 'requires-python = ">=3.11"' in (ROOT / "pyproject.toml").read_text()
